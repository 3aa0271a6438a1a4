"""Training callbacks shared by both models."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint


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


def _loss_values(outputs: Any) -> dict[str, float]:
    if isinstance(outputs, torch.Tensor):
        return {"loss": float(outputs.detach().float())} if outputs.numel() == 1 else {}
    if isinstance(outputs, Mapping):
        return {
            str(key): float(value.detach().float())
            for key, value in outputs.items()
            if isinstance(value, torch.Tensor) and value.numel() == 1 and "loss" in str(key)
        }
    return {}


class FiniteLossGuard(Callback):
    """Stop training with a clear error when a training loss becomes NaN or infinite.

    It checks the losses returned by ``training_step`` (a tensor, or a dict whose keys contain
    "loss") after every batch. The error is raised before any checkpoint of that step is written,
    so the last checkpoint on disk is the last good one. All ranks take the same decision, so a
    distributed run stops together instead of hanging.
    """

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        losses = _loss_values(outputs)
        bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            return
        step, epoch = trainer.global_step, trainer.current_epoch
        where = f"optimizer step {step}, epoch {epoch}, batch {batch_idx}"
        values = ", ".join(f"{name}={value}" for name, value in bad.items()) or "on another rank"
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
    (``common.sampling.ResumableDataLoader`` skips the batches already trained).

    Every rank takes the same decision and writes together (rank 0 writes, atomically through
    the toolkit's checkpoint I/O; a barrier follows, as in ``trainer.save_checkpoint``).
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        callbacks = [
            callback
            for callback in trainer.checkpoint_callbacks
            if isinstance(callback, ModelCheckpoint) and callback.dirpath
        ]
        if not callbacks or trainer.fast_dev_run or trainer.global_step == 0:
            return
        keepers = [callback for callback in callbacks if _writes_last(callback)]
        cut_short = _stopped_inside_epoch(trainer)
        if not cut_short and any(
            callback._last_global_step_saved == trainer.global_step for callback in keepers
        ):
            return  # last.ckpt already holds this step
        target = (keepers or callbacks)[0]
        name = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION
        path = str(Path(target.dirpath) / name)
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if cut_short:
            _mark_epoch_unfinished(checkpoint)
        trainer.strategy.save_checkpoint(checkpoint, path)
        trainer.strategy.barrier("FinalCheckpoint")
        for callback in keepers:
            callback._last_global_step_saved = trainer.global_step
            if callback.save_last:
                callback.last_model_path = path
                callback._last_checkpoint_saved = path


def _stopped_inside_epoch(trainer: pl.Trainer) -> bool:
    """Whether training ended with the current epoch's batches partly trained."""
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return 0 < done < trainer.num_training_batches


def _mark_epoch_unfinished(checkpoint: dict[str, Any]) -> None:
    """Undo, in a checkpoint's loop state, the "processed" count that Lightning gives an
    epoch it ended early, so that a resumed run restarts inside that epoch (Lightning's
    mid-epoch restart: epochs started = processed + 1) instead of after it."""
    epochs = checkpoint["loops"]["fit_loop"]["epoch_progress"]
    for counts in (epochs["total"], epochs["current"]):
        counts["processed"] = counts["started"] - 1
        counts["completed"] = min(counts["completed"], counts["processed"])
