"""What the page's tabs share: the page's settings, the one worker that runs the networks,
handlers whose failures become messages in the page, and how pictures and legends are shown.

Every handler turns an ``AppInputError`` (and any other failure) into a message in the page: a
bad upload never stops the server. Handlers that run a network share one worker
(``MODEL_WORKER``): requests wait in the bounded queue and the models run one request at a time.
"""

from __future__ import annotations

import functools
import html
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from upsample_app.limits import AppInputError, UploadLimits

#: the one worker that runs the networks (a concurrency id shared by every such handler).
MODEL_WORKER = "models"
#: the height of the pages' pictures (CSS pixels) and their buttons (no share button).
IMAGE_HEIGHT = 360
IMAGE_BUTTONS = ["download", "fullscreen"]


@dataclass(frozen=True)
class AppSettings:
    """How the page behaves: upload ``limits``, the ``work_dir`` of example and download files
    (the caller creates and removes it) and where CamVid lies (``camvid_root``, optional)."""

    limits: UploadLimits
    work_dir: Path
    camvid_root: Path | None = None


def shown_in_page(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with its failures shown in the page: an ``AppInputError``'s message as it
    is, anything else as the exception's type and message (its traceback on stderr)."""

    @functools.wraps(function)
    def handler(*args: Any) -> Any:
        try:
            return function(*args)
        except AppInputError as error:
            raise gr.Error(str(error), print_exception=False) from error
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"{type(error).__name__}: {error}", print_exception=False) from error

    return handler


def legend_html(names: Sequence[str], colours: Sequence[Sequence[int]]) -> str:
    """Colour swatches with class names, in class order."""
    items = "".join(
        f'<span><span class="swatch" style="background: rgb({r}, {g}, {b})"></span>'
        f"{html.escape(str(name))}</span>"
        for name, (r, g, b) in zip(names, colours, strict=True)
    )
    return f'<div class="legend">{items}</div>'
