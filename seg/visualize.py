"""Colour palettes, coloured masks and overlays for segmentation masks."""

from __future__ import annotations

import numpy as np
from PIL import Image

IGNORE_INDEX = 255


def voc_palette(num_entries: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: (num_entries, 3) uint8; class 0 black, 255 (ignore) cream.

    Each class index's bits are spread over the high bits of R, G and B, so neighbouring
    indices get clearly different colours.
    """
    palette = np.zeros((num_entries, 3), dtype=np.uint8)
    for index in range(num_entries):
        value, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (red, green, blue)
    return palette


PALETTE = voc_palette()


def colorize(mask: np.ndarray) -> np.ndarray:
    """Class-index mask (H, W) integer -> colour image (H, W, 3) uint8 using ``PALETTE``."""
    return PALETTE[np.asarray(mask).astype(np.int64) % len(PALETTE)]


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured ``mask`` (H, W) over ``image`` (H, W, 3) uint8; background (0) and
    ignored (255) pixels keep the image's colour. Returns (H, W, 3) uint8."""
    image = np.asarray(image)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} sizes differ")
    # Fixed-point blend in 16-bit integers: several times faster than float for big images.
    weight = round(alpha * 256)
    colours = colorize(mask).astype(np.uint16)
    blended = (image.astype(np.uint16) * (256 - weight) + colours * weight + 128) >> 8
    labelled = ((mask != 0) & (mask != IGNORE_INDEX))[..., None]
    return np.where(labelled, blended.astype(np.uint8), image)


def palette_mask_image(mask: np.ndarray) -> Image.Image:
    """Class-index mask (H, W) with values < 256 -> PIL palette ("P") image with ``PALETTE``.

    Reading it back with ``np.asarray(Image.open(path))`` gives the class indices.
    """
    if mask.size and int(mask.max()) > 255:
        raise ValueError(f"palette masks hold indices up to 255, got {int(mask.max())}")
    image = Image.fromarray(np.asarray(mask).astype(np.uint8), mode="P")
    image.putpalette(PALETTE.reshape(-1).tolist())
    return image
