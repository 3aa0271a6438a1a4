"""``FolderPredictor``: masks, overlays and (optionally) class probabilities for every image of a
folder.

Output layout under the output folder (each input's relative path is mirrored, suffix ``.png``):

- ``masks/<rel>.png``: class-index mask at the image's (EXIF-upright) size, a palette PNG
  (``np.asarray(Image.open(p))`` gives the class indices; viewers show the dataset's
  colours, the VOC colour map by default);
- ``overlays/<rel>.jpg``: the image with the coloured mask blended over it (JPEG: for
  viewing; an order of magnitude faster to encode than PNG);
- ``probabilities/<rel>.npy`` (``save_probabilities``): float16 array (K, H, W) of class
  probabilities (softmax, averaged over overlapping tiles and flips).

Decoding runs in DataLoader worker processes and writing in background threads, so both overlap
with the network's compute. The network runs in an engine (``seg.inference.engines``). Large
images are cut into overlapping tiles whose probabilities are blended (``seg.inference.tiling``).
Unreadable files are reported by name and reason and skipped; the others are still written.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from seg.inference.engines import Engine, Precision, TorchEngine
from seg.inference.image_folder import UnlabelledImageFolder
from seg.inference.outputs import OutputWriter, PredictionSummary, output_names
from seg.inference.tiling import Tile, TiledImage, Tiling
from seg.visualize import Colours
from upsample.core.io import check_output_folder
from upsample.core.onnx_runtime import torch_on_one_thread


def class_argmax(scores: Tensor) -> Tensor:
    """Per-pixel class index of scores (N, K, H, W) as uint8 (N, H, W) (int64 if K > 256);
    ties go to the lower index, as with ``argmax``.

    Reducing over the strided class dimension is slow on CPUs. Channels-last scores (the PyTorch
    engine's), whose K scores of a pixel are adjacent, are reduced directly; contiguous ones (the
    ONNX Runtime engine's, blended tiles) by a running maximum over the K planes, which is up to
    twice as fast as copying them to channels-last first (480x360 images).
    """
    num_classes = scores.shape[1]
    channels_last = scores.is_contiguous(memory_format=torch.channels_last)
    if num_classes > 256 or (channels_last and not scores.is_contiguous()):
        index = scores.contiguous(memory_format=torch.channels_last).argmax(dim=1)
        return index.to(torch.uint8) if num_classes <= 256 else index
    index = torch.zeros(
        (scores.shape[0], *scores.shape[2:]), dtype=torch.uint8, device=scores.device
    )
    for planes, image_index in zip(scores, index, strict=True):
        best = planes[0].clone()
        for k in range(1, num_classes):
            image_index.masked_fill_(planes[k] > best, k)
            torch.maximum(best, planes[k], out=best)
    return index


@dataclass
class FinishedImage:
    """A fully predicted image: its mask and, when they are saved, its probabilities."""

    image: TiledImage
    mask: Tensor  # uint8 (H, W)
    probabilities: Tensor | None  # (K, H, W)


def _single_item(item: dict[str, Any]) -> dict[str, Any]:
    return item


class FolderPredictor:
    """Runs an FCN over image folders.

    Args:
        network: images (N, 3, H, W) float in [0, 1] -> logits (N, K, H, W): an ``nn.Module``
            (e.g. from ``seg.network_io.load_network``; run by a ``TorchEngine`` with
            ``device``, ``precision`` and ``channels_last``) or an ``Engine`` such as
            ``seg.deploy.OnnxSegmenter`` (which has its own device and numerics).
        batch_size: tiles (or whole images) per forward pass.
        tile_size: images larger than this in height or width are cut into tiles of at most
            ``tile_size`` x ``tile_size``; smaller images are run whole.
        overlap: pixels shared by neighbouring tiles (blended).
        tta: also run the horizontally flipped input and average the probabilities.
        save_probabilities: write ``probabilities/<rel>.npy`` (float16, (K, H, W)).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        precision: "32", "bf16" (autocast) or "auto" (bf16 where the device computes it
            natively: ``upsample.core.numerics``); ``self.precision`` holds the resolved one.
        num_workers: decoding processes; channels_last: run the network channels-last.
        progress: show a tqdm progress bar.
        writer_threads: threads encoding and writing outputs.
        palette: class colours of the mask files and overlays; default the network's
            ``palette`` (``load_network`` sets the dataset's, an ONNX model carries it in its
            metadata), else the VOC colour map.

    On a small CPU the defaults (one decoding process, one writer thread) keep the network's
    own threads from being pre-empted; raise them when decoding or writing is the bottleneck
    (large JPEGs, a GPU doing the compute).
    """

    def __init__(
        self,
        network: nn.Module | Engine,
        batch_size: int = 8,
        tile_size: int = 512,
        overlap: int = 64,
        tta: bool = False,
        save_probabilities: bool = False,
        device: str = "auto",
        precision: Precision = "auto",
        num_workers: int = 1,
        channels_last: bool = True,
        progress: bool = True,
        writer_threads: int = 1,
        palette: Colours = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= overlap < tile_size:
            raise ValueError(f"need 0 <= overlap < tile_size, got {overlap} and {tile_size}")
        if isinstance(network, nn.Module):
            self.engine: Engine = TorchEngine(network, device, precision, channels_last)
        else:
            self.engine = network
        in_channels = getattr(self.engine, "in_channels", None)
        if in_channels not in (None, 3):
            where = getattr(self.engine, "path", type(network).__name__)
            raise ValueError(
                f"{where}: the model takes {in_channels}-channel images; folder inference reads "
                "RGB (3-channel) images"
            )
        self.device = torch.device(self.engine.device)
        self.min_size = int(getattr(self.engine, "min_input_size", 1))
        self.tiling = Tiling(max(tile_size, self.min_size), overlap)
        self.batch_size = batch_size
        self.tta = tta
        self.save_probabilities = save_probabilities
        self.precision = self.engine.precision
        self.num_workers = num_workers
        self.progress = progress
        self.writer_threads = writer_threads
        self.palette = palette if palette is not None else getattr(network, "palette", None)

    @torch.inference_mode()
    def predict_scores(self, images: Tensor, probabilities: bool = True) -> Tensor:
        """uint8 or [0, 1] float images (N, 3, H, W) of one size -> scores (N, K, H, W) float32
        on the device: class probabilities (flip TTA averaged in when enabled), or the raw
        logits when ``probabilities=False`` and there is no TTA (same argmax, no softmax cost).
        Inputs smaller than the network's minimum are zero-padded and the result cropped."""
        height, width = images.shape[-2:]
        x = images.to(self.device, non_blocking=True)
        x = x.float().div_(255.0) if images.dtype == torch.uint8 else x.float()
        pad_h, pad_w = max(0, self.min_size - height), max(0, self.min_size - width)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        scores = self.engine(x)
        if self.tta:
            flipped = self.engine(x.flip(-1)).softmax(dim=1).flip(-1)
            scores = (scores.softmax(dim=1) + flipped) / 2
        elif probabilities:
            scores = scores.softmax(dim=1)
        return scores[..., :height, :width]

    def predict_tiles(self, tiles: list[Tile]) -> list[FinishedImage]:
        """Run one batch of tiles of one size; the images whose last tile this was."""
        # Probabilities are needed to blend tiles or to save them; else logits give the argmax.
        need = self.save_probabilities or any(t.image.num_tiles > 1 for t in tiles)
        scores = self.predict_scores(torch.stack([t.pixels for t in tiles]), probabilities=need)
        masks = class_argmax(scores)
        finished: list[FinishedImage] = []
        for tile, probs, mask in zip(tiles, scores, masks, strict=True):
            if tile.image.num_tiles == 1:
                kept = probs if self.save_probabilities else None
                finished.append(FinishedImage(tile.image, mask, kept))
                continue
            blended = tile.image.blend(tile.top, tile.left, probs, self.tiling.overlap)
            if blended is not None:
                mask = class_argmax(blended[None])[0]
                kept = blended if self.save_probabilities else None
                finished.append(FinishedImage(tile.image, mask, kept))
        return finished

    def predict_image(self, image: Tensor) -> Tensor:
        """The class-index mask uint8 (H, W) (CPU) of one image uint8 (3, H, W): tiled, batched,
        flipped (``tta``) and blended exactly as ``predict_folder`` does for a folder that holds
        only this image, without reading or writing files (the app's Segment tab)."""
        if image.ndim != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(
                f"expected one uint8 RGB image (3, H, W), got {image.dtype} {tuple(image.shape)}"
            )
        tiled = TiledImage(0, "", image, self.tiling.count(*image.shape[1:]))
        tiles = list(self.tiling.tiles(tiled))
        finished: list[FinishedImage] = []
        with torch_on_one_thread(not isinstance(self.engine, TorchEngine)):
            for start in range(0, len(tiles), self.batch_size):
                finished += self.predict_tiles(tiles[start : start + self.batch_size])
        return finished[0].mask.cpu()

    def predict_folder(self, input_dir: str | Path, output_dir: str | Path) -> PredictionSummary:
        """Predict every image under ``input_dir`` into ``output_dir`` (layout in the module
        docstring). Returns the summary; never raises for an unreadable input file."""
        input_dir, output_dir = Path(input_dir), Path(output_dir)
        dataset = UnlabelledImageFolder(input_dir, exclude=output_dir)
        check_output_folder(output_dir)
        summary = PredictionSummary()
        if not dataset.files:
            summary.skipped.append((str(input_dir), "no image files found"))
            return summary
        names = output_names([p.relative_to(input_dir).as_posix() for p in dataset.files])
        writer = OutputWriter(
            output_dir,
            self.save_probabilities,
            self.writer_threads,
            3 * self.batch_size,
            self.palette,
        )
        bar = tqdm(total=len(dataset), unit="img", disable=not self.progress, file=sys.stderr)
        batches = _TileBatches(self, names, writer, bar)
        try:
            with torch_on_one_thread(not isinstance(self.engine, TorchEngine)):
                for index, item in enumerate(self._loader(dataset)):
                    if item["error"] is not None:
                        summary.skipped.append((str(input_dir / item["path"]), item["error"]))
                        bar.write(f"skipped {input_dir / item['path']}: {item['error']}")
                        bar.update(1)
                        continue
                    image = item["image"]
                    count = self.tiling.count(*image.shape[1:])
                    batches.add(TiledImage(index, item["path"], image, count))
                batches.flush_all()
        finally:
            writer.close()
            bar.close()
        summary.written = sorted(str(input_dir / p) for p in writer.written)
        summary.skipped += [(str(input_dir / p), reason) for p, reason in writer.errors]
        return summary

    def _loader(self, dataset: UnlabelledImageFolder) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=self.num_workers,
            collate_fn=_single_item,
            prefetch_factor=4 if self.num_workers else None,
        )


class _TileBatches:
    """The tiles of one ``predict_folder`` call, grouped by size into batches; finished images
    go to the writer (and the progress bar)."""

    def __init__(
        self, predictor: FolderPredictor, names: list[str], writer: OutputWriter, bar: tqdm
    ) -> None:
        self.predictor = predictor
        self.names = names
        self.writer = writer
        self.bar = bar
        self.pending: dict[tuple[int, int], list[Tile]] = defaultdict(list)
        self.num_pending = 0

    def add(self, image: TiledImage) -> None:
        """Queue the tiles of ``image``, running every batch that fills up."""
        batch_size = self.predictor.batch_size
        for tile in self.predictor.tiling.tiles(image):
            shape = (int(tile.pixels.shape[1]), int(tile.pixels.shape[2]))
            self.pending[shape].append(tile)
            self.num_pending += 1
            if len(self.pending[shape]) >= batch_size:
                self.flush(shape)
        # Images of many different sizes: do not hold more than a few batches back.
        while self.num_pending > 4 * batch_size:
            self.flush(max(self.pending, key=lambda s: len(self.pending[s])))

    def flush(self, shape: tuple[int, int]) -> None:
        """Run the queued tiles of size ``shape``, in batches."""
        tiles = self.pending.pop(shape)
        self.num_pending -= len(tiles)
        batch_size = self.predictor.batch_size
        finished: list[FinishedImage] = []
        for start in range(0, len(tiles), batch_size):
            finished += self.predictor.predict_tiles(tiles[start : start + batch_size])
        for done in finished:
            probs = done.probabilities.half().cpu() if done.probabilities is not None else None
            path, name = done.image.path, self.names[done.image.index]
            self.writer.submit(path, name, done.image.image, done.mask.cpu(), probs)
            self.bar.update(1)

    def flush_all(self) -> None:
        """Run every queued tile."""
        for shape in list(self.pending):
            self.flush(shape)
