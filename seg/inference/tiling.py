"""Tiling of large images for folder inference: tiles with overlap, and the blending of their
class probabilities with weights that fall off linearly over the overlap."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``
    pixels shared between neighbours; the last tile ends at ``length``."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def blend_window(height: int, width: int, overlap: int) -> Tensor:
    """(height, width) positive weights rising linearly over ``overlap`` pixels from each edge,
    so overlapping tiles fade into each other."""

    def ramp(length: int) -> Tensor:
        index = torch.arange(length, dtype=torch.float32)
        rise = (index + 1) / (overlap + 1)
        fall = (length - index) / (overlap + 1)
        return torch.minimum(torch.ones(length), torch.minimum(rise, fall))

    return ramp(height)[:, None] * ramp(width)[None, :]


@dataclass
class TiledImage:
    """One image of the folder while its tiles are predicted; the tiles' probabilities
    accumulate here (only when there are several tiles)."""

    index: int
    path: str
    image: Tensor  # uint8 (3, H, W)
    num_tiles: int
    done: int = 0
    probabilities: Tensor | None = None  # (K, H, W) weighted sum
    weights: Tensor | None = None  # (H, W)

    def blend(self, top: int, left: int, probabilities: Tensor, overlap: int) -> Tensor | None:
        """Add one tile's ``probabilities`` (K, h, w) at (``top``, ``left``); once every tile is
        in, the blended probabilities (K, H, W) (and the sums are released), else None."""
        _, height, width = self.image.shape
        if self.probabilities is None or self.weights is None:
            self.probabilities = probabilities.new_zeros((probabilities.shape[0], height, width))
            self.weights = probabilities.new_zeros((height, width))
        h, w = probabilities.shape[-2:]
        window = blend_window(h, w, overlap).to(probabilities.device)
        region = (slice(top, top + h), slice(left, left + w))
        self.probabilities[(slice(None), *region)] += probabilities * window
        self.weights[region] += window
        self.done += 1
        if self.done < self.num_tiles:
            return None
        blended = self.probabilities / self.weights
        self.probabilities = self.weights = None
        return blended


@dataclass
class Tile:
    """The pixels of one tile, uint8 (3, h, w), at (``top``, ``left``) of ``image``."""

    image: TiledImage
    top: int
    left: int
    pixels: Tensor


@dataclass
class Tiling:
    """Cuts images larger than ``tile_size`` (in height or width) into tiles of at most
    ``tile_size`` x ``tile_size`` sharing ``overlap`` pixels; smaller images are one tile."""

    tile_size: int
    overlap: int

    def count(self, height: int, width: int) -> int:
        """The number of tiles of a ``height`` x ``width`` image."""
        tile_h, tile_w = min(self.tile_size, height), min(self.tile_size, width)
        rows = len(tile_starts(height, tile_h, self.overlap))
        return rows * len(tile_starts(width, tile_w, self.overlap))

    def tiles(self, image: TiledImage) -> Iterator[Tile]:
        """The tiles of ``image``, row by row."""
        _, height, width = image.image.shape
        tile_h, tile_w = min(self.tile_size, height), min(self.tile_size, width)
        for top in tile_starts(height, tile_h, self.overlap):
            for left in tile_starts(width, tile_w, self.overlap):
                pixels = image.image[:, top : top + tile_h, left : left + tile_w]
                yield Tile(image, top, left, pixels)
