"""``seg`` command line: ``seg fit|validate|test|predict`` (LightningCLI) and folder inference.

``seg predict --ckpt_path CKPT --input DIR --output DIR`` runs folder inference with only a
checkpoint (the architecture comes from its hyperparameters). ``seg predict --config CFG
--ckpt_path CKPT --data.predict_dir DIR [--predict_output OUT]`` runs LightningCLI prediction
with a config and writes masks and overlays in the same layout (whole images, no tiling).

The network's options are ``--model.network.<field>`` (``seg.models.FCNConfig``); the spelling
from before the network had its own config, ``--model.encoder`` and so on, is still accepted, on
the command line and in ``--config`` files (with a warning).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.cli import ArgsType, LightningArgumentParser

from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError
from seg.module import SegmentationModule
from seg.network_io import FCN_CONFIG_KEYS, nest_network_hparams
from upsample.core.checkpoint import CheckpointError
from upsample.core.cli import ToolkitCLI, exit_on_user_errors
from upsample.core.commands import EXIT_BAD_INPUT, EXIT_SKIPPED
from upsample.core.distributed import run_dir

#: model options that describe evaluation, not the trained network: a checkpoint does not set them.
EVALUATION_OPTIONS = ("tta",)


def with_network_options(args: Sequence[str]) -> list[str]:
    """Command-line arguments as the parser takes them.

    The architecture options spelled as before the network had its own config
    (``--model.encoder X``, ``--model.width=0.5``) become the network's
    (``--model.network.encoder X``, ``--model.network.width=0.5``), and so do those of a
    ``--config`` file in that layout (see :func:`config_with_network`). A whole network given on
    the command line (``--model.network '{"class_path": ...}'``) replaces the config's: it is
    preceded by ``--model.network null``, because jsonargparse merging a class_path into the
    config's FCN fields drops the class_path.
    """
    renamed: list[str] = []
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        field = name.removeprefix("--model.")
        if name.startswith("--model.") and field in FCN_CONFIG_KEYS:
            arg = f"--model.network.{field}{equals}{value}"
        elif name == "--model.network" and (equals or index + 1 < len(args)):
            renamed += ["--model.network", "null"]
        elif name == "--config" and equals:
            arg = f"--config={config_with_network(value)}"
        elif index > 0 and args[index - 1] == "--config":
            arg = config_with_network(arg)
        renamed.append(arg)
    return renamed


def config_with_network(path: str) -> str:
    """A ``--config`` argument as the parser takes it: the path itself, or, for a file whose
    ``model`` section spells the architecture flat (``model.encoder``, ``model.variant``...: the
    layout before the network had its own section), the file's content as YAML with those
    options moved under ``model.network`` (with a warning naming the file)."""
    file = Path(path)
    config = (
        yaml.safe_load(file.read_text())
        if file.suffix in (".yaml", ".yml") and file.is_file()
        else None
    )
    model = config.get("model") if isinstance(config, dict) else None
    flat = [key for key in FCN_CONFIG_KEYS if isinstance(model, dict) and key in model]
    if not flat:
        return path
    warnings.warn(
        f"{path}: model.{', model.'.join(flat)} now belong under model.network; "
        "this file is read as if they were there",
        FutureWarning,
        stacklevel=2,
    )
    network = {**(model.get("network") or {}), **{key: model[key] for key in flat}}
    config["model"] = {
        **{key: value for key, value in model.items() if key not in flat},
        "network": network,
    }
    return yaml.safe_dump(config, sort_keys=False)


def checkpoint_model_options(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The model options a checkpoint sets: its hyperparameters, with the architecture under
    ``network`` whichever layout the file has. A network that was given as a module without
    its ``init_args`` cannot be parsed again, so the config's network stands."""
    saved = dict(checkpoint.get("hyper_parameters") or {})
    saved.pop("_instantiator", None)
    if not saved:
        return {}
    hparams = nest_network_hparams(saved)
    network = hparams["network"]
    if "class_path" in network and "init_args" not in network:
        del hparams["network"]
    return hparams


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

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        if args is None:
            self.config = parser.parse_args(with_network_options(sys.argv[1:]))
        elif isinstance(args, list | tuple):
            super().parse_arguments(parser, with_network_options(args))
        else:
            super().parse_arguments(parser, args)

    def checkpoint_model_options(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        return checkpoint_model_options(checkpoint)

    def _parse_ckpt_path(self) -> None:
        # A checkpoint's hyperparameters replace the config's (those of earlier versions too);
        # keep what the command line says about evaluation (flip TTA), and never fetch the
        # encoder's initial weights: the checkpoint holds the trained ones (so test, predict
        # and resume work without them).
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not (ckpt_path and Path(ckpt_path).is_file()):
            super()._parse_ckpt_path()
            return
        keep = {key: self.config.get(f"{subcommand}.model.{key}") for key in EVALUATION_OPTIONS}
        super()._parse_ckpt_path()
        for key, value in keep.items():
            self.config[f"{subcommand}.model.{key}"] = value
        weights = f"{subcommand}.model.network.encoder_weights"
        if self.config.get(weights) is not None:
            self.config[weights] = None

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
    ``upsample.core.cli.exit_on_user_errors``); ``seg.console.main`` routes folder inference and
    export before them."""
    try:
        run_cli(args)
    except (CheckpointError, SegmentationDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
