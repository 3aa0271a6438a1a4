"""Overhead of our Lightning training loop against a bare PyTorch loop over the same model.

Contender A, "ours (Lightning)": ``SegmentationModule`` + ``SegDataModule`` on Fashion-MNIST-Seg
canvases read from disk, with the model, data and trainer settings of
``configs/seg/fcn8s_fashion.yaml`` (decoding, augmentation in DataLoader workers, CSV logging,
learning-rate monitor, the CLI's loss guard), in a ``Trainer`` with every logger off but CSV.
Contender B, "bare loop": the same network (same hyperparameters, seed and optimiser/schedule),
a plain ``for`` loop over the same number of batches already in memory as float tensors.

One unit = one training epoch of each (the Lightning unit spans from the end of one epoch to the
end of the next: worker start-up, loading, augmentation, logging all counted), alternating.
Target (issue 6, item 3): the Lightning loop reaches >= 95% of the bare loop's images/s.
Afterwards one more epoch runs under Lightning's ``SimpleProfiler`` to show where the time goes.

Usage: ``python -m bench.overhead [--quick] [--threads 2] [--num-train 1024]``
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.profilers import SimpleProfiler
from torch import Tensor

from bench.harness import (
    BenchmarkReport,
    Table,
    base_parser,
    configure_threads,
    log_stderr,
    time_alternating,
)
from bench.lightning_stepper import LightningStepper
from common.numerics import resolve_precision

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "seg" / "fcn8s_fashion.yaml"
DATA_ROOT = REPO / "data" / "bench"
RUNS_DIR = REPO / "bench" / "runs"
TARGET = 0.95
IGNORE_INDEX = 255


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    """The LightningCLI config as a plain dict (``model``, ``data``, ``trainer`` sections)."""
    with path.open() as handle:
        return yaml.safe_load(handle)


def make_data_module(config: dict[str, Any], num_train: int) -> pl.LightningDataModule:
    """The config's data module, generating ``num_train`` canvases under ``data/bench``."""
    from seg.data.datamodule import SegDataModule

    data = dict(config.get("data", {}))
    root = DATA_ROOT / f"train{num_train}"
    data.update(root=str(root), num_train=num_train, num_val=max(8, data.get("batch_size", 16)))
    return SegDataModule(**data)


def make_module(config: dict[str, Any], seed: int) -> pl.LightningModule:
    from seg.module import SegmentationModule

    torch.manual_seed(seed)
    return SegmentationModule(**dict(config.get("model", {})))


def lightning_trainer(
    config: dict[str, Any], callbacks: list[pl.Callback], log_dir: Path, **overrides: Any
) -> pl.Trainer:
    """A Trainer with the config's precision and logging interval, CSV logging only, the CLI's
    loss guard, no validation and no checkpointing."""
    from common.callbacks import FiniteLossGuard

    trainer_config = config.get("trainer", {})
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        # An unset precision is resolved as the toolkit's CLI does (bf16 where it is native).
        "precision": resolve_precision(trainer_config.get("precision"), "cpu"),
        "log_every_n_steps": trainer_config.get("log_every_n_steps", 50),
        "max_epochs": 1000,
        "logger": CSVLogger(save_dir=str(log_dir), name="overhead"),
        "callbacks": [LearningRateMonitor(logging_interval="step"), FiniteLossGuard(), *callbacks],
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
    }
    options.update(overrides)
    return pl.Trainer(**options)


def in_memory_batches(data_module: pl.LightningDataModule) -> list[tuple[Tensor, Tensor]]:
    """One epoch of augmented training batches as (float images in [0, 1], long masks)."""
    data_module.prepare_data()
    data_module.setup("fit")
    batches = []
    for batch in data_module.train_dataloader():
        batches.append((batch["image"].float().div(255.0), batch["mask"].long()))
    return batches


def bare_loop(
    module: pl.LightningModule,
    batches: list[tuple[Tensor, Tensor]],
    total_steps: int,
    precision: str = "32-true",
) -> Callable[[], None]:
    """A plain PyTorch epoch over ``batches`` with the module's network, optimiser and schedule.

    The network and loss are the module's (a bare user would write the same forward); the
    optimiser and poly schedule follow the module's hyperparameters; ``bf16-mixed`` runs the
    forward under bf16 autocast, as Lightning's precision plugin does.
    """
    autocast = str(precision).startswith("bf16")
    hp = module.hparams
    network = module.network.train()
    channels_last = bool(hp.channels_last)
    if channels_last:
        batches = [
            (images.contiguous(memory_format=torch.channels_last), masks)
            for images, masks in batches
        ]
    parameters = [p for p in network.parameters() if p.requires_grad]
    if hp.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            parameters, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(parameters, lr=hp.lr, weight_decay=hp.weight_decay)
    scheduler = None
    if hp.lr_schedule == "poly":
        power = hp.poly_power
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: (1.0 - min(step, total_steps) / total_steps) ** power
        )

    def epoch() -> None:
        for images, masks in batches:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = network(images)
            loss = F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

    return epoch


def profile_lightning_epoch(
    config: dict[str, Any], num_train: int, log_dir: Path, seed: int
) -> list[dict[str, Any]]:
    """Run 2 epochs under SimpleProfiler; rows of the actions of the second epoch by total time."""
    profiler = SimpleProfiler()
    module = make_module(config, seed)
    data_module = make_data_module(config, num_train)
    snapshot: dict[str, list[float]] = {}

    class _Snapshot(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.current_epoch == 0:
                snapshot.update({k: list(v) for k, v in profiler.recorded_durations.items()})

    trainer = lightning_trainer(config, [_Snapshot()], log_dir, max_epochs=2, profiler=profiler)
    trainer.fit(module, datamodule=data_module)
    rows = []
    for action, durations in profiler.recorded_durations.items():
        second_epoch = durations[len(snapshot.get(action, [])) :]
        if not second_epoch:
            continue
        rows.append(
            {
                "action": action,
                "calls": len(second_epoch),
                "total s": sum(second_epoch),
                "mean ms": 1000 * sum(second_epoch) / len(second_epoch),
            }
        )
    rows.sort(key=lambda row: row["total s"], reverse=True)
    epoch_total = next((r["total s"] for r in rows if r["action"] == "run_training_epoch"), None)
    for row in rows:
        row["% of epoch"] = 100 * row["total s"] / epoch_total if epoch_total else None
    return rows


def main(argv: Sequence[str] | None = None) -> BenchmarkReport:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--num-train",
        type=int,
        default=None,
        help="training canvases, i.e. one epoch (default 1024; 64 with --quick)",
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="seg config to take from")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (default 4)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled epoch")
    parser.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="override the config's data.num_workers (to see what the loading workers cost)",
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    num_train = args.num_train or (64 if args.quick else 1024)
    repeats = args.repeats or (1 if args.quick else 4)
    config = load_config(args.config)
    if args.num_workers is not None:
        config.setdefault("data", {})["num_workers"] = args.num_workers
    log_dir = RUNS_DIR if args.results_dir == REPO / "bench" / "results" else args.results_dir
    log_dir = Path(log_dir) / "overhead_logs"
    shutil.rmtree(log_dir, ignore_errors=True)

    precision = resolve_precision(config.get("trainer", {}).get("precision"), "cpu")
    data_module = make_data_module(config, num_train)
    log_stderr("preparing data and in-memory batches")
    batches = in_memory_batches(data_module)
    batch_size = batches[0][0].shape[0]
    images_per_epoch = sum(images.shape[0] for images, _ in batches)
    total_steps = 1000 * len(batches)

    report = BenchmarkReport(
        name="overhead",
        title="Lightning training loop overhead: ours vs a bare PyTorch loop",
        settings={
            "threads": args.threads,
            "quick": args.quick,
            "config": str(
                args.config.relative_to(REPO) if args.config.is_absolute() else args.config
            ),
            "num_train": num_train,
            "batches_per_epoch": len(batches),
            "batch_size": batch_size,
            "model": config.get("model", {}),
            "data": {k: v for k, v in config.get("data", {}).items() if k != "root"},
            "precision": precision,
            "num_workers": config.get("data", {}).get("num_workers"),
        },
    )

    bare_module = make_module(config, seed=0)
    bare = bare_loop(bare_module, batches, total_steps, precision)
    lightning_module = make_module(config, seed=0)

    def fit(callback: pl.Callback) -> None:
        trainer = lightning_trainer(config, [callback], log_dir)
        trainer.fit(lightning_module, datamodule=make_data_module(config, num_train))

    loader_module = make_data_module(config, num_train)
    loader_module.setup("fit")

    def data_only() -> None:
        for _ in loader_module.train_dataloader():
            pass

    log_stderr("warm-up epoch of each")
    stepper = LightningStepper(fit, unit="epoch")
    try:
        timings = time_alternating(
            {
                "ours (Lightning)": stepper.step,
                "bare loop": bare,
                "data loading only": data_only,
            },
            warmup={"ours (Lightning)": 0, "bare loop": 1, "data loading only": 1},
            repeats=repeats,
            min_repeats=repeats,
            log=log_stderr,
        )
    finally:
        stepper.close()

    rows = []
    for name, timing in timings.items():
        rows.append(
            {
                "loop": name,
                "images/s": images_per_epoch / timing.median,
                "median s/epoch": timing.median,
                "ms/step": 1000 * timing.median / len(batches),
                "spread": timing.spread,
                "repeats": timing.repeats,
            }
        )
    ratio = rows[0]["images/s"] / rows[1]["images/s"]
    rows[0]["% of bare"] = 100 * ratio
    rows[1]["% of bare"] = 100.0
    rows[2]["% of bare"] = None
    report.tables.append(
        Table(
            f"Training epoch: {len(batches)} batches of {batch_size}"
            " (data loading only: the DataLoader iterated without a model)",
            ["loop", "images/s", "% of bare", "median s/epoch", "ms/step", "spread", "repeats"],
            rows,
        )
    )
    met = ratio >= TARGET
    report.findings.append(
        f"Lightning loop reaches {100 * ratio:.1f}% of the bare loop's throughput "
        f"(target >= {100 * TARGET:.0f}%): {'met' if met else 'NOT met'}."
    )
    per_step_gap_ms = 1000 * (timings["ours (Lightning)"].median - timings["bare loop"].median)
    report.findings.append(
        f"Lightning costs {per_step_gap_ms / len(batches):.1f} ms per step more than the bare loop "
        f"({per_step_gap_ms / 1000:.2f} s per epoch of {len(batches)} steps)."
    )
    loading = timings["data loading only"].median
    report.findings.append(
        f"Loading and augmenting one epoch alone (the same DataLoader, "
        f"{report.settings['num_workers']} workers, no model) takes {loading:.2f} s, "
        f"{100 * loading / timings['bare loop'].median:.0f}% of the bare loop's epoch; on "
        f"{report.machine['usable_cores']} cores this work competes with the "
        f"{args.threads} torch threads instead of overlapping with them."
    )

    if not args.no_profile:
        log_stderr("profiled Lightning epoch")
        profile_rows = profile_lightning_epoch(config, num_train, log_dir, seed=0)
        report.tables.append(
            Table(
                "Where a Lightning epoch's time goes (SimpleProfiler, second epoch)",
                ["action", "calls", "total s", "mean ms", "% of epoch"],
                profile_rows[:20],
                note="Nested actions overlap (run_training_batch contains the training step, "
                "backward and optimizer step), so the percentages do not add up to 100.",
            )
        )
        report.settings["profiled"] = True
    if math.isfinite(ratio):
        report.settings["ratio"] = ratio
    report.publish(args.results_dir)
    return report


if __name__ == "__main__":
    main()
