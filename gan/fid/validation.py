"""FID/KID inside a Lightning validation loop, on one process or under DDP.

:class:`ValidationFID` drives a :class:`gan.fid.FIDEvaluator` through a validation epoch: at its
start it decides whether FID is due and where the real features come from (the cache, else the
validation batches themselves, extracted once and cached for the next epochs and runs); each
batch adds real (while collected) and generated features; at the end every rank gathers and
scores. Collectives follow ``upsample.core.distributed``'s rule: each is called by every rank in the
same order, and whether the cache exists is decided by all ranks together.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from gan.fid import FIDEvaluator
from gan.fid.metric import FIDKID, gather_features


class ValidationFID:
    """FID/KID of generated against real validation images, every ``every_n_epochs`` epochs
    (0: only in ``validate``) and never in the sanity check.

    Holds no parameters and nothing that goes into checkpoints: a Lightning module keeps it as
    a plain attribute, outside its module tree (nothing for DDP to track).
    """

    def __init__(self, evaluator: FIDEvaluator, every_n_epochs: int = 0) -> None:
        self.evaluator, self.every_n_epochs = evaluator, every_n_epochs
        self.active = False  # FID is computed in the current validation epoch
        self._metric: FIDKID | None = None
        self._collect_real = False
        self._real_ready = False
        self._cache_key: str | None = None
        self._fake_count = 0

    def _due(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        if trainer.state.fn == TrainerFn.VALIDATING:
            return True
        every = self.every_n_epochs
        return every > 0 and (trainer.current_epoch + 1) % every == 0

    def _metric_on(self, device: torch.device) -> FIDKID:
        self.evaluator.to(device)
        if self._metric is None:
            self._metric = self.evaluator.new_metric()
        return self._metric.to(device)

    def start(self, trainer: pl.Trainer, device: torch.device) -> None:
        """At the start of a validation epoch: sets :attr:`active`; when the real features are
        not known yet, loads them from the cache (decided by all ranks together) or arranges to
        collect them from the batches."""
        self.active = self._due(trainer)
        if not self.active:
            return
        metric = self._metric_on(device)
        metric.reset_fake()
        self._fake_count = 0
        if self._real_ready:
            return
        metric.reset_all()
        datamodule = getattr(trainer, "datamodule", None)
        self._cache_key = getattr(datamodule, "val_dataset_key", None)
        if self._cache_key is not None:
            cached = self.evaluator.cached_real_features(self._cache_key)
            # Decided together: a rank that took the other branch would skip the gather in
            # finish() while the others wait in it (upsample.core.distributed).
            if trainer.strategy.reduce_boolean_decision(cached is not None, all=True):
                if trainer.global_rank == 0:  # every cached image counted once, on one rank
                    metric.update(cached.to(device), real=True)
                self._real_ready = True
                return
        self._collect_real = True

    def noise(self, batch_size: int, nz: int, rank: int, world_size: int) -> Tensor:
        """Noise ``(batch_size, nz)`` for as many generated images as a validation batch holds
        real ones: global index ``rank + k * world_size``, as the unpadded evaluation sampler
        deals out the real ones, so every generated image is made once in all."""
        indices = [rank + world_size * (self._fake_count + k) for k in range(batch_size)]
        self._fake_count += batch_size
        return self.evaluator.noise(indices, nz)

    def update(self, real: Tensor, fake: Tensor) -> None:
        """Add a validation batch: its real images (while their features are being collected)
        and as many generated ones, both ``(B, C, H, W)`` in [-1, 1]."""
        metric = self._metric_on(real.device)
        if self._collect_real:
            metric.update(self.evaluator.image_features(real), real=True)
        metric.update(self.evaluator.image_features(fake), real=False)

    def finish(self, trainer: pl.Trainer) -> dict[str, float] | None:
        """At the end of a validation epoch (every rank): the scores to log (the same on every
        rank), or None when FID was not due; newly collected real features are cached."""
        if not self.active:
            return None
        metric = self._metric
        if self._collect_real:
            features = gather_features(metric.local_real_features())
            if trainer.is_global_zero and self._cache_key is not None:
                self.evaluator.save_real_features(self._cache_key, features)
            self._collect_real = False
            self._real_ready = True
        results = metric.compute()
        metric.reset_fake()
        return {
            "val/fid": results["fid"],
            "val/kid": results["kid_mean"],
            "val/kid_std": results["kid_std"],
            "val/fid_num_real": float(results["num_real"]),
            "val/fid_num_fake": float(results["num_fake"]),
        }
