"""Training callbacks shared by both models."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from upsample.core.sampling import epoch_batches_done


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss became NaN or infinite."""


def newest_checkpoint(trainer: pl.Trainer) -> str:
    """The most recently written checkpoint of any ``ModelCheckpoint`` callback ("" if none): the
    one a resume would start from."""
    paths = {
        path
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint)
        for path in (callback.last_model_path, callback.best_model_path)
        if path and Path(path).is_file()
    }
    return max(paths, key=lambda path: Path(path).stat().st_mtime, default="")


def _loss_tensors(outputs: Any) -> dict[str, torch.Tensor]:
    """The scalar losses ``training_step`` returned (a tensor, or a dict's "loss" entries),
    detached, where they are."""
    if isinstance(outputs, torch.Tensor):
        return {"loss": outputs.detach()} if outputs.numel() == 1 else {}
    if isinstance(outputs, Mapping):
        return {
            str(key): value.detach()
            for key, value in outputs.items()
            if isinstance(value, torch.Tensor) and value.numel() == 1 and "loss" in str(key)
        }
    return {}


@dataclass
class _PendingStep:
    """A training step whose losses have not been checked yet."""

    step: int
    epoch: int
    batch_idx: int
    losses: dict[str, torch.Tensor]


class FiniteLossGuard(Callback):
    """Stop training with a clear error when a training loss becomes NaN or infinite.

    It checks the losses returned by ``training_step`` (a tensor, or a dict whose keys contain
    "loss"). The error names the first step whose loss was not finite and is raised before any
    checkpoint of a later step is written (checks run before every checkpoint, at the end of
    every epoch and before validation), so the last checkpoint on disk is the last good one.
    All ranks take the same decision, so a distributed run stops together instead of hanging.

    Reading a loss from a GPU waits for the step to finish, so there the losses stay on the
    device and are checked every ``check_every_n_steps`` batches (default: the trainer's
    ``log_every_n_steps``, when the logged values are read anyway); on a CPU every batch.
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._pending: list[_PendingStep] = []

    def _interval(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> int:
        if self.check_every_n_steps is not None:
            return max(1, self.check_every_n_steps)
        return 1 if pl_module.device.type == "cpu" else max(1, trainer.log_every_n_steps)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        losses = _loss_tensors(outputs)
        if losses:
            pending = _PendingStep(trainer.global_step, trainer.current_epoch, batch_idx, losses)
            self._pending.append(pending)
        # the batch count, not the step count: the same on every rank, whatever the optimiser
        if (trainer.fit_loop.total_batch_idx + 1) % self._interval(trainer, pl_module) == 0:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self.check(trainer)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # An interrupted run writes its checkpoint on rank 0 without a collective (a rank may
        # be stuck: upsample.core.interrupts); there each rank checks its own steps.
        self.check(trainer, collective=not trainer.interrupted)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: pl.Trainer, collective: bool = True) -> None:
        """Check the steps not checked yet (one read from the device for all of them); every
        rank must call it at the same point, unless not ``collective`` (then each rank decides
        for itself).

        Raises:
            NonFiniteLossError: naming the first step whose loss was not finite (here or on
                another rank), and the last good checkpoint.
        """
        pending, self._pending = self._pending, []
        first_bad: tuple[_PendingStep, dict[str, float]] | None = None
        if pending:
            flags = torch.stack(
                [
                    torch.isfinite(loss.float()).all()
                    for step in pending
                    for loss in step.losses.values()
                ]
            ).cpu()
            position = 0
            for step in pending:
                count = len(step.losses)
                if not bool(flags[position : position + count].all()):
                    values = {name: float(loss) for name, loss in step.losses.items()}
                    first_bad = (step, {k: v for k, v in values.items() if not math.isfinite(v)})
                    break
                position += count
        stop = first_bad is not None
        if collective:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        if first_bad is None:
            where, values = f"optimizer step {trainer.global_step}", "on another rank"
        else:
            step, bad = first_bad
            where = f"optimizer step {step.step}, epoch {step.epoch}, batch {step.batch_idx}"
            values = ", ".join(f"{name}={value}" for name, value in bad.items())
        checkpoint = newest_checkpoint(trainer)
        kept = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint yet"
        raise NonFiniteLossError(
            f"training loss is not finite ({values}) at {where}; training stopped, {kept}. "
            "Lower the learning rate, check the data for NaN/inf, or use float32 precision."
        )


def _writes_last(callback: ModelCheckpoint) -> bool:
    """Whether ``callback`` keeps ``last.ckpt`` in its folder (``save_last``, or a checkpoint
    named ``last`` such as the shipped configs' "last after every epoch" one)."""
    return bool(callback.save_last) or callback.filename == ModelCheckpoint.CHECKPOINT_NAME_LAST


def last_checkpoint_target(trainer: pl.Trainer) -> tuple[str, list[ModelCheckpoint]] | None:
    """Where the toolkit writes a ``last.ckpt`` of its own (``FinalCheckpoint``,
    ``GracefulShutdown``): in the folder of the checkpoint callback that keeps ``last.ckpt``,
    else of the first checkpoint callback; with the callbacks that keep it (to be told of the
    new file: ``record_last_checkpoint``). None without a checkpoint callback that has a folder.
    """
    callbacks = [
        callback
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint) and callback.dirpath
    ]
    if not callbacks:
        return None
    keepers = [callback for callback in callbacks if _writes_last(callback)]
    name = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION
    return str(Path((keepers or callbacks)[0].dirpath) / name), keepers


def record_last_checkpoint(keepers: list[ModelCheckpoint], path: str, step: int) -> None:
    """Tell the callbacks that keep ``last.ckpt`` that ``path`` now holds step ``step``."""
    for callback in keepers:
        callback._last_global_step_saved = step
        if callback.save_last:
            callback.last_model_path = path
            callback._last_checkpoint_saved = path


class FinalCheckpoint(Callback):
    """Leave ``last.ckpt`` holding the final weights and loop state whenever ``fit`` ends
    without an error: ``max_steps``, ``max_time`` or ``max_epochs`` reached, early stopping.

    Lightning's checkpoint callbacks save after validation (or at an epoch's end), so a run
    that stops inside an epoch, or between validations (configs that validate every second
    epoch), would otherwise keep an older checkpoint or none at all. At the end of training,
    unless a ``last.ckpt`` of this very step was just written, this writes one into the folder
    of the checkpoint callback that keeps ``last.ckpt`` (else of the first checkpoint
    callback); ``--ckpt_path last`` resumes from it. A signal's checkpoint is
    ``GracefulShutdown``'s; a run that fails (a non-finite loss) keeps its last good one.

    A run that stopped inside an epoch is recorded as stopped there: Lightning counts the cut
    epoch as processed when it ends it (and its checkpoint callbacks may save at that epoch's
    end), and a run resumed from such a state would start the next epoch's data order. This
    ``last.ckpt`` is then always written, with the epoch marked as unfinished, so that
    ``--ckpt_path last`` trains the rest of that epoch, in its order
    (``upsample.core.sampling.ResumableDataLoader`` skips the batches already trained).

    Every rank takes the same decision and writes together (rank 0 writes, atomically through
    the toolkit's checkpoint I/O; a barrier follows, as in ``trainer.save_checkpoint``).
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        target = last_checkpoint_target(trainer)
        if target is None or trainer.fast_dev_run or trainer.global_step == 0:
            return
        path, keepers = target
        cut_short = _stopped_inside_epoch(trainer)
        if not cut_short and any(
            callback._last_global_step_saved == trainer.global_step for callback in keepers
        ):
            return  # last.ckpt already holds this step
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if cut_short:
            _mark_epoch_unfinished(checkpoint)
        trainer.strategy.save_checkpoint(checkpoint, path)
        trainer.strategy.barrier("FinalCheckpoint")
        record_last_checkpoint(keepers, path, trainer.global_step)


def _stopped_inside_epoch(trainer: pl.Trainer) -> bool:
    """Whether training ended with the current epoch's batches partly trained."""
    return 0 < epoch_batches_done(trainer) < trainer.num_training_batches


def _mark_epoch_unfinished(checkpoint: dict[str, Any]) -> None:
    """Undo, in a checkpoint's loop state, the "processed" count that Lightning gives an
    epoch it ended early, so that a resumed run restarts inside that epoch (Lightning's
    mid-epoch restart: epochs started = processed + 1) instead of after it."""
    epochs = checkpoint["loops"]["fit_loop"]["epoch_progress"]
    for counts in (epochs["total"], epochs["current"]):
        counts["processed"] = counts["started"] - 1
        counts["completed"] = min(counts["completed"], counts["processed"])
