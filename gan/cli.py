"""``gan`` command line.

``gan fit|validate`` (LightningCLI with ``GANModule`` and ``GANDataModule``; ``data.image_size`` and
``data.channels`` are linked into the model; with ``--task pix2pix`` or ``oasis`` a translator
and ``PairedDataModule``, see ``gan.tasks``), ``gan sample`` (images from a checkpoint alone),
``gan fid`` (FID and KID of a checkpoint or an image folder against a dataset split) and
``gan translate`` (``gan.translation.translate``: photos from label maps with a translator's
checkpoint).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from gan.dcgan.sample import sample_command
from gan.fid.command import fid_command
from gan.tasks import TASK_HELP, TRANSLATOR_TASKS, task_classes, task_of
from gan.translation.translate import translate_command
from upsample.core.checkpoint import CheckpointError
from upsample.core.cli import ToolkitCLI, exit_on_user_errors
from upsample.core.commands import EXIT_BAD_INPUT
from upsample.core.io import ImageReadError

OWN_COMMANDS = ("sample", "fid", "translate")
#: model options that say how a run is scored, not what its networks are: a checkpoint given by
#: ``--ckpt_path`` does not set them, the command line and config do (``gan validate --ckpt_path
#: CKPT --model.inception_score true``)
EVALUATION_OPTIONS = (
    "fid_every_n_epochs",
    "fid_features",
    "fid_weights",
    "fid_cache_dir",
    "kid_subset_size",
    "inception_score",
)


class GANCLI(ToolkitCLI):
    """The toolkit CLI with the data's image size and channel count linked into the model
    (a translator, ``task="pix2pix"`` or ``"oasis"``: the data's input spec)."""

    def __init__(self, *args: Any, task: str = "dcgan", **kwargs: Any) -> None:
        self.task = task
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--task", type=str, default=self.task, help=TASK_HELP)
        if self.task in TRANSLATOR_TASKS:
            parser.link_arguments(
                "data.input_spec",
                "model.input_spec",
                compute_fn=lambda spec: spec.to_dict(),
                apply_on="instantiate",
            )
            return
        parser.link_arguments("data.image_size", "model.image_size")
        parser.link_arguments("data.channels", "model.channels")

    def checkpoint_model_options(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        options = super().checkpoint_model_options(checkpoint)
        for where in (options, options.get("dict_kwargs", {})):
            for key in EVALUATION_OPTIONS:
                where.pop(key, None)
        return options


def run_cli(args: Sequence[str] | None = None, **kwargs: Any) -> GANCLI:
    """Run the LightningCLI part (``fit``, ``validate``, ...) of the task the arguments name."""
    task = task_of(sys.argv[1:] if args is None else args)
    model_class, datamodule_class = task_classes(task)
    return GANCLI(
        model_class,
        datamodule_class,
        run_name="gan",
        args=list(args) if args is not None else None,
        task=task,
        **kwargs,
    )


# --------------------------------------------------------------------------------- gan sample
# ``sample_parser`` and ``sample_command`` (either engine) live in ``gan.dcgan.sample``, which
# imports no Lightning: ``gan sample --engine onnxruntime`` runs without it (``gan.console``).


# ---------------------------------------------------------------------------------------- main
def _print_overview() -> None:
    print(
        "gan fit|validate ... (LightningCLI; see `gan fit --help`)\n"
        "gan sample --ckpt_path CKPT --output DIR [--num N --seed S --interpolate K]\n"
        "gan fid (--ckpt_path CKPT | --images DIR) [--split test --num N]\n"
        "gan translate --ckpt_path CKPT --input LABELS_DIR --output DIR [--seed S]\n"
    )


@exit_on_user_errors
def main(args: Sequence[str] | None = None) -> None:
    """The LightningCLI commands of the ``gan`` console script (exit statuses:
    ``upsample.core.cli.exit_on_user_errors``)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in OWN_COMMANDS:
        commands = {"sample": sample_command, "fid": fid_command, "translate": translate_command}
        command = commands[argv[0]]
        try:
            status = command(argv[1:])
        except (CheckpointError, ImageReadError, FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            status = EXIT_BAD_INPUT
        sys.exit(status)
    if not argv or argv[0] in ("-h", "--help"):
        _print_overview()
    try:
        run_cli(args)  # None: LightningCLI reads sys.argv itself
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
