"""Joint image/mask augmentation built from albumentations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2

from seg.losses import IGNORE_INDEX

Augmentation = Literal["default", "road"]


def crop_shape(crop_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``crop_size`` as (height, width): one side for a square, or [height, width]."""
    if crop_size is None:
        return None
    if isinstance(crop_size, int):
        sides = (crop_size, crop_size)
    else:
        sides = tuple(int(side) for side in crop_size)
        if len(sides) == 1:
            sides = (sides[0], sides[0])
    if len(sides) != 2 or min(sides) < 1:
        raise ValueError(f"crop_size must be a side or [height, width] >= 1, got {crop_size}")
    return sides[0], sides[1]


def road_photometric(strength: float = 0.25) -> list[A.BasicTransform]:
    """Photometric changes that road scenes meet: exposure and contrast (sun, shade, tunnels),
    gamma, a little white balance, and now and then motion blur or sensor noise. Geometry-free,
    so masks are unchanged; no vertical flips or rotations (the road stays below the sky)."""
    return [
        A.RandomBrightnessContrast(brightness_limit=strength, contrast_limit=strength, p=0.8),
        A.RandomGamma(gamma_limit=(80, 120), p=0.3),
        A.HueSaturationValue(
            hue_shift_limit=5, sat_shift_limit=round(80 * strength), val_shift_limit=0, p=0.3
        ),
        A.OneOf(
            [
                A.MotionBlur(blur_limit=(3, 5), p=1.0),
                A.GaussNoise(std_range=(0.01, 0.04), p=1.0),
            ],
            p=0.2,
        ),
    ]


def train_transform(
    crop_size: int | Sequence[int] | None,
    scale_range: tuple[float, float] = (0.75, 1.25),
    hflip: bool = True,
    color_jitter: float = 0.2,
    augmentation: Augmentation = "default",
) -> A.Compose:
    """Random scale, pad-and-crop to ``crop_size``, horizontal flip and photometric changes.

    The image is resized bilinearly and the mask with nearest neighbour; padding fills the
    image with 0 and the mask with 255 (ignored). ``crop_size`` is a side or [height, width];
    ``None`` keeps the input size and skips scaling (then all training images must share one
    size to be batched). Photometric changes: ``augmentation="default"`` is a colour jitter of
    strength ``color_jitter``; ``"road"`` is ``road_photometric(color_jitter)`` (real photos
    of streets). ``color_jitter=0`` turns them off.
    """
    if augmentation not in ("default", "road"):
        raise ValueError(f"augmentation must be 'default' or 'road', got {augmentation!r}")
    crop = crop_shape(crop_size)
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
    steps: list[A.BasicTransform] = []
    if crop is not None:
        if (low, high) != (1.0, 1.0):
            steps.append(
                A.RandomScale(
                    scale_limit=(low - 1.0, high - 1.0),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST,
                    p=1.0,
                )
            )
        steps += [
            A.PadIfNeeded(
                crop[0],
                crop[1],
                position="random",
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
            ),
            A.RandomCrop(crop[0], crop[1]),
        ]
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0 and augmentation == "road":
        steps += road_photometric(color_jitter)
    elif color_jitter > 0:
        steps.append(
            A.ColorJitter(
                brightness=color_jitter,
                contrast=color_jitter,
                saturation=color_jitter,
                hue=min(color_jitter / 4, 0.5),
                p=0.8,
            )
        )
    return A.Compose(steps)
