"""Multi-process (DDP) rules and helpers shared by ``seg`` and ``gan``.

The rule: **every collective is called by every rank, in the same order.** A collective is any call
that waits for the other ranks: ``torch.distributed`` operations, Lightning's ``strategy.barrier /
broadcast / reduce / reduce_boolean_decision``, ``trainer.log_dir`` (a broadcast),
``trainer.save_checkpoint`` (a barrier), torchmetrics' ``compute()`` with ``sync_on_compute`` and
the lazy epoch-end reduction of values logged with ``sync_dist=True``. Two ranks that reach two
different collectives wait for each other forever. So:

- never call a collective inside ``if trainer.is_global_zero`` (or any rank-dependent branch);
  decide collectively first (``strategy.reduce_boolean_decision``), then branch;
- never call one in a code path that only some ranks take: an exception or signal handler, a
  validation step (the evaluation sampler may give ranks different numbers of batches), a
  callback that is disabled on non-zero ranks (the progress bar);
- rank 0 alone writes files; other ranks compute the same path without a collective
  (:func:`run_dir`).

Places that followed this rule only by accident are fixed here: :func:`run_dir` instead of
``trainer.log_dir``; :class:`SyncEpochMetrics` reduces the epoch metrics on every rank before the
progress bar (enabled on rank 0 only) would trigger the reduction there alone; the interrupt
handling in :mod:`upsample.core.interrupts` replaces Lightning's SIGTERM handler, which broadcasts
from inside the signal handler. A rank that waits too long in a collective fails after the process
group's timeout (``--collective_timeout``) with :func:`collective_failure_message`.
"""

from __future__ import annotations

import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

DEFAULT_COLLECTIVE_TIMEOUT_S = 300.0

# Strategy names that Lightning builds into a DDPStrategy, with the arguments it would use.
_DDP_STRATEGY_NAMES: dict[str, dict[str, Any]] = {
    "ddp": {},
    "ddp_find_unused_parameters_true": {"find_unused_parameters": True},
    "ddp_find_unused_parameters_false": {"find_unused_parameters": False},
    "ddp_spawn": {"start_method": "spawn"},
    "ddp_fork": {"start_method": "fork"},
    "ddp_notebook": {"start_method": "fork"},
}

# Error texts of a collective whose peers are gone or late (gloo and NCCL).
_COLLECTIVE_FAILURE_TEXTS = (
    "Timed out waiting",
    "timed out",
    "Timeout",
    "Connection closed by peer",
    "Connection reset by peer",
    "Broken pipe",
    "NCCL communicator was aborted",
    "DistBackendError",
)


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder that holds everything this run writes (the first logger's version folder).

    The same value as ``trainer.log_dir`` without its broadcast, so it is safe on any rank and in
    any code path. Every rank computes the same folder: the toolkit's CLI agrees on the version
    before the workers start (``upsample.core.runs``).
    """
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    first = trainer.loggers[0]
    if isinstance(first, CSVLogger | TensorBoardLogger):
        return Path(first.log_dir)
    return Path(first.save_dir or trainer.default_root_dir)


def ddp_strategy_with_timeout(strategy: Any, timeout_s: float) -> Any:
    """Turn a DDP strategy name (``"ddp"``, ``"ddp_spawn"``, ...) into a ``DDPStrategy`` whose
    collectives give up after ``timeout_s`` seconds; anything else is returned unchanged."""
    if not isinstance(strategy, str) or strategy not in _DDP_STRATEGY_NAMES:
        return strategy
    if timeout_s <= 0:
        raise ValueError(f"--collective_timeout must be positive, got {timeout_s}")
    return DDPStrategy(timeout=timedelta(seconds=timeout_s), **_DDP_STRATEGY_NAMES[strategy])


def is_collective_failure(error: BaseException) -> bool:
    """True for the error of a collective whose peers died, hung or called a different one."""
    text = f"{type(error).__name__}: {error}"
    return isinstance(error, RuntimeError) and any(
        marker in text for marker in _COLLECTIVE_FAILURE_TEXTS
    )


def _failed_call_site(error: BaseException) -> tuple[str, str]:
    """(collective name, the caller outside torch) from the error's traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    collective, caller = "", ""
    for index, frame in enumerate(frames):
        if frame.filename.endswith("distributed_c10d.py") and not collective:
            collective = frame.name
            outside = [f for f in frames[:index] if "/torch/" not in f.filename]
            if outside:
                caller = f"{outside[-1].filename}:{outside[-1].lineno} in {outside[-1].name}"
    if not collective:
        if any("/torch/autograd/" in frame.filename for frame in frames):
            collective = "the gradient all-reduce of DistributedDataParallel (backward pass)"
        elif frames:
            caller = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}"
    return collective or "a collective", caller


def collective_failure_message(error: BaseException, rank: int, world_size: int) -> str:
    """One paragraph saying which rank waited in which collective, and what to do next."""
    collective, caller = _failed_call_site(error)
    where = f" (called from {caller})" if caller else ""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"rank {rank} of {world_size} gave up waiting in {collective}{where}: {first_line}. "
        "Another rank died, hangs, or called a different collective: see its own output. "
        "The last checkpoint on disk is the last good one; resume with --ckpt_path last."
    )


class SyncEpochMetrics(Callback):
    """Reduce the epoch-level logged metrics on every rank at the start of the epoch-end hooks.

    Lightning reduces values logged with ``sync_dist=True, on_epoch=True`` lazily, at the first
    read. The progress bar reads them on rank 0 only (it is disabled on other ranks), so rank 0
    entered that reduction while the others went on to the next collective (a run-folder
    broadcast, a checkpoint barrier): a deadlock. Reading them here, on every rank and before any
    other epoch-end hook, keeps the order the same everywhere. The CLI puts this callback first.
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _ = trainer.callback_metrics
        _ = trainer.progress_bar_metrics

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _ = trainer.callback_metrics
        _ = trainer.progress_bar_metrics
