"""Folder inference: masks, overlays and (optionally) class probabilities for every image.

Output layout under ``--output`` (each input's relative path is mirrored, suffix ``.png``):

- ``masks/<rel>.png``: class-index mask at the image's (EXIF-upright) size, a palette PNG
  (``np.asarray(Image.open(p))`` gives the class indices; viewers show the dataset's
  colours, the VOC colour map by default);
- ``overlays/<rel>.jpg``: the image with the coloured mask blended over it (JPEG: for
  viewing; an order of magnitude faster to encode than PNG);
- ``probabilities/<rel>.npy`` (``--save_probabilities``): float16 array (K, H, W) of class
  probabilities (softmax, averaged over overlapping tiles and flips).

Decoding runs in DataLoader worker processes and writing in background threads, so both overlap
with the network's compute. The network is an engine: ``TorchEngine`` (a PyTorch module, with
autocast and channels-last) or any callable of the same contract, such as the ONNX Runtime engine
``seg.deploy.OnnxSegmenter``; tiling, flip TTA and the writers are the same for every engine.
Large images are cut into overlapping tiles whose probabilities are blended with weights that
fall off linearly over the overlap. Unreadable files are reported by name and reason and
skipped; the others are still written.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from common.io import (
    ImageReadError,
    check_output_folder,
    list_images,
    read_image,
    save_array_atomic,
    save_image_atomic,
)
from common.numerics import autocast_dtype
from seg.visualize import Colours, overlay_image, palette_mask_image

Precision = Literal["auto", "32", "bf16"]


@runtime_checkable
class Engine(Protocol):
    """What folder inference runs: float images (N, C, H, W) in [0, 1] on ``device`` -> float32
    logits (N, K, H, W). ``precision`` ("32" or "bf16") and ``min_input_size`` describe it."""

    device: torch.device
    precision: str
    min_input_size: int

    def __call__(self, images: Tensor) -> Tensor: ...


class TorchEngine:
    """A PyTorch network as an engine: evaluation mode on ``device`` ("auto": CUDA when
    available), bf16 autocast for ``precision`` "bf16" ("auto": where the device computes bf16
    natively, ``common.numerics``), channels-last inputs when ``channels_last``."""

    def __init__(
        self,
        network: nn.Module,
        device: str = "auto",
        precision: Precision = "auto",
        channels_last: bool = True,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self._autocast_dtype = autocast_dtype(precision, self.device.type)
        self.precision = "32" if self._autocast_dtype is None else "bf16"
        self.network = network.eval().to(self.device)
        self.channels_last = channels_last
        if channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.min_input_size = int(getattr(network, "min_input_size", 1))
        self.in_channels = getattr(network, "in_channels", None)

    def __call__(self, images: Tensor) -> Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self._autocast_dtype is None:
            return self.network(images).float()
        with torch.autocast(self.device.type, dtype=self._autocast_dtype):
            return self.network(images).float()


class ImageFolderDataset(Dataset):
    """Every image file under ``root`` (recursive, sorted), read upright as RGB.

    Item: ``{"image": uint8 (3, H, W) or None, "path": relative path (str), "error": reason or
    None}``; an unreadable file gives ``image=None`` and the reason instead of raising, so one bad
    file does not stop the others.
    """

    def __init__(self, root: str | Path, exclude: str | Path | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: input folder not found")
        excluded = Path(exclude).resolve() if exclude is not None else None
        self.files = [
            path
            for path in list_images(self.root)
            if excluded is None or not path.resolve().is_relative_to(excluded)
        ]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        relative = path.relative_to(self.root).as_posix()
        try:
            image = np.asarray(read_image(path, mode="RGB"))
        except ImageReadError as error:
            return {"image": None, "path": relative, "error": error.reason}
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return {"image": tensor, "path": relative, "error": None}


def collate_images(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate for LightningCLI prediction: a batch of one image (sizes differ).
    ``{"image": uint8 (1, 3, H, W), "path": [rel], "error": [reason or None]}``."""
    if len(items) != 1:
        raise ValueError("LightningCLI prediction reads one image per batch")
    item = items[0]
    image = item["image"].unsqueeze(0) if item["image"] is not None else None
    return {"image": image, "path": [item["path"]], "error": [item["error"]]}


def _single_item(item: dict[str, Any]) -> dict[str, Any]:
    return item


def output_names(relative_paths: list[str]) -> list[str]:
    """Output stem per input (relative path without suffix); inputs that would collide
    (``a.jpg`` and ``a.png``) keep their suffix in the name (``a_jpg``)."""
    stems = [str(Path(p).with_suffix("")) for p in relative_paths]
    counts: dict[str, int] = defaultdict(int)
    for stem in stems:
        counts[stem] += 1
    return [
        stem if counts[stem] == 1 else f"{stem}_{Path(p).suffix.lstrip('.').lower()}"
        for stem, p in zip(stems, relative_paths, strict=True)
    ]


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
class _ImageState:
    """Accumulates one image's tiles until all are predicted."""

    index: int
    path: str
    image: Tensor  # uint8 (3, H, W)
    num_tiles: int
    done: int = 0
    probabilities: Tensor | None = None  # (K, H, W) weighted sum (several tiles)
    weights: Tensor | None = None  # (H, W)


@dataclass
class _Tile:
    state: _ImageState
    top: int
    left: int
    pixels: Tensor  # uint8 (3, h, w)


@dataclass
class _Finished:
    """A fully predicted image: its mask and, when they are saved, its probabilities."""

    state: _ImageState
    mask: Tensor  # uint8 (H, W)
    probabilities: Tensor | None  # (K, H, W)


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
class PredictionSummary:
    """What a folder prediction did: outputs written and files skipped (path, reason)."""

    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped

    def report(self) -> str:
        lines = [f"{len(self.written)} image(s) written, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


class _Writer:
    """Background threads that encode and write outputs atomically."""

    def __init__(
        self,
        output: Path,
        save_probabilities: bool,
        threads: int = 1,
        queue_size: int = 32,
        colours: Colours = None,
    ) -> None:
        self.output = output
        self.save_probabilities = save_probabilities
        self.colours = colours
        # Room for a few batches of finished images, so that the network never waits for a
        # writer that is still busy with the previous batch.
        self.jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self.errors: list[tuple[str, str]] = []
        self.written: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, path: str, name: str, image: Tensor, mask: Tensor, probs: Tensor | None):
        self.jobs.put((path, name, image, mask, probs))

    def _write(self, name: str, image: Tensor, mask: Tensor, probs: Tensor | None) -> None:
        mask_array = mask.numpy()
        image_array = image.permute(1, 2, 0).numpy()
        save_image_atomic(
            palette_mask_image(mask_array, self.colours),
            self.output / "masks" / f"{name}.png",
            compress_level=1,
        )
        save_image_atomic(
            overlay_image(image_array, mask_array, colours=self.colours),
            self.output / "overlays" / f"{name}.jpg",
            quality=90,
        )
        if self.save_probabilities and probs is not None:
            save_array_atomic(probs.numpy(), self.output / "probabilities" / f"{name}.npy")

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            path, name, image, mask, probs = job
            try:
                self._write(name, image, mask, probs)
                with self._lock:
                    self.written.append(path)
            except Exception as error:  # a full disk must not stop the other outputs
                with self._lock:
                    self.errors.append((path, f"cannot write outputs ({error})"))
            finally:
                self.jobs.task_done()

    def close(self) -> None:
        for _ in self._threads:
            self.jobs.put(None)
        for thread in self._threads:
            thread.join()


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
            natively: ``common.numerics``); ``self.precision`` holds the resolved one.
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
        self.tile_size = max(tile_size, self.min_size)
        self.batch_size = batch_size
        self.overlap = overlap
        self.tta = tta
        self.save_probabilities = save_probabilities
        self.precision = self.engine.precision
        self.num_workers = num_workers
        self.progress = progress
        self.writer_threads = writer_threads
        self.palette = palette if palette is not None else getattr(network, "palette", None)

    # -- network ---------------------------------------------------------------------------
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

    def predict_probabilities(self, images: Tensor) -> Tensor:
        """Class probabilities (N, K, H, W); see ``predict_scores``."""
        return self.predict_scores(images, probabilities=True)

    # -- tiling ----------------------------------------------------------------------------
    def _tiles(self, state: _ImageState) -> Iterator[_Tile]:
        _, height, width = state.image.shape
        tile_h, tile_w = min(self.tile_size, height), min(self.tile_size, width)
        for top in tile_starts(height, tile_h, self.overlap):
            for left in tile_starts(width, tile_w, self.overlap):
                pixels = state.image[:, top : top + tile_h, left : left + tile_w]
                yield _Tile(state, top, left, pixels)

    def _num_tiles(self, height: int, width: int) -> int:
        tile_h, tile_w = min(self.tile_size, height), min(self.tile_size, width)
        rows = len(tile_starts(height, tile_h, self.overlap))
        return rows * len(tile_starts(width, tile_w, self.overlap))

    def _run_tiles(self, tiles: list[_Tile], finished: list[_Finished]) -> None:
        # Probabilities are needed to blend tiles or to save them; else logits give the argmax.
        need = self.save_probabilities or any(t.state.num_tiles > 1 for t in tiles)
        scores = self.predict_scores(torch.stack([t.pixels for t in tiles]), probabilities=need)
        masks = class_argmax(scores)
        for tile, probs, mask in zip(tiles, scores, masks, strict=True):
            state = tile.state
            if state.num_tiles == 1:
                finished.append(_Finished(state, mask, probs if self.save_probabilities else None))
                continue
            _, height, width = state.image.shape
            if state.probabilities is None:
                state.probabilities = probs.new_zeros((probs.shape[0], height, width))
                state.weights = probs.new_zeros((height, width))
            h, w = probs.shape[-2:]
            window = blend_window(h, w, self.overlap).to(probs.device)
            region = (slice(tile.top, tile.top + h), slice(tile.left, tile.left + w))
            state.probabilities[(slice(None), *region)] += probs * window
            state.weights[region] += window
            state.done += 1
            if state.done == state.num_tiles:
                blended = state.probabilities / state.weights
                mask = class_argmax(blended[None])[0]
                finished.append(
                    _Finished(state, mask, blended if self.save_probabilities else None)
                )
                state.probabilities = state.weights = None

    # -- folder ----------------------------------------------------------------------------
    def predict_folder(self, input_dir: str | Path, output_dir: str | Path) -> PredictionSummary:
        """Predict every image under ``input_dir`` into ``output_dir`` (layout in the module
        docstring). Returns the summary; never raises for an unreadable input file."""
        input_dir, output_dir = Path(input_dir), Path(output_dir)
        dataset = ImageFolderDataset(input_dir, exclude=output_dir)
        check_output_folder(output_dir)
        names = output_names([p.relative_to(input_dir).as_posix() for p in dataset.files])
        summary = PredictionSummary()
        if not dataset.files:
            summary.skipped.append((str(input_dir), "no image files found"))
            return summary
        loader = DataLoader(
            dataset,
            batch_size=None,
            num_workers=self.num_workers,
            collate_fn=_single_item,
            prefetch_factor=4 if self.num_workers else None,
        )
        writer = _Writer(
            output_dir,
            self.save_probabilities,
            self.writer_threads,
            3 * self.batch_size,
            self.palette,
        )
        bar = tqdm(total=len(dataset), unit="img", disable=not self.progress, file=sys.stderr)
        pending: dict[tuple[int, int], list[_Tile]] = defaultdict(list)
        num_pending = 0

        def emit(finished: list[_Finished]) -> None:
            for done in finished:
                probs = done.probabilities.half().cpu() if done.probabilities is not None else None
                state = done.state
                writer.submit(state.path, names[state.index], state.image, done.mask.cpu(), probs)
                bar.update(1)

        def flush(shape: tuple[int, int]) -> None:
            nonlocal num_pending
            tiles = pending.pop(shape)
            num_pending -= len(tiles)
            finished: list[_Finished] = []
            for start in range(0, len(tiles), self.batch_size):
                self._run_tiles(tiles[start : start + self.batch_size], finished)
            emit(finished)

        previous_threads = torch.get_num_threads()
        if not isinstance(self.engine, TorchEngine):
            # An engine with its own thread pool (ONNX Runtime) gets the cores: the predictor's
            # own tensor work (conversion, argmax, softmax, blending) runs on one torch thread,
            # or torch's idle OpenMP threads would spin on the cores the engine computes on
            # (measured: 2.6x slower folder inference on 2 cores).
            torch.set_num_threads(1)
        try:
            for index, item in enumerate(loader):
                if item["error"] is not None:
                    summary.skipped.append((str(input_dir / item["path"]), item["error"]))
                    bar.write(f"skipped {input_dir / item['path']}: {item['error']}")
                    bar.update(1)
                    continue
                image = item["image"]
                state = _ImageState(index, item["path"], image, self._num_tiles(*image.shape[1:]))
                for tile in self._tiles(state):
                    shape = tuple(tile.pixels.shape[1:])
                    pending[shape].append(tile)
                    num_pending += 1
                    if len(pending[shape]) >= self.batch_size:
                        flush(shape)
                # Images of many different sizes: do not hold more than a few batches back.
                while num_pending > 4 * self.batch_size:
                    flush(max(pending, key=lambda s: len(pending[s])))
            for shape in list(pending):
                flush(shape)
        finally:
            torch.set_num_threads(previous_threads)
            writer.close()
            bar.close()
        summary.written = sorted(str(input_dir / p) for p in writer.written)
        summary.skipped += [(str(input_dir / p), reason) for p, reason in writer.errors]
        return summary


# -- command line (``seg predict --input DIR``) --------------------------------------------------
EXIT_SKIPPED = 1
EXIT_BAD_INPUT = 2
ENGINES = ("torch", "onnxruntime")


def folder_predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seg predict",
        description=(
            "Segment every image under a folder with a trained checkpoint (--engine torch) or "
            "an exported ONNX model (--engine onnxruntime, no Lightning needed). Writes "
            "masks/<rel>.png (palette PNG of class indices), overlays/<rel>.jpg and, with "
            "--save_probabilities, probabilities/<rel>.npy (float16, K x H x W). Exit status 1 "
            "when a file was skipped, 2 for a bad checkpoint, model, input or output folder."
        ),
    )
    parser.add_argument("--ckpt_path", help="checkpoint written by `seg fit` (--engine torch)")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="torch",
        help="torch: a checkpoint in PyTorch; onnxruntime: a `seg export` model.onnx",
    )
    parser.add_argument("--model", help="model.onnx written by `seg export` (--engine onnxruntime)")
    parser.add_argument("--input", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--batch_size", type=int, default=8, help="tiles per forward pass")
    parser.add_argument(
        "--tile_size", type=int, default=512, help="images larger than this are tiled"
    )
    parser.add_argument("--overlap", type=int, default=64, help="overlap of tiles in pixels")
    parser.add_argument("--tta", action="store_true", help="average with the flipped image")
    parser.add_argument("--save_probabilities", action="store_true")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (torch)")
    parser.add_argument(
        "--precision",
        choices=("auto", "32", "bf16"),
        default="auto",
        help="torch: bf16 autocast, float32, or auto: bf16 where the device computes it "
        "natively; onnxruntime runs the model's float32",
    )
    parser.add_argument("--num_workers", type=int, default=1, help="decoding processes")
    parser.add_argument("--writer_threads", type=int, default=1, help="output-writing threads")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    return parser


def _engine(options: argparse.Namespace) -> tuple[nn.Module | Engine, bool]:
    """The network or engine that ``options`` ask for, and whether to run it channels-last."""
    from common.deploy import DeployError

    if options.engine == "onnxruntime":
        if not options.model:
            raise DeployError("--engine onnxruntime needs --model MODEL.onnx (from seg export)")
        if options.ckpt_path:
            raise DeployError("--engine onnxruntime runs --model; --ckpt_path is for torch")
        if options.precision == "bf16" or options.device not in ("auto", "cpu"):
            raise DeployError("--engine onnxruntime runs float32 on the CPU")
        from seg.deploy import OnnxSegmenter

        return OnnxSegmenter(options.model), False
    if options.model or not options.ckpt_path:
        raise DeployError(
            "--engine torch reads --ckpt_path CKPT (from seg fit); --model is for onnxruntime"
        )
    from seg.network_io import load_network_and_hparams

    network, hparams = load_network_and_hparams(options.ckpt_path)
    return network, bool(hparams.get("channels_last", True))


def folder_predict(argv: Sequence[str]) -> int:
    """``seg predict --input DIR --output DIR ...``; returns the exit status."""
    options = folder_predict_parser().parse_args(list(argv))
    try:
        network, channels_last = _engine(options)
        predictor = FolderPredictor(
            network,
            batch_size=options.batch_size,
            tile_size=options.tile_size,
            overlap=options.overlap,
            tta=options.tta,
            save_probabilities=options.save_probabilities,
            device=options.device,
            precision=options.precision,
            num_workers=options.num_workers,
            channels_last=channels_last,
            progress=not options.no_progress,
            writer_threads=options.writer_threads,
        )
        summary = predictor.predict_folder(options.input, options.output)
    except (ValueError, OSError) as error:  # CheckpointError and DeployError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summary.report(), file=sys.stderr)
    return 0 if summary.ok else EXIT_SKIPPED
