"""``gan fid``: FID and KID (and the Inception Score where the standard network's logits are at
hand) of a checkpoint's generated images or of an image folder against a dataset split, the real
features cached; without ``--data.*`` flags a checkpoint's own training data settings are used."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Subset

from gan.dcgan.data import FittedImageFolder, GANDataModule
from gan.dcgan.network_io import load_generator
from gan.fid import FIDEvaluator, to_uint8
from gan.fid.inception_score import (
    InceptionScoreUnavailableError,
    inception_score,
    load_inception_logits,
)
from upsample.core.checkpoint import load_checkpoint
from upsample.core.commands import add_trust_argument

DATA_FLAGS = ("format", "root", "val_root", "fit", "num_workers")

FID_HELP = (
    "Print FID and KID of generated images (--ckpt_path) or of an image folder (--images) "
    "against a dataset split, and their Inception Score when the standard network's logits "
    "are at hand (torch-fidelity's weights). Real-image features are cached. Without --data.* "
    "flags a checkpoint's own training data settings are used."
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


@dataclass
class ScoredImages:
    """The images ``gan fid`` scores: their features, what they are (for the report line), and
    a way to go through them again (float batches in [-1, 1]) for the Inception Score."""

    features: Tensor
    description: str
    batches: Callable[[], Iterator[Tensor]]


def _generated(options: argparse.Namespace, evaluator: FIDEvaluator, num: int) -> ScoredImages:
    """The first ``num`` images of the checkpoint's (EMA) generator, seeded by index."""
    generator = load_generator(
        options.ckpt_path, ema=not options.no_ema, trust=options.trust_checkpoint
    ).to(options.device)
    indices, size = range(num), options.batch_size
    return ScoredImages(
        evaluator.generated_features(generator, indices, generator.nz, size),
        f"{num} images generated by {options.ckpt_path}",
        lambda: evaluator.generated_images(generator, indices, generator.nz, size),
    )


def _folder(
    options: argparse.Namespace, evaluator: FIDEvaluator, datamodule: GANDataModule, num: int
) -> ScoredImages:
    """The images of ``--images``, fitted as the real ones are (the first ``--num``)."""
    folder = FittedImageFolder(
        options.images, datamodule.image_size, datamodule.channels, datamodule.fit
    )
    dataset = Subset(folder, range(min(num, len(folder)))) if options.num else folder
    batches = lambda: iter(_loader(dataset, options, datamodule))  # noqa: E731
    return ScoredImages(
        evaluator.extract(batches()), f"{len(dataset)} images of {options.images}", batches
    )


def _loader(dataset: Any, options: argparse.Namespace, datamodule: GANDataModule) -> DataLoader:
    return DataLoader(dataset, batch_size=options.batch_size, num_workers=datamodule.num_workers)


def fid_command(argv: Sequence[str]) -> int:
    """``gan fid``; prints FID, KID and the Inception Score, returns the exit status."""
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
    real = evaluator.real_features(
        datamodule.dataset_key(options.split, options.num_real),
        lambda: _loader(real_dataset, options, datamodule),
    )
    num = options.num if options.num is not None else len(real_dataset)
    if options.ckpt_path:
        scored = _generated(options, evaluator, num)
    else:
        scored = _folder(options, evaluator, datamodule, num)
    results = evaluator.score(real, scored.features)
    print(f"fid: {results['fid']:.4f}")
    print(f"kid: {results['kid_mean']:.6f} (std {results['kid_std']:.6f})")
    if options.fid_features == "inception":  # the Inception Score needs the standard network
        print(inception_score_line(scored.batches, options.device))
    print(
        f"{scored.description} vs {results['num_real']} real images ({datamodule.format} "
        f"{options.split}, {datamodule.image_size}px, {datamodule.channels} channel(s)); "
        f"features: {evaluator.identifier}"
    )
    return 0


def inception_score_line(images: Callable[[], Iterator[Tensor]], device: str) -> str:
    """``gan fid``'s Inception Score line for the images that ``images()`` yields (float
    batches in [-1, 1]), or why it is unavailable here."""
    try:
        logits = load_inception_logits().to(device)
    except InceptionScoreUnavailableError as error:
        return f"is: unavailable: {error}"
    scores = inception_score((to_uint8(batch).to(device) for batch in images()), logits)
    return f"is: {scores['is_mean']:.4f} (std {scores['is_std']:.4f})"
