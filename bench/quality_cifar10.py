"""The DCGAN on CIFAR-10, step for step against PyTorch-StudioGAN's published DCGAN log.

Trains ``configs/gan/dcgan_cifar10.yaml`` as ``gan fit`` builds it, keeping the EMA generator at
the generator steps of StudioGAN's table (``--phase train``), then scores each kept generator as
StudioGAN does: FID of 10,000 generated images against the 10,000 test images, with the standard
Inception network and the same resize as ``gan fid``; KID beside it, and the Inception Score where
the standard network's logits are at hand. The real-vs-real floor (the first 10,000 training
images against the test images) shows what the JPEG files and the set size alone cost
(``--phase score``). Features are cached a chunk at a time: a stopped run resumes.

    python -m bench.quality_cifar10 [--steps 20000] [--points 4000 10000 16000 20000]
        [--phase all|train|score] [--fid-images 10000] [--no-floor] [--threads 2] [--quick]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader, Subset

from bench import harness
from bench.budget import count_flops, parameter_count
from bench.gan_runs import Scorer
from bench.pictures import labelled_grid, save_picture
from bench.quality_cifar10_report import NAME, write_report
from gan.core.losses import discriminator_loss, generator_loss
from gan.dcgan.network_io import load_generator
from gan.dcgan.sample import sample_noise
from gan.fid import to_uint8
from gan.fid.inception_score import (
    InceptionScoreUnavailableError,
    inception_score,
    load_inception_logits,
)

CONFIG = harness.REPO / "configs/gan/dcgan_cifar10.yaml"
ARCHIVE_DIR = harness.REPO.parent / "shared" / "data" / "cifar10"
QUICK = ["--data.max_train_images", "32", "--model.ngf", "4", "--model.ndf", "4"]


class KeepGenerator(Callback):
    """Saves the module (its EMA generator with it) at the given generator steps, with the
    training CPU and wall seconds so far beside it (``step<N>.json``), and stops at the last: a
    kept generator can be scored while training goes on."""

    def __init__(self, points: list[int], folder: Path) -> None:
        self.points, self.folder = sorted(points), folder
        self.start = (time.process_time(), time.perf_counter())

    def on_train_batch_end(self, trainer: Trainer, module: Any, *args: Any) -> None:
        steps = (trainer.fit_loop.total_batch_idx + 1) // module.hparams.discriminator_steps
        path = self.folder / f"step{steps:06d}.ckpt"
        if steps in self.points and not path.is_file():
            times = {
                "train_cpu_s": round(time.process_time() - self.start[0], 1),
                "train_wall_s": round(time.perf_counter() - self.start[1], 1),
            }
            trainer.save_checkpoint(path, weights_only=True)
            harness.write_json(path.with_suffix(".json"), times)
            harness.log(f"[train] kept the generator at step {steps}")
        if steps >= self.points[-1]:
            trainer.should_stop = True


def kept_points(root: Path) -> dict[str, dict[str, float]]:
    """The kept generator steps so far and the training time at each."""
    return {
        str(int(path.stem.removeprefix("step"))): harness.read_json(path)
        for path in sorted((root / "kept").glob("step*.json"))
    }


def train(args: Any, root: Path) -> dict[str, Any]:
    """Train the config until the last point, keeping the generator at every point."""
    from gan.cli import run_cli

    options = ["--config", str(CONFIG), "--data.root", str(ARCHIVE_DIR), "--wandb", "false"]
    options += ["--trainer.default_root_dir", str(root / "runs"), "--trainer.max_epochs", "1000"]
    cli = run_cli([*options, *(QUICK if args.quick else [])], run=False)
    run = {
        "command": harness.command_line(),
        "precision": str(cli.trainer.precision),
        "model": {k: v for k, v in cli.model.hparams.items() if not k.startswith("fid_")},
        "cost": step_cost(cli.model, cli.datamodule.batch_size),
    }
    harness.write_json(root / "training.json", run)
    cli.trainer.callbacks.append(KeepGenerator(args.points, root / "kept"))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return run


def step_cost(module: Any, batch: int) -> dict[str, float]:
    """Parameters (M) of both networks and GFLOPs of one generator step with its critic steps."""
    generator, critic, hp = module.generator, module.discriminator, module.hparams
    real = torch.zeros(batch, hp.channels, hp.image_size, hp.image_size)

    def one_step() -> None:
        for _ in range(hp.discriminator_steps):
            fake = generator(torch.randn(batch, hp.nz)).detach()
            discriminator_loss(critic(real), critic(fake), hp.loss).backward()
        generator_loss(critic(generator(torch.randn(batch, hp.nz))), hp.loss).backward()

    return {
        "generator_params_m": parameter_count(generator) / 1e6,
        "discriminator_params_m": parameter_count(critic) / 1e6,
        "gflops_per_generator_step": count_flops(one_step) / 1e9,
    }


def score(args: Any, root: Path, kept: dict[str, Any]) -> dict[str, Any]:
    """FID/KID (and IS) of every kept generator, then the real-vs-real floor (unless
    ``--no-floor``: it costs as much as a point)."""
    from gan.dcgan.data import GANDataModule

    data = GANDataModule("cifar10", str(ARCHIVE_DIR), image_size=32, channels=3)
    num = 200 if args.quick else 10_000  # real images: the test split, as StudioGAN
    generated = min(num, args.fid_images)
    features = "random" if args.quick else "inception"
    scorer = Scorer(data, features, generated, num, root)
    logits = None if args.quick else inception_logits()
    points = {}
    for step in sorted(int(s) for s in kept):
        path = root / "kept" / f"step{step:06d}.ckpt"
        points[step] = scorer.score(f"step{step}", lambda p=path: load_generator(p))
        if logits is not None:
            points[step].update(inception_score_of(path, generated, logits, scorer))
    floor = None
    if not args.no_floor:
        # as many training images as each point has generated ones: the floor of that protocol
        train_images = Subset(data.dataset("train"), range(generated))
        floor = scorer.cached_score(
            root / "eval" / f"floor-{scorer.fid.identifier}-n{generated}-r{num}.json",
            lambda: scorer.fid.extract(DataLoader(train_images, batch_size=100)),
        )
    return {
        "floor": floor,
        "points": points,
        "num": num,
        "num_generated": generated,
        "features": scorer.fid.identifier,
    }


def inception_logits() -> Any:
    try:
        return load_inception_logits()
    except InceptionScoreUnavailableError as error:
        harness.log(f"[is] {error}")
        return None


def inception_score_of(path: Path, num: int, logits: Any, scorer: Scorer) -> dict[str, float]:
    generator = load_generator(path)
    images = scorer.fid.generated_images(generator, range(num), generator.nz)
    return inception_score((to_uint8(batch) for batch in images), logits)


def samples(root: Path, kept: dict[str, Any], nz: int) -> Any:
    """64 samples (the same noise) of the EMA generator at each kept step, side by side."""
    noise = sample_noise(64, nz, 0)
    panels, titles = [], []
    for step in sorted(int(s) for s in kept):
        generator = load_generator(root / "kept" / f"step{step:06d}.ckpt")
        with torch.no_grad():
            images = to_uint8(generator(noise))
        grid = images.view(8, 8, 3, 32, 32).permute(0, 3, 1, 4, 2).reshape(256, 256, 3)
        panels.append(grid.numpy())
        titles.append(f"step {step:,}")
    return labelled_grid([panels], titles, scale=1)


def main(argv: list[str] | None = None) -> None:
    """Train and/or score, and write ``quality_cifar10.json`` / ``.md`` and the samples."""
    parser = harness.base_parser(__doc__, threads=2)
    parser.add_argument("--points", type=int, nargs="+", default=[4000, 10000, 16000, 20000])
    parser.add_argument("--phase", choices=("all", "train", "score"), default="all")
    parser.add_argument("--no-floor", action="store_true", help="skip the real-vs-real floor")
    parser.add_argument(
        "--fid-images",
        type=int,
        default=10_000,
        help="generated images per point (StudioGAN: 10,000; fewer bias FID upwards)",
    )
    args = harness.parse(parser, argv)
    if args.quick:
        args.points = [2, 4]
    root = harness.run_root(NAME, args.quick)
    if args.phase in ("all", "train"):
        train(args, root)
    if args.phase == "train":
        return
    training = harness.read_json(root / "training.json")
    if training is None:
        parser.error("nothing trained yet: run --phase train first")
    kept = {**training.get("kept", {}), **kept_points(root)}
    # --points chooses which kept generators to score (FID of 10k images costs CPU time)
    training["kept"] = {step: times for step, times in kept.items() if int(step) in args.points}
    results = score(args, root, training["kept"])
    picture = samples(root, training["kept"], training["model"]["nz"])
    save_picture(picture, args.results_dir / "images" / "cifar10.png")
    write_report(args, training, results)


if __name__ == "__main__":
    main()
