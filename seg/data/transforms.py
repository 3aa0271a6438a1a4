"""Joint image/mask augmentation built from albumentations."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402

from seg.visualize import IGNORE_INDEX  # noqa: E402


def train_transform(
    crop_size: int | None,
    scale_range: tuple[float, float] = (0.75, 1.25),
    hflip: bool = True,
    color_jitter: float = 0.2,
) -> A.Compose:
    """Random scale, pad-and-crop to ``crop_size``, horizontal flip and colour jitter.

    The image is resized bilinearly and the mask with nearest neighbour; padding fills the
    image with 0 and the mask with 255 (ignored). ``crop_size=None`` keeps the input size and
    skips scaling (then all training images must share one size to be batched).
    """
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
    steps: list[A.BasicTransform] = []
    if crop_size is not None:
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
                crop_size,
                crop_size,
                position="random",
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=IGNORE_INDEX,
            ),
            A.RandomCrop(crop_size, crop_size),
        ]
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0:
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
