"""The ``gan`` console script.

``gan sample`` (either engine), ``gan export`` and ``gan app`` (the web app, ``app.cli``) run
from their own modules; every other command goes to ``gan.cli``. Lightning is imported only by
the commands that use it, so ``gan sample --engine onnxruntime`` also runs where Lightning is
not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``gan`` console script."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["export"]:
        from gan.deploy import export_command

        sys.exit(export_command(argv[1:]))
    if argv[:1] == ["app"]:
        from app.cli import app_command

        sys.exit(app_command(argv[1:], "gan"))
    if argv[:1] == ["sample"]:
        from gan.sample import sample_command

        sys.exit(sample_command(argv[1:]))
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "gan export --ckpt_path CKPT --output generator.onnx|generator.pt2 [--no_ema]\n"
            "gan app (--ckpt_path CKPT | --engine onnxruntime --model generator.onnx) "
            "[--segmenter S] [--translator T]"
        )
    from gan.cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
