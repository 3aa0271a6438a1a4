"""The Gradio page without a browser: one tab per loaded model, the translator's class colours as
its brushes, and every failure of a handler shown in the page as a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.limits import AppInputError, UploadLimits
from app.models import LoadedModels

gr = pytest.importorskip("gradio")


def settings(tmp_path: Path):
    from app.ui import AppSettings

    return AppSettings(UploadLimits(), tmp_path)


def tab_labels(page) -> list[str]:
    return [block.label for block in page.blocks.values() if isinstance(block, gr.Tab)]


def test_one_tab_per_model(models: LoadedModels, tmp_path: Path) -> None:
    from app.ui import build_page

    assert tab_labels(build_page(models, settings(tmp_path))) == [
        "Segment",
        "Generate",
        "Translate",
    ]
    only = LoadedModels(generator=models.generator)
    assert tab_labels(build_page(only, settings(tmp_path))) == ["Generate"]
    page = build_page(LoadedModels(translator=models.translator), settings(tmp_path))
    editor = next(b for b in page.blocks.values() if isinstance(b, gr.ImageEditor))
    spec = models.translator.spec
    expected = ["#{:02x}{:02x}{:02x}".format(*c) for c in [*spec.palette, spec.void_colour]]
    assert editor.brush.colors == expected and editor.brush.color_mode == "fixed"
    assert (tmp_path / "examples" / "chelsea.png").is_file(), "scikit-image's photos as examples"


def test_failures_become_messages_in_the_page() -> None:
    from app.ui import shown_in_page

    def refuse(_: object) -> None:
        raise AppInputError("photo.png: not an image (no known image format)")

    def crash(_: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(gr.Error, match=r"photo.png: not an image \(no known image format\)"):
        shown_in_page(refuse)(None)
    with pytest.raises(gr.Error, match="RuntimeError: boom"):
        shown_in_page(crash)(None)
    assert shown_in_page(lambda value: value + 1)(1) == 2
