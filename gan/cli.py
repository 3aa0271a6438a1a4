"""``gan`` command line.

``gan fit|validate`` (LightningCLI with ``GANModule`` and ``GANDataModule``; ``data.image_size`` and
``data.channels`` are linked into the model; with ``--task pix2pix`` or ``oasis`` a translator
and ``PairedDataModule``, see ``gan.tasks``), ``gan sample`` (images from a checkpoint alone),
``gan fid`` (FID and KID of a checkpoint or an image folder against a dataset split) and
``gan translate`` (``gan.translation.translate``: photos from label maps with a translator's
checkpoint).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser
from torch.utils.data import DataLoader, Subset

from gan.dcgan.data import FittedImageFolder, GANDataModule
from gan.dcgan.network_io import load_generator
from gan.dcgan.sample import sample_command
from gan.fid import FIDEvaluator
from gan.tasks import TASK_HELP, TRANSLATOR_TASKS, task_classes, task_of
from gan.translation.translate import translate_command
from upsample.core.checkpoint import CheckpointError, load_checkpoint
from upsample.core.cli import ToolkitCLI, exit_on_user_errors
from upsample.core.commands import EXIT_BAD_INPUT, add_trust_argument
from upsample.core.io import ImageReadError

OWN_COMMANDS = ("sample", "fid", "translate")
DATA_FLAGS = ("format", "root", "val_root", "fit", "num_workers")


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


# ------------------------------------------------------------------------------------ gan fid
FID_HELP = (
    "Print FID and KID of generated images (--ckpt_path) or of an image folder (--images) "
    "against a dataset split. Real-image features are cached. Without --data.* flags a "
    "checkpoint's own training data settings are used."
)


def fid_parser() -> argparse.ArgumentParser:
    """The arguments of ``gan fid``."""
    parser = argparse.ArgumentParser(prog="gan fid", description=FID_HELP)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt_path", help="checkpoint written by `gan fit`")
    source.add_argument(
        "--images",
        "--input",
        dest="images",
        help="folder of images to evaluate (searched recursively)",
    )
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument(
        "--num",
        type=int,
        default=None,
        help="generated (or folder) images; default: as many as the real split holds",
    )
    parser.add_argument("--num_real", type=int, default=None, help="first N real images only")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated noise")
    parser.add_argument("--no_ema", "--no-ema", action="store_true")
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--fid_features", default="inception", help="inception (standard) or random (tests)"
    )
    parser.add_argument("--fid_weights", default=None, help="TorchScript FID network file")
    parser.add_argument("--cache_dir", default=None, help="real-feature cache folder")
    parser.add_argument("--kid_subset_size", type=int, default=1000)
    for flag in DATA_FLAGS:
        parser.add_argument(f"--data.{flag}", dest=f"data_{flag}", default=None)
    parser.add_argument("--data.image_size", dest="data_image_size", type=int, default=None)
    parser.add_argument("--data.channels", dest="data_channels", type=int, default=None)
    add_trust_argument(parser)
    return parser


def _data_settings(options: argparse.Namespace, checkpoint: dict[str, Any] | None) -> dict:
    """Data module arguments: command line, else the checkpoint's, else the class defaults."""
    signature = inspect.signature(GANDataModule.__init__)
    settings = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name != "self" and parameter.default is not inspect.Parameter.empty
    }
    if checkpoint is not None:
        saved = checkpoint.get("datamodule_hyper_parameters") or {}
        settings.update({key: value for key, value in saved.items() if key in settings})
    for flag in (*DATA_FLAGS, "image_size", "channels"):
        value = getattr(options, f"data_{flag}")
        if value is not None:
            settings[flag] = int(value) if flag == "num_workers" else value
    if checkpoint is not None:  # the real images must have the generator's shape
        hparams = checkpoint.get("hyper_parameters") or {}
        for key in ("image_size", "channels"):
            if key in hparams:
                settings[key] = hparams[key]
    settings["max_train_images"] = settings["max_val_images"] = None
    return settings


def fid_command(argv: Sequence[str]) -> int:
    """``gan fid``; prints FID and KID, returns the exit status."""
    options = fid_parser().parse_args(list(argv))
    trust = options.trust_checkpoint
    checkpoint = load_checkpoint(options.ckpt_path, trust=trust) if options.ckpt_path else None
    datamodule = GANDataModule(**_data_settings(options, checkpoint))
    real_dataset = datamodule.dataset(options.split)
    if options.num_real is not None and options.num_real < len(real_dataset):
        real_dataset = Subset(real_dataset, range(options.num_real))
    evaluator = FIDEvaluator(
        options.fid_features,
        options.fid_weights,
        options.cache_dir,
        kid_subset_size=options.kid_subset_size,
        seed=options.seed,
        device=options.device,
    )

    def batches(dataset: Any) -> DataLoader:
        return DataLoader(
            dataset, batch_size=options.batch_size, num_workers=datamodule.num_workers
        )

    real = evaluator.real_features(
        datamodule.dataset_key(options.split, options.num_real), lambda: batches(real_dataset)
    )
    num = options.num if options.num is not None else len(real_dataset)
    if options.ckpt_path:
        generator = load_generator(options.ckpt_path, ema=not options.no_ema, trust=trust)
        generator = generator.to(options.device)
        fake = evaluator.generated_features(generator, range(num), generator.nz, options.batch_size)
        what = f"{num} images generated by {options.ckpt_path}"
    else:
        folder = FittedImageFolder(
            options.images, datamodule.image_size, datamodule.channels, datamodule.fit
        )
        dataset = Subset(folder, range(min(num, len(folder)))) if options.num else folder
        fake = evaluator.extract(batches(dataset))
        what = f"{len(dataset)} images of {options.images}"
    results = evaluator.score(real, fake)
    print(f"fid: {results['fid']:.4f}")
    print(f"kid: {results['kid_mean']:.6f} (std {results['kid_std']:.6f})")
    print(
        f"{what} vs {results['num_real']} real images ({datamodule.format} {options.split}, "
        f"{datamodule.image_size}px, {datamodule.channels} channel(s)); features: "
        f"{evaluator.identifier}"
    )
    return 0


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
