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
