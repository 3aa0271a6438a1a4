"""The ``seg`` console script.

``seg predict --input DIR ...`` (folder inference, either engine) and ``seg export`` run from their
own modules; every other command goes to the LightningCLI in ``seg.cli``. ``seg app`` is routed one
layer up, by the installed script's entry point (``upsample_app.console``). Lightning is imported
only by the commands that use it, so ``seg predict --engine onnxruntime`` also runs where Lightning
is not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def is_folder_predict(argv: Sequence[str]) -> bool:
    """``seg predict`` with ``--input``: folder inference rather than LightningCLI prediction."""
    return (
        bool(argv)
        and argv[0] == "predict"
        and any(arg == "--input" or arg.startswith("--input=") for arg in argv[1:])
    )


def main(args: Sequence[str] | None = None) -> None:
    """The ``seg`` commands but ``seg app`` (see the module docstring)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["export"]:
        from seg.deploy import export_command

        sys.exit(export_command(argv[1:]))
    if argv[:1] == ["app"]:
        # the web app sits above seg and gan (upsample_app), which import nothing from it
        sys.exit(
            "seg app: the web app starts from the installed `seg` script "
            "(upsample_app.console), or as `python -m upsample_app.console seg app ...`"
        )
    if is_folder_predict(argv):
        from seg.predict import folder_predict

        sys.exit(folder_predict(argv[1:]))
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "seg export --ckpt_path CKPT --output model.onnx|model.pt2\n"
            "seg predict (--ckpt_path CKPT | --engine onnxruntime --model model.onnx) "
            "--input DIR --output DIR\n"
            "seg app (--ckpt_path CKPT | --engine onnxruntime --model model.onnx) "
            "[--generator G] [--translator T]"
        )
    from seg.cli import main as lightning_main

    lightning_main(args)


if __name__ == "__main__":
    main()
