"""Training for a CPU budget: the budget tracker, its Lightning callbacks and the trainers.

Budgets are CPU seconds of the training process (``time.process_time``: every thread of the
process, data loading included because loaders run with ``num_workers=0``), not wall time, so
that runs on a shared machine stay comparable however busy it is. Work that is not training
(snapshots, checkpoint writes) runs under ``BudgetTracker.excluded()`` and is left out.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

BUDGET_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


@dataclass
class BudgetMark:
    """The state of a run when it crossed ``fraction`` of its CPU budget."""

    fraction: float
    cpu_s: float
    wall_s: float
    batches: int

    @property
    def percent(self) -> str:
        """The fraction as three digits (``025``), as checkpoint names use it."""
        return f"{round(self.fraction * 100):03d}"

    def to_json(self) -> dict[str, Any]:
        """The mark as the result files keep it (seconds rounded)."""
        return {
            "fraction": self.fraction,
            "cpu_s": round(self.cpu_s, 2),
            "wall_s": round(self.wall_s, 2),
            "batches": self.batches,
        }


@dataclass
class BudgetTracker:
    """Counts batches against a CPU budget and fires marks at fractions of it.

    ``step()`` after every training batch returns True once the budget is spent; ``on_mark`` is
    called (outside the budget) when a fraction is crossed, ``on_every`` every ``every_n``
    batches. Used by :class:`CpuBudget` (Lightning) and by plain training loops alike.
    """

    budget_s: float
    fractions: Sequence[float] = BUDGET_FRACTIONS
    on_mark: Callable[[BudgetMark], None] | None = None
    every_n: int = 0
    on_every: Callable[[int], None] | None = None
    batches: int = 0
    marks: list[BudgetMark] = field(default_factory=list)
    excluded_s: float = 0.0
    _start: float | None = None
    _wall_start: float = 0.0

    def start(self) -> None:
        """Start counting: the budget's CPU clock, batches and marks from zero."""
        self._start, self._wall_start = time.process_time(), time.perf_counter()
        self.batches, self.marks, self.excluded_s = 0, [], 0.0

    def used(self) -> float:
        """CPU seconds of training since ``start()``."""
        return 0.0 if self._start is None else time.process_time() - self._start - self.excluded_s

    @property
    def fraction_used(self) -> float:
        """The share of the budget spent so far (at most 1)."""
        return min(1.0, self.used() / self.budget_s) if self.budget_s > 0 else 1.0

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        """Leave the CPU time of the enclosed work out of the budget."""
        begin = time.process_time()
        try:
            yield
        finally:
            self.excluded_s += time.process_time() - begin

    def _fire(self, fraction: float) -> None:
        wall = time.perf_counter() - self._wall_start
        mark = BudgetMark(fraction, self.used(), wall, self.batches)
        self.marks.append(mark)
        if self.on_mark is not None:
            with self.excluded():
                self.on_mark(mark)

    def _pending(self) -> list[float]:
        done = {mark.fraction for mark in self.marks}
        return [fraction for fraction in sorted(self.fractions) if fraction not in done]

    def step(self) -> bool:
        """Count one finished batch; True when the budget is spent (all marks fired)."""
        self.batches += 1
        if self.every_n and self.on_every is not None and self.batches % self.every_n == 0:
            with self.excluded():
                self.on_every(self.batches)
        for fraction in self._pending():
            if self.used() >= fraction * self.budget_s:
                self._fire(fraction)
        return self.used() >= self.budget_s

    def finish(self) -> None:
        """Fire the marks not reached (a run that ended before its budget)."""
        for fraction in self._pending():
            self._fire(fraction)

    def summary(self) -> dict[str, Any]:
        """Budget, CPU and wall seconds of training, batches and the marks, for the results."""
        used = self.marks[-1].cpu_s if self.marks else self.used()
        wall = self.marks[-1].wall_s if self.marks else time.perf_counter() - self._wall_start
        return {
            "budget_cpu_s": self.budget_s,
            "train_cpu_s": round(used, 2),
            "train_wall_s": round(wall, 2),
            "excluded_cpu_s": round(self.excluded_s, 2),
            "batches": self.batches,
            "cpu_s_per_batch": used / self.batches if self.batches else None,
            "marks": [mark.to_json() for mark in self.marks],
        }


class CpuBudget(Callback):
    """Stops ``trainer.fit`` once the training process has used its CPU budget; with ``poly``
    the learning rate decays over the budget: lr = base * (1 - used / budget) ** poly_power."""

    def __init__(self, tracker: BudgetTracker, poly: bool = False) -> None:
        self.tracker, self.poly = tracker, poly
        self.last_lr: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tracker.start()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if not self.poly:
            return
        hp = pl_module.hparams
        self.last_lr = hp.lr * (1.0 - self.tracker.fraction_used) ** hp.poly_power
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.last_lr

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.tracker.step():
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tracker.finish()


def cpu_trainer(root: Path, precision: str | int, **options: Any) -> pl.Trainer:
    """A one-process CPU trainer without loggers, checkpoints, progress bar or model summary;
    ``options``: more ``Trainer`` arguments (callbacks, limits)."""
    return pl.Trainer(
        **{
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            **options,
        },
        precision=precision,
        default_root_dir=str(root),
    )


def budget_trainer(root: Path, precision: str | int, callbacks: Sequence[Callback]) -> pl.Trainer:
    """A CPU trainer that only trains (no validation), stopped by a :class:`CpuBudget`."""
    return cpu_trainer(
        root,
        precision,
        max_epochs=100_000,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )


def count_flops(function: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of the matmuls and convolutions ``function`` runs
    (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def forward_gflops(module: torch.nn.Module, example: torch.Tensor) -> float:
    """GFLOPs of one forward pass on ``example`` in evaluation mode."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return count_flops(lambda: module(example)) / 1e9
    finally:
        module.train(was_training)


def parameter_count(*modules: torch.nn.Module) -> int:
    """Parameters of all ``modules`` together."""
    return sum(p.numel() for module in modules for p in module.parameters())
