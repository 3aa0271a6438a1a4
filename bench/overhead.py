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

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.profilers import SimpleProfiler
from torch import Tensor

from bench.harness import (
    Report,
    Table,
    base_parser,
    log,
    parse,
    shown_path,
    time_alternating,
    work_dir,
)
from bench.lightning_stepper import LightningStepper
from bench.seg_setup import CONFIG, DATA_ROOT, load_config, make_module
from common.callbacks import FiniteLossGuard
from common.numerics import resolve_precision

TARGET = 0.95
COLUMNS = ["loop", "images/s", "% of bare", "median s/epoch", "ms/step", "spread", "repeats"]
PROFILE_COLUMNS = ["action", "calls", "total s", "mean ms", "% of epoch"]
PROFILE_NOTE = (
    "Nested actions overlap (run_training_batch contains the training step, backward and "
    "optimizer step), so the percentages do not add up to 100."
)


def make_data_module(config: dict[str, Any], num_train: int) -> pl.LightningDataModule:
    """The config's data module, generating ``num_train`` canvases under ``data/bench``."""
    from seg.data.datamodule import SegDataModule

    data = dict(config.get("data", {}))
    root = DATA_ROOT / f"train{num_train}"
    data.update(root=str(root), num_train=num_train, num_val=max(8, data.get("batch_size", 16)))
    return SegDataModule(**data)


def in_memory_batches(data_module: Any) -> list[tuple[Tensor, Tensor]]:
    """One epoch of augmented training batches as (float images in [0, 1], long masks)."""
    data_module.prepare_data()
    data_module.setup("fit")
    return [
        (b["image"].float().div(255.0), b["mask"].long()) for b in data_module.train_dataloader()
    ]


def lightning_trainer(config: dict, callbacks: list, log_dir: Path, **overrides: Any) -> pl.Trainer:
    """A Trainer with the config's precision and logging interval, CSV logging only, the CLI's
    loss guard, no validation and no checkpointing."""
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
    return pl.Trainer(**{**options, **overrides})


def bare_loop(
    module: Any, batches: list[tuple[Tensor, Tensor]], total_steps: int, precision: str
) -> Callable[[], None]:
    """A plain PyTorch epoch over ``batches`` with the module's network, loss, optimiser and
    schedule (``seg.optimization``, as the module builds them); ``bf16-mixed`` runs the forward
    under bf16 autocast, as Lightning's precision plugin does."""
    network = module.network.train()
    if module.hparams.channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    optimizer, scheduler = module.optimization.build(network.parameters(), total_steps)

    def epoch() -> None:
        for images, masks in batches:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", torch.bfloat16, enabled=precision.startswith("bf16")):
                logits = network(images)
            module.compute_loss(logits.float(), masks).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

    return epoch


def profile_epoch(config: dict[str, Any], num_train: int, log_dir: Path) -> list[dict[str, Any]]:
    """Run 2 epochs under SimpleProfiler; rows of the actions of the second epoch by total time."""
    profiler = SimpleProfiler()
    first: dict[str, int] = {}

    class _FirstEpoch(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
            if trainer.current_epoch == 0:
                first.update({k: len(v) for k, v in profiler.recorded_durations.items()})

    trainer = lightning_trainer(config, [_FirstEpoch()], log_dir, max_epochs=2, profiler=profiler)
    trainer.fit(make_module(config), datamodule=make_data_module(config, num_train))
    rows = []
    for action, durations in profiler.recorded_durations.items():
        second = durations[first.get(action, 0) :]
        if second:
            rows.append({"action": action, "calls": len(second), "total s": sum(second),
                         "mean ms": 1000 * sum(second) / len(second)})  # fmt: skip
    rows.sort(key=lambda row: row["total s"], reverse=True)
    epoch = next((r["total s"] for r in rows if r["action"] == "run_training_epoch"), None)
    for row in rows:
        row["% of epoch"] = 100 * row["total s"] / epoch if epoch else None
    return rows


def time_loops(
    config: dict, num_train: int, batches: list, loader: Any, args: Any, log_dir: Path
) -> dict:
    """One epoch of each loop in turn: Lightning, the bare loop and the data loading alone."""
    precision = args.precision
    lightning_module = make_module(config)

    def fit(callback: pl.Callback) -> None:
        trainer = lightning_trainer(config, [callback], log_dir)
        trainer.fit(lightning_module, datamodule=make_data_module(config, num_train))

    log("warm-up epoch of each")
    stepper = LightningStepper(fit, unit="epoch")
    repeats = args.repeats or (1 if args.quick else 4)
    try:
        contenders = {
            "ours (Lightning)": stepper.step,
            "bare loop": bare_loop(make_module(config), batches, 1000 * len(batches), precision),
            "data loading only": lambda: sum(1 for _ in loader.train_dataloader()),
        }
        warmup = {"ours (Lightning)": 0, "bare loop": 1, "data loading only": 1}
        return time_alternating(contenders, warmup=warmup, repeats=repeats, min_repeats=repeats)
    finally:
        stepper.close()


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the loops and write ``overhead.json`` / ``overhead.md``."""
    parser = base_parser(__doc__)
    parser.add_argument("--num-train", type=int, help="canvases per epoch (1024; 64 --quick)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="seg config to take from")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (default 4)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled epoch")
    parser.add_argument("--num-workers", type=int, help="override the config's data.num_workers")
    args = parse(parser, argv)
    config = load_config(args.config)
    data = config.setdefault("data", {})
    if args.num_workers is not None:
        data["num_workers"] = args.num_workers
    args.precision = resolve_precision(config.get("trainer", {}).get("precision"), "cpu")
    log("preparing data and in-memory batches")
    num_train = args.num_train or (64 if args.quick else 1024)
    loader = make_data_module(config, num_train)
    batches = in_memory_batches(loader)
    report = Report.start(
        args,
        "overhead",
        "Lightning training loop overhead: ours vs a bare PyTorch loop",
        config=str(shown_path(args.config)),
        num_train=num_train,
        batches_per_epoch=len(batches),
        batch_size=batches[0][0].shape[0],
        model=config.get("model", {}),
        data={k: v for k, v in data.items() if k != "root"},
        precision=args.precision,
        num_workers=data.get("num_workers"),
    )
    log_dir = work_dir(args, "overhead_logs")
    timings = time_loops(config, num_train, batches, loader, args, log_dir)
    fill_report(report, timings, batches)
    if not args.no_profile:
        log("profiled Lightning epoch")
        title = "Where a Lightning epoch's time goes (SimpleProfiler, second epoch)"
        rows = profile_epoch(config, num_train, log_dir)[:20]
        report.tables.append(Table(title, PROFILE_COLUMNS, rows, PROFILE_NOTE))
        report.settings["profiled"] = True
    report.settings["ratio"] = report.values["share"] / 100
    report.write(args.results_dir)
    return report


def fill_report(report: Report, timings: dict, batches: list) -> None:
    """The epoch table and the findings' values."""
    images = sum(len(masks) for _, masks in batches)
    ours, bare, loading = (timing.median for timing in timings.values())
    rows = [
        {
            "loop": name,
            "images/s": images / t.median,
            "% of bare": 100 * bare / t.median if name != "data loading only" else None,
            "median s/epoch": t.median,
            "ms/step": 1000 * t.median / len(batches),
            "spread": t.spread,
            "repeats": t.repeats,
        }
        for name, t in timings.items()
    ]
    title = f"Training epoch: {len(batches)} batches of {report.settings['batch_size']}"
    title += " (data loading only: the DataLoader iterated without a model)"
    report.tables.append(Table(title, COLUMNS, rows))
    ratio = bare / ours
    report.values = dict(
        share=100 * ratio,
        verdict="met" if ratio >= TARGET else "NOT met",
        gap_ms=1000 * (ours - bare) / len(batches),
        gap_s=ours - bare,
        loading_s=loading,
        loading_share=100 * loading / bare,
        cores=report.machine["usable_cores"],
    )


if __name__ == "__main__":
    main()
