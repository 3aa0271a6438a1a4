"""``seg`` command line: ``seg fit|validate|test|predict`` (LightningCLI) and folder inference.

``seg predict --ckpt_path CKPT --input DIR --output DIR`` runs folder inference with only a
checkpoint (the architecture comes from its hyperparameters). ``seg predict --config CFG
--ckpt_path CKPT --data.predict_dir DIR [--predict_output OUT]`` runs LightningCLI prediction
with a config and writes masks and overlays in the same layout (whole images, no tiling).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from common.checkpoint import CheckpointError
from common.cli import EXIT_BAD_INPUT, ToolkitCLI, exit_on_user_errors
from common.distributed import run_dir
from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError
from seg.module import SegmentationModule

#: model options that describe evaluation, not the trained network: a checkpoint does not set them.
EVALUATION_OPTIONS = ("tta",)

EXIT_SKIPPED = 1


class SegCLI(ToolkitCLI):
    """The toolkit CLI with the data module's classes linked into the model and, for
    ``predict``, a writer of masks and overlays (``--predict_output``, default
    ``<run dir>/predictions``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.palette", "model.palette", apply_on="instantiate")
        parser.add_argument(
            "--predict_output",
            type=str | None,
            default=None,
            help="predict: folder for masks/ and overlays/ (default <run dir>/predictions).",
        )

    def _parse_ckpt_path(self) -> None:
        # A checkpoint's hyperparameters replace the config's; keep what the command line says
        # about evaluation (flip TTA), and never fetch the encoder's initial weights: the
        # checkpoint holds the trained ones (so test/predict/resume work without them).
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        keep = {key: self.config.get(f"{subcommand}.model.{key}") for key in EVALUATION_OPTIONS}
        super()._parse_ckpt_path()
        if ckpt_path and Path(ckpt_path).is_file():
            for key, value in keep.items():
                self.config[f"{subcommand}.model.{key}"] = value
            self.config[f"{subcommand}.model.encoder_weights"] = None

    def before_predict(self) -> None:
        from seg.prediction_writer import MaskWriter

        output = self._subcommand_config().get("predict_output")
        self.mask_writer = MaskWriter(output or run_dir(self.trainer) / "predictions")
        self.trainer.callbacks.append(self.mask_writer)

    def after_predict(self) -> None:
        writer = self.mask_writer
        print(
            f"{len(writer.written)} image(s) written to {writer.output_dir}, "
            f"{len(writer.skipped)} skipped",
            file=sys.stderr,
        )
        if writer.skipped:
            sys.exit(EXIT_SKIPPED)


def folder_predict_parser() -> argparse.ArgumentParser:
    """The options of ``seg predict --input DIR`` (``seg.predict.folder_predict_parser``)."""
    from seg.predict import folder_predict_parser as parser

    return parser()


def folder_predict(argv: Sequence[str]) -> int:
    """Folder inference, either engine (``seg.predict.folder_predict``); the exit status."""
    from seg.predict import folder_predict as command

    return command(argv)


def _is_folder_predict(argv: Sequence[str]) -> bool:
    return (
        bool(argv)
        and argv[0] == "predict"
        and any(arg == "--input" or arg.startswith("--input=") for arg in argv[1:])
    )


def run_cli(args: Sequence[str] | None = None, **kwargs: Any) -> SegCLI:
    """Run the LightningCLI part (``fit``, ``validate``, ``test``, ``predict --config``)."""
    return SegCLI(
        SegmentationModule,
        SegDataModule,
        run_name="seg",
        args=list(args) if args is not None else None,
        **kwargs,
    )


@exit_on_user_errors
def main(args: Sequence[str] | None = None) -> None:
    """The LightningCLI commands of the ``seg`` console script (exit statuses:
    ``common.cli.exit_on_user_errors``)."""
    argv = list(sys.argv[1:] if args is None else args)
    if _is_folder_predict(argv):
        sys.exit(folder_predict(argv[1:]))
    try:
        run_cli(args)
    except (CheckpointError, SegmentationDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
