"""The ``gan`` console script.

``gan sample`` (either engine) and ``gan export`` run from their own modules; every other command
goes to ``gan.cli``. ``gan app`` is routed one layer up, by the installed script's entry point
(``upsample_app.console``). Lightning is imported only by
the commands that use it, so ``gan sample --engine onnxruntime`` also runs where Lightning is
not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(args: Sequence[str] | None = None) -> None:
    """The ``gan`` commands but ``gan app`` (see the module docstring)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["export"]:
        from gan.export import export_command

        sys.exit(export_command(argv[1:]))
    if argv[:1] == ["app"]:
        # the web app sits above seg and gan (upsample_app), which import nothing from it
        sys.exit(
            "gan app: the web app starts from the installed `gan` script "
            "(upsample_app.console), or as `python -m upsample_app.console gan app ...`"
        )
    if argv[:1] == ["sample"]:
        from gan.dcgan.sample import sample_command

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
