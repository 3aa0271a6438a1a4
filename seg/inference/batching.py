"""Batches of tiles for folder inference: the tiles of the images read so far, grouped by size
(only tiles of one size stack into a batch), run when a batch is full, and the finished images
handed to the writer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from seg.inference.inputs import InputFile
from seg.inference.outputs import OutputJob
from seg.inference.tiling import Tile, TiledImage, Tiling


@dataclass
class FinishedImage:
    """A fully predicted image: its class-index ``mask`` uint8 (H, W), or the ``scores``
    (K, H, W) on the CPU that the writer reduces to one, and the probabilities (K, H, W) when
    they are saved."""

    image: TiledImage
    mask: Tensor | None
    probabilities: Tensor | None
    scores: Tensor | None = None


class TilePredictor(Protocol):
    """What runs the batches (``FolderPredictor``): ``batch_size`` tiles at a time, cut by
    ``tiling``, through ``predict_tiles``."""

    batch_size: int
    tiling: Tiling

    def predict_tiles(self, tiles: list[Tile]) -> list[FinishedImage]: ...


class TileBatches:
    """The tiles of one run, grouped by size into batches of ``predictor.batch_size``; each
    finished image goes to ``submit`` as an ``OutputJob`` named after ``inputs[image.index]``."""

    def __init__(
        self,
        predictor: TilePredictor,
        inputs: Sequence[InputFile],
        submit: Callable[[OutputJob], None],
    ) -> None:
        self.predictor = predictor
        self.inputs = inputs
        self.submit = submit
        self.pending: dict[tuple[int, int], list[Tile]] = defaultdict(list)
        self.num_pending = 0

    def add(self, image: TiledImage) -> int:
        """Queue the tiles of ``image``, running every batch that fills up; the number of
        images finished."""
        batch_size = self.predictor.batch_size
        finished = 0
        for tile in self.predictor.tiling.tiles(image):
            shape = (int(tile.pixels.shape[1]), int(tile.pixels.shape[2]))
            self.pending[shape].append(tile)
            self.num_pending += 1
            if len(self.pending[shape]) >= batch_size:
                finished += self.flush(shape)
        # Images of many different sizes: do not hold more than a few batches back.
        while self.num_pending > 4 * batch_size:
            finished += self.flush(max(self.pending, key=lambda s: len(self.pending[s])))
        return finished

    def flush(self, shape: tuple[int, int]) -> int:
        """Run the queued tiles of size ``shape``, in batches; the number of images finished."""
        tiles = self.pending.pop(shape)
        self.num_pending -= len(tiles)
        batch_size = self.predictor.batch_size
        finished: list[FinishedImage] = []
        for start in range(0, len(tiles), batch_size):
            finished += self.predictor.predict_tiles(tiles[start : start + batch_size])
        for done in finished:
            source = self.inputs[done.image.index]
            self.submit(
                OutputJob(
                    path=source.path,
                    name=source.name,
                    image=done.image.image,
                    mask=done.mask.cpu() if done.mask is not None else None,
                    scores=done.scores,
                    probabilities=(
                        done.probabilities.half().cpu() if done.probabilities is not None else None
                    ),
                )
            )
        return len(finished)

    def flush_all(self) -> int:
        """Run every queued tile; the number of images finished."""
        return sum(self.flush(shape) for shape in list(self.pending))
