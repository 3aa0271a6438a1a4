"""Input checks shared by the networks' ``forward`` methods."""

from __future__ import annotations

from torch import Tensor


def check_images(x: Tensor, channels: int, owner: str) -> None:
    """Raise ``ValueError`` naming ``owner`` unless ``x`` is an image batch (N, channels, H, W)."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{owner} expects (N, {channels}, H, W), got {tuple(x.shape)}")
