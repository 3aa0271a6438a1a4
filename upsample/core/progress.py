"""A progress bar that costs little at any step rate.

Lightning's bars redraw and read the logged metrics after every batch. Reading a metric from a
GPU waits for the step that computes it, and drawing a Rich bar costs about a millisecond of
Python, so at 100 steps/s the bar alone took about a tenth of the step. These bars count every
batch but redraw, and read the metrics, at most every ``interval_s`` seconds (and at the end of
each epoch), which a person cannot tell apart.
"""

from __future__ import annotations

import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

#: seconds between two redraws of the bar
DEFAULT_INTERVAL_S = 0.5


class _Throttle:
    """Whether enough time has passed since the last redraw (always at the end of a run)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = float("-inf")

    def due(self, current: int, total: int | float | None) -> bool:
        now = time.monotonic()
        if (total is not None and current >= total) or now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


class SteadyRichProgressBar(RichProgressBar):
    """Lightning's Rich bar, redrawn (and its metrics read) at most every ``interval_s``."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.throttle = _Throttle(interval_s)

    def _total(self, progress_bar_id: Any) -> float | None:
        tasks = self.progress.tasks if self.progress is not None else []
        return next((task.total for task in tasks if task.id == progress_bar_id), None)

    def _update(
        self, progress_bar_id: Any, current: int, visible: bool = True, hard: bool = False
    ) -> None:
        # every bar (training, validation, test, prediction) moves through here
        if hard or not visible or self.throttle.due(current, self._total(progress_bar_id)):
            super()._update(progress_bar_id, current, visible, hard)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self.is_disabled and self.train_progress_bar_id is None:
            self._initialize_train_progress_bar_id()  # a run resumed inside an epoch
        if self.progress is None or self.train_progress_bar_id is None:
            return
        if self.throttle.due(batch_idx + 1, self.total_train_batches):
            self.progress.update(self.train_progress_bar_id, completed=batch_idx + 1)
            self._update_metrics(trainer, pl_module)
            self.refresh()


class SteadyTQDMProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, redrawn (and its metrics read) at most every ``interval_s``."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.throttle = _Throttle(interval_s)

    def _should_update(self, current: int, total: int | float) -> bool:
        return self.is_enabled and self.throttle.due(current, total)


def steady_progress_bar(interval_s: float = DEFAULT_INTERVAL_S) -> ProgressBar:
    """The bar Lightning would choose (Rich when installed, else tqdm), throttled."""
    if _RICH_AVAILABLE:
        return SteadyRichProgressBar(interval_s)
    return SteadyTQDMProgressBar(interval_s)
