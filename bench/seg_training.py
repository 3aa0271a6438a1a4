"""Segmentation contenders of ``bench.quality_camvid`` and ``bench.throughput_camvid``: built as
``seg fit --config`` builds them, trained for a CPU budget, their results kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.budget import BudgetTracker, CpuBudget, budget_trainer
from bench.harness import REPO, log, read_json, slug, write_json
from upsample.core.callbacks import FiniteLossGuard


@dataclass
class SegContender:
    """The module and data module ``seg fit`` would train, its precision, its logging interval
    and its recipe."""

    module: Any
    datamodule: Any
    precision: str
    log_every_n_steps: int
    recipe: dict[str, Any]


def cli_contender(config: str, args: list[str]) -> SegContender:
    """What ``seg fit --config <config> <args>`` would train."""
    from seg.cli import run_cli

    cli = run_cli(["--config", str(REPO / config), *args], run=False)
    module, seed = cli.model, int(cli.config.seed_everything)
    hidden = ("root", "num_workers", "predict_dir")
    data = {k: v for k, v in vars(cli.config.data).items() if k not in hidden}
    recipe = {"config": config, "seed": seed, "data": data, "model": dict(module.hparams)}
    trainer = cli.config.trainer
    return SegContender(
        module, cli.datamodule, str(trainer.precision), trainer.log_every_n_steps, recipe
    )


def budget_args(root: Path, data_root: Path) -> list[str]:
    """Options of every budgeted run: the data read in the process (its CPU time counted), no
    logger, the learning-rate decay left to the budget (``CpuBudget(poly=True)``)."""
    fixed = "--data.num_workers 0 --model.lr_schedule constant --trainer.logger false"
    return ["--data.root", str(data_root), "--trainer.default_root_dir", str(root), *fixed.split()]


def train_for_budget(
    name: str, contender: SegContender, budget_s: float, root: Path
) -> dict[str, Any]:
    """Train for ``budget_s`` CPU seconds with the poly decay over the budget; the summary (with
    marks at half and all of the budget)."""
    tracker = BudgetTracker(budget_s, (0.5, 1.0))
    budget = CpuBudget(tracker, poly=True)
    log(f"[{name}] training for {budget_s:.0f} CPU s ({contender.precision})")
    trainer = budget_trainer(root, contender.precision, [FiniteLossGuard(), budget])
    trainer.fit(contender.module, datamodule=contender.datamodule)
    training = tracker.summary()
    images = tracker.batches * contender.datamodule.batch_size
    epochs = images / len(contender.datamodule.datasets["train"])
    training.update(images_seen=images, epochs=epochs, last_lr=budget.last_lr)
    log(
        f"[{name}] {tracker.batches} batches in {training['train_cpu_s']:.0f} CPU s "
        f"({training['train_wall_s']:.0f} s wall)"
    )
    return training


def saved_result(run_root: Path, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """A contender's finished result in ``<run_root>/<slug>/result.json``, if its settings are
    ``key``."""
    saved = read_json(run_root / slug(name) / "result.json")
    return saved if saved is not None and saved.get("settings") == key else None


def results_of(
    names: list[str], run_root: Path, key: dict, run: Callable[[str], dict], resume: bool
) -> dict[str, dict[str, Any]]:
    """Each contender's result: the saved one under ``resume``, else ``run(name)``, saved."""
    results = {}
    for name in names:
        result = saved_result(run_root, name, key) if resume else None
        if result is None:
            result = {**run(name), "settings": key}
            write_json(run_root / slug(name) / "result.json", result)
        results[name] = result
    return results
