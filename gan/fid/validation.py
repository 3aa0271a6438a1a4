"""FID/KID inside a Lightning validation loop, on one process or under DDP.

:class:`ValidationFID` drives a :class:`gan.fid.FIDEvaluator` through a validation epoch: at its
start it decides whether FID is due and where the real features come from (the cache, else the
validation batches themselves, extracted once and cached for the next epochs and runs); each
batch adds real (while collected) and generated features; at the end every rank gathers and
scores. Collectives follow ``upsample.core.distributed``'s rule: each is called by every rank in the
same order, and whether the cache exists is decided by all ranks together.

With a ``logits_loader`` it also gives the Inception Score of the generated images (the standard
network's logits, ``gan.fid.inception_score``): the logits of every rank are put back in the
images' global order, so one process and several give the same score, the score ``gan fid``
prints for as many images. Where the logits cannot be loaded (no torch-fidelity, or its weight
file offline), a warning says why and FID/KID are logged alone.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from gan.fid import FIDEvaluator
from gan.fid.features import to_uint8
from gan.fid.inception_score import InceptionScoreUnavailableError, inception_score_of_logits
from gan.fid.metric import FIDKID, gather_features, gather_in_index_order


class ValidationFID:
    """FID/KID of generated against real validation images, every ``every_n_epochs`` epochs
    (0: only in ``validate``) and never in the sanity check.

    Holds no parameters and nothing that goes into checkpoints: a Lightning module keeps it as
    a plain attribute, outside its module tree (nothing for DDP to track).
    """

    def __init__(
        self,
        evaluator: FIDEvaluator,
        every_n_epochs: int = 0,
        logits_loader: Callable[[], nn.Module] | None = None,
    ) -> None:
        self.evaluator, self.every_n_epochs = evaluator, every_n_epochs
        self.scores_inception = False  # the Inception Score is computed in the current epoch
        self._logits_loader = logits_loader
        self._logits_network: nn.Module | None = None
        self._logits: list[Tensor] = []
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
        self.scores_inception = self._logits_on(trainer, device)
        self._logits = []
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

    def _logits_on(self, trainer: pl.Trainer, device: torch.device) -> bool:
        """Whether the Inception Score is computed (decided by all ranks together: the logits
        are gathered in finish()); loads the logits network once."""
        if self._logits_loader is None:
            return False
        if self._logits_network is None:
            try:
                self._logits_network = self._logits_loader()
            except InceptionScoreUnavailableError as error:
                rank_zero_warn(f"the Inception Score (val/is) is not logged: {error}")
                self._logits_loader = None  # said once; FID/KID go on
        loaded = self._logits_network is not None
        if not trainer.strategy.reduce_boolean_decision(loaded, all=True):
            return False
        self._logits_network = self._logits_network.to(device)
        return True

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
        if self.scores_inception:
            self._logits.append(self._logits_network(to_uint8(fake)).float())

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
        scores = {
            "val/fid": results["fid"],
            "val/kid": results["kid_mean"],
            "val/kid_std": results["kid_std"],
            "val/fid_num_real": float(results["num_real"]),
            "val/fid_num_fake": float(results["num_fake"]),
        }
        if self.scores_inception:
            scores.update(self._inception_score())
        return scores

    def _inception_score(self) -> dict[str, float]:
        """IS of this epoch's generated images on every rank (a collective)."""
        if self._logits:
            local = torch.cat(self._logits)
        else:  # a rank without images still joins the gather, with no rows
            blank = torch.zeros(1, 3, 32, 32, dtype=torch.uint8, device=self.evaluator.device)
            local = self._logits_network(blank)[:0]
        logits = gather_in_index_order(local.float())
        self._logits = []
        scores = inception_score_of_logits(logits.cpu(), seed=self.evaluator.kid_seed)
        return {"val/is": scores["is_mean"], "val/is_std": scores["is_std"]}
