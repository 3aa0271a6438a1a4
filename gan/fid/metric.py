"""FID and KID from image features: the Fréchet distance of two Gaussians (two exact forms) and
an accumulating FID/KID metric that combines processes under ``torch.distributed``."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.distributed import gather_all_tensors


class _Precomputed(nn.Module):
    """Identity 'feature extractor': the metrics below receive features already computed, so one
    network pass serves both FID and KID and real features can come from the cache."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def _mean_and_covariance(metric: FrechetInceptionDistance, real: bool) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` (float64) from torchmetrics' FID sums."""
    prefix = "real" if real else "fake"
    total = getattr(metric, f"{prefix}_features_sum").double()
    outer = getattr(metric, f"{prefix}_features_cov_sum").double()
    count = getattr(metric, f"{prefix}_features_num_samples").double()
    mean = total / count
    covariance = (outer - count * torch.outer(mean, mean)) / (count - 1)
    return mean, covariance


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative round-off clamped)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(mean1: Tensor, cov1: Tensor, mean2: Tensor, cov2: Tensor) -> Tensor:
    """Fréchet distance of two Gaussians: ``|m1 - m2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))``.

    ``Tr (C1 C2)^(1/2)`` is computed as ``Tr (C1^(1/2) C2 C1^(1/2))^(1/2)`` (same eigenvalues),
    two symmetric eigenproblems instead of a general one: faster and free of complex round-off.
    """
    mean1, cov1, mean2, cov2 = (t.double() for t in (mean1, cov1, mean2, cov2))
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return (mean1 - mean2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt


def frechet_distance_from_features(real: Tensor, fake: Tensor) -> Tensor:
    """Fréchet distance of the Gaussians fitted to features ``(N, D)`` and ``(M, D)``.

    With centred features ``X``, ``Y`` and ``C1 = X^T X / (N-1)``, ``C2 = Y^T Y / (M-1)``, the
    eigenvalues of ``C1 C2`` are the squared singular values of ``X Y^T / sqrt((N-1)(M-1))``, so
    ``Tr (C1 C2)^(1/2)`` is that matrix's nuclear norm: an N x M problem, cheap when N, M < D.
    """
    real, fake = real.double(), fake.double()
    mean1, mean2 = real.mean(0), fake.mean(0)
    centred1, centred2 = real - mean1, fake - mean2
    scale1, scale2 = real.shape[0] - 1, fake.shape[0] - 1
    trace1 = centred1.square().sum() / scale1
    trace2 = centred2.square().sum() / scale2
    cross = centred1 @ centred2.T / math.sqrt(scale1 * scale2)
    trace_sqrt = torch.linalg.svdvals(cross).sum()
    return (mean1 - mean2).square().sum() + trace1 + trace2 - 2 * trace_sqrt


class FIDKID(nn.Module):
    """Accumulates real and generated features and computes FID and KID (torchmetrics).

    Under ``torch.distributed`` every process adds its own images and :meth:`compute` combines all
    processes, so each image counts once as long as each is given to one process only.
    Real features are kept across :meth:`reset_fake`.

    Args:
        num_features: feature dimension D.
        kid_subset_size: KID subset size (lowered to the number of samples when there are fewer).
        kid_subsets: number of KID subsets.
        seed: seeds KID's subset draws, so that the same features give the same KID.
    """

    def __init__(
        self,
        num_features: int,
        kid_subset_size: int = 1000,
        kid_subsets: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.kid_subset_size = kid_subset_size
        self.seed = seed
        self.fid = FrechetInceptionDistance(
            feature=_Precomputed(num_features), reset_real_features=False
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "KID keeps all features in memory"
            self.kid = KernelInceptionDistance(
                feature=_Precomputed(num_features),
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                reset_real_features=False,
            )

    def update(self, features: Tensor, real: bool) -> None:
        """Add features ``(N, D)`` of real or generated images."""
        features = features.detach().float()
        self.fid.update(features, real=real)
        self.kid.update(features, real=real)

    def local_real_features(self) -> Tensor:
        """This process's real features ``(N_local, D)``."""
        if not self.kid.real_features:
            return torch.zeros(0, self.fid.real_features_sum.numel())
        return torch.cat(list(self.kid.real_features))

    def counts(self) -> tuple[int, int]:
        """Numbers of real and generated images, summed over all processes."""
        counts = torch.stack(
            [self.fid.real_features_num_samples, self.fid.fake_features_num_samples]
        ).clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        return int(counts[0]), int(counts[1])

    def compute(self) -> dict[str, float]:
        """``{"fid", "kid_mean", "kid_std", "num_real", "num_fake"}``; the same on every process.

        Raises:
            ValueError: when fewer than 2 real or generated images were added.
        """
        self._one_tensor_per_state()
        num_real, num_fake = self.counts()
        if min(num_real, num_fake) < 2:
            raise ValueError(
                f"FID needs at least 2 real and 2 generated images, got {num_real} and {num_fake}"
            )
        num_features = self.fid.real_features_sum.numel()
        if min(num_real, num_fake) <= num_features:
            # Covariances of rank < D: the exact sample form is a small SVD, not a DxD eigenproblem.
            with self.kid.sync_context():
                fid = frechet_distance_from_features(
                    torch.cat(list(self.kid.real_features)), torch.cat(list(self.kid.fake_features))
                )
        else:
            with self.fid.sync_context():
                fid = frechet_distance(
                    *_mean_and_covariance(self.fid, real=True),
                    *_mean_and_covariance(self.fid, real=False),
                )
        self.kid.subset_size = min(self.kid_subset_size, num_real, num_fake)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            kid_mean, kid_std = self.kid.compute()
        return {
            "fid": float(fid),
            "kid_mean": float(kid_mean),
            "kid_std": float(kid_std),
            "num_real": num_real,
            "num_fake": num_fake,
        }

    def _one_tensor_per_state(self) -> None:
        """Concatenate this process's KID feature lists into one tensor each ((0, D) if empty).

        torchmetrics gathers a list state element by element (KID's states have no reduction
        that would concatenate them first), so processes that saw different numbers of batches
        (an odd-sized validation set under DDP) would call different numbers of collectives and
        hang or mix up their features."""
        for name in ("real_features", "fake_features"):
            items = getattr(self.kid, name)
            if len(items) != 1:
                empty = torch.zeros(0, self.fid.real_features_sum.numel(), device=self.kid.device)
                setattr(self.kid, name, [torch.cat(items) if items else empty])

    def reset_fake(self) -> None:
        """Forget the generated images (real features stay)."""
        self.fid.reset()
        self.kid.reset()

    def reset_all(self) -> None:
        """Forget everything, real features included."""
        for metric in (self.fid, self.kid):
            metric.reset_real_features = True
            metric.reset()
            metric.reset_real_features = False


def gather_features(features: Tensor) -> Tensor:
    """Concatenate ``(N_rank, D)`` features from every process (uneven N allowed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.cat(gather_all_tensors(features.contiguous()))
    return features


def gather_in_index_order(values: Tensor) -> Tensor:
    """``(N_rank, D)`` values of every process in the order of their global index (see
    :func:`interleave_ranks`): the same tensor a single process would have."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return interleave_ranks(gather_all_tensors(values.contiguous()))
    return values


def interleave_ranks(parts: list[Tensor]) -> Tensor:
    """One ``(N, D)`` tensor from the ``(N_r, D)`` parts of ranks ``r = 0..W-1``, where rank
    ``r`` holds global indices ``r, r + W, r + 2W, ...`` (the unpadded evaluation sampler's
    split, so ``N_r`` is ``ceil((N - r) / W)``)."""
    ordered = parts[0].new_empty((sum(len(part) for part in parts), *parts[0].shape[1:]))
    for rank, part in enumerate(parts):
        ordered[rank :: len(parts)] = part
    return ordered


def fid_from_features(
    real: Tensor, fake: Tensor, kid_subset_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """FID and KID of two feature sets ``(N, D)`` and ``(M, D)`` on one process."""
    metric = FIDKID(real.shape[1], kid_subset_size=kid_subset_size, seed=seed)
    for chunk in real.split(4096):
        metric.update(chunk, real=True)
    for chunk in fake.split(4096):
        metric.update(chunk, real=False)
    return metric.compute()
