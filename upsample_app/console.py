"""The ``seg`` and ``gan`` console scripts: the layer above ``seg``, ``gan`` and the web app.

``seg app`` / ``gan app`` start the app (``upsample_app.cli``), which holds a segmenter, a
generator and a translator at once; every other command goes to ``seg.console.main`` /
``gan.console.main``. The same commands run as ``python -m upsample_app.console seg|gan ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

Tool = Literal["seg", "gan"]


def seg_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``seg`` console script."""
    _main("seg", args)


def gan_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``gan`` console script."""
    _main("gan", args)


def _main(tool: Tool, args: Sequence[str] | None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["app"]:
        from upsample_app.cli import app_command

        sys.exit(app_command(argv[1:], tool))
    if tool == "seg":
        from seg.console import main
    else:
        from gan.console import main
    main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] not in (["seg"], ["gan"]):
        sys.exit("usage: python -m upsample_app.console seg|gan COMMAND ...")
    _main(sys.argv[1], sys.argv[2:])  # type: ignore[arg-type]
