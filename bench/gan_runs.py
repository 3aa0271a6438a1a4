"""The DCGAN runs of the GAN quality benchmarks: the toolkit's config trained as ``gan fit`` trains
it and the classic recipe, each for a CPU budget, their runs kept for a later scoring; and FID/KID
of generators and image sets against the test split, cached a chunk at a time."""

from __future__ import annotations

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
from common.callbacks import FiniteLossGuard
from gan.data import GANDataModule
from gan.fid import FIDEvaluator, load_cached_features, save_cached_features
from gan.sample import grid_image

CONFIG = "configs/gan/dcgan_fashion.yaml"
FID_SEED = 0
CHUNK = 1000  # images per cached piece of features


def build_toolkit(root: Path, quick: bool) -> Any:
    """The GAN module and data module as ``gan fit --config CONFIG`` makes them."""
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


def train_toolkit(budget_s: float, root: Path, quick: bool, every_n: int) -> dict[str, Any]:
    """Train the shipped config for the budget, checkpoints at the marks and every ``every_n``
    batches; the training summary."""
    cli = build_toolkit(root, quick)
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
    datamodule: GANDataModule, hp: dict, tracker: BudgetTracker, root: Path, extra_step: int | None
) -> None:
    """The example's loop over the toolkit's data, Adam(lr, betas) for both networks, a
    fixed-noise sample every 100 batches; stops when ``tracker`` says the budget is spent; saves
    the generator at the marks, every ``tracker.every_n`` batches and at batch ``extra_step``."""
    seed = int(hp.get("seed", 0))
    gan = ClassicDCGAN.create(
        ngf=hp["ngf"],
        ndf=hp["ndf"],
        nc=hp["channels"],
        image_size=32,
        nz=hp["nz"],
        seed=seed,
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
    tracker.on_mark = lambda mark: gan.save_generator(root / f"classic_p{mark.percent}.pt")
    tracker.on_every = lambda batch: gan.save_generator(root / "steps" / f"{batch:06d}.pt")
    tracker.start()
    done = False
    while not done:
        for real in loader:
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


def trainings(
    args: Any, root: Path, key: dict
) -> tuple[dict | None, dict | None, dict, GANDataModule]:
    """The finished (or now trained) runs of both recipes, the toolkit's hyperparameters and
    its data module."""

    def finished(recipe: str) -> dict | None:
        saved = (
            read_json(root / recipe / "training.json")
            if args.resume or args.phase in ("fake", "eval")
            else None
        )
        return saved if saved is not None and saved.get("settings") == key else None

    toolkit, classic = finished("toolkit"), finished("classic")
    if (args.phase in ("fake", "eval") and toolkit is None) or (
        args.phase == "eval" and classic is None
    ):
        raise SystemExit(f"no finished training with settings {key} under {root}")
    if toolkit is None and "toolkit" in args.recipes and args.phase in ("all", "train"):
        toolkit = {
            **train_toolkit(
                key["budget_cpu_min"] * 60, root / "toolkit", args.quick, args.snapshot_every
            ),
            "settings": key,
        }
        write_json(root / "toolkit" / "training.json", toolkit)
    if toolkit is not None:
        hp, data = public(toolkit["hparams"]), public(toolkit["data"])
    else:  # the classic recipe alone: the same settings, read from the toolkit's config
        cli = build_toolkit(root / "toolkit", args.quick)
        hp, data = public(cli.model.hparams), public(cli.datamodule.hparams)
    datamodule = GANDataModule(**{**data, "num_workers": 0})
    if classic is None and "classic" in args.recipes and args.phase in ("all", "train"):
        tracker = BudgetTracker(key["budget_cpu_min"] * 60, every_n=args.snapshot_every)
        log(f"[classic] training for {tracker.budget_s:.0f} CPU s (float32)")
        both = args.phase != "train" or set(args.recipes) == {"toolkit", "classic"}
        train_classic(
            datamodule, hp, tracker, root / "classic", toolkit["batches"] if both else None
        )
        classic = {**tracker.summary(), "settings": key}
        write_json(root / "classic" / "training.json", classic)
        log(f"[classic] {tracker.batches} batches in {classic['train_cpu_s']:.0f} CPU s")
    return toolkit, classic, hp, datamodule


class Scorer:
    """FID/KID of generators against the test split through ``gan.fid.FIDEvaluator``. Real
    features, generated features and scores are cached under ``root`` a chunk at a time, so that
    scoring can be split between processes and resumed (a stopped run loses one chunk at most)."""

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
            self._real = self.fid.cached_real_features(self.real_key)
        if self._real is None:
            log(f"[fid] features of {len(self.real_dataset)} real test images (cached afterwards)")

            def chunk(begin: int, end: int) -> Tensor:
                subset = Subset(self.real_dataset, range(begin, end))
                return self.fid.extract(DataLoader(subset, batch_size=100))

            parts = self.root / "eval" / f"{self.fid.cache_path(self.real_key).stem}-parts"
            self._real = self._chunked(parts, len(self.real_dataset), chunk)
            self.fid.save_real_features(self.real_key, self._real)
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

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / "eval" / f"{key}-{self.fid.identifier}-n{self.num}{suffix}"

    def generated(self, key: str, make_generator: Callable[[], nn.Module]) -> Tensor:
        """Features (num, D) of the generator's images (noise seeded per image index), cached."""
        cached = load_cached_features(self._path(key, "-features.pt"), self.fid.num_features)
        if cached is not None and len(cached) == self.num:
            return cached
        generator = make_generator()
        start, wall = time.process_time(), time.perf_counter()

        def chunk(begin: int, end: int) -> Tensor:
            return self.fid.generated_features(generator, range(begin, end), generator.nz)

        fake = self._chunked(self._path(key, "-parts"), self.num, chunk)
        save_cached_features(self._path(key, "-features.pt"), fake)
        cost = {
            "eval_cpu_s": round(time.process_time() - start, 1),
            "eval_wall_s": round(time.perf_counter() - wall, 1),
        }
        write_json(self._path(key, "-features-time.json"), cost)
        log(f"[fid] generated features of {key} ({self.num} images)")
        return fake

    def score(self, key: str, make_generator: Callable[[], nn.Module]) -> dict[str, Any]:
        """FID/KID of ``num`` generated images against the real features, cached."""
        path = self._path(key, f"-r{len(self.real_dataset)}.json")
        result = read_json(path)
        if result is None:
            result = self.fid.score(self.real, self.generated(key, make_generator))
            result.update(read_json(self._path(key, "-features-time.json")) or {})
            write_json(path, result)
        log(f"[fid] {key}: FID {result['fid']:.2f}, KID {result['kid_mean']:.4f}")
        return result
