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

The inputs are a folder or a list file (``seg.inference.inputs``), or one share of them
(``Shard``: ``--shard K/N``, DDP ranks). Decoding runs in DataLoader worker processes, the network
in the main thread, and the masks (the argmax of CPU scores), encoding and writing in background
threads, all at once, with bounded queues between them (``seg.inference.folder_run``). The
network runs in an engine (``seg.inference.engines``; the PyTorch engine with its batch norms
folded into the convolutions). Large images are cut into overlapping tiles whose probabilities
are blended (``seg.inference.tiling``). Unreadable files are reported by name and reason and
skipped; the others are still written. Inputs whose outputs a previous run completed are left as
they are unless ``overwrite`` (``seg.inference.resume``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.inference.argmax import class_argmax
from seg.inference.batching import FinishedImage
from seg.inference.engines import Engine, Precision, TorchEngine
from seg.inference.folder_run import run_share
from seg.inference.inputs import InputFile, InputFiles
from seg.inference.outputs import OutputLayout
from seg.inference.progress import FolderProgress
from seg.inference.resume import plan_share
from seg.inference.stopping import StopRequest
from seg.inference.summary import PredictionSummary
from seg.inference.tiling import Tile, TiledImage, Tiling
from seg.inference.workers import Count
from seg.visualize import Colours
from upsample.core.io import check_output_folder
from upsample.core.onnx_runtime import torch_on_one_thread

#: makes the progress display of a run: (images to predict, already complete, enabled) -> it
ProgressFactory = Callable[[int, int, bool], FolderProgress]


class FolderPredictor:
    """Runs an FCN over image folders.

    Args:
        network: images (N, 3, H, W) float in [0, 1] -> logits (N, K, H, W): an ``nn.Module``
            (e.g. from ``seg.network_io.load_network``; run by a ``TorchEngine`` with
            ``device``, ``precision``, ``channels_last`` and ``fold_batch_norm``) or an
            ``Engine`` such as ``seg.deploy.OnnxSegmenter`` (its own device and numerics).
        batch_size: tiles (or whole images) per forward pass.
        tile_size: images larger than this in height or width are cut into tiles of at most
            ``tile_size`` x ``tile_size``; smaller images are run whole.
        overlap: pixels shared by neighbouring tiles (blended).
        tta: also run the horizontally flipped input and average the probabilities.
        save_probabilities: write ``probabilities/<rel>.npy`` (float16, (K, H, W)).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        precision: "32", "bf16" (autocast) or "auto" (bf16 where the device computes it
            natively: ``upsample.core.numerics``); ``self.precision`` holds the resolved one.
        num_workers: decoding processes; writer_threads: threads that make the masks of CPU
            scores and encode and write the outputs; "auto": the cores the engine leaves
            (``seg.inference.workers.pipeline_workers``), at least one each.
        channels_last: run the network channels-last.
        progress: show a progress bar (images/s, time left, failed and complete counts).
        palette: class colours of the mask files and overlays; default the network's
            ``palette`` (``load_network`` sets the dataset's, an ONNX model carries it in its
            metadata), else the VOC colour map.
        overlays: write ``overlays/<rel>.jpg`` (masks alone are the fastest).
        fold_batch_norm: fold batch norms into convolutions for the PyTorch engine
            (``upsample.core.folding``; on a copy, the network given is unchanged).
        processes_per_machine: processes sharing this machine's cores ("auto" counts).
        masks_in_writers: make the masks of whole images scored on the CPU in the writer
            threads, beside the network's next batch (False: in the main thread right after
            the network, as folder inference did before).
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
        num_workers: Count = "auto",
        channels_last: bool = True,
        progress: bool = True,
        writer_threads: Count = "auto",
        palette: Colours = None,
        overlays: bool = True,
        fold_batch_norm: bool = True,
        processes_per_machine: int = 1,
        masks_in_writers: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= overlap < tile_size:
            raise ValueError(f"need 0 <= overlap < tile_size, got {overlap} and {tile_size}")
        if isinstance(network, nn.Module):
            self.engine: Engine = TorchEngine(
                network, device, precision, channels_last, fold_batch_norm
            )
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
        self.writer_threads = writer_threads
        self.progress = progress
        self.palette = palette if palette is not None else getattr(network, "palette", None)
        self.overlays = overlays
        self.processes_per_machine = processes_per_machine
        self.masks_in_writers = masks_in_writers

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
        """Run one batch of tiles of one size; the images whose last tile this was. The masks of
        whole images scored on the CPU are left to the writer threads (``FinishedImage.scores``),
        which compute them while the network runs the next batch."""
        # Probabilities are needed to blend tiles or to save them; else logits give the argmax.
        need = self.save_probabilities or any(t.image.num_tiles > 1 for t in tiles)
        scores = self.predict_scores(torch.stack([t.pixels for t in tiles]), probabilities=need)
        on_cpu = self.masks_in_writers and scores.device.type == "cpu" and scores.shape[1] <= 256
        masks = None if on_cpu else class_argmax(scores)
        finished: list[FinishedImage] = []
        for index, (tile, probs) in enumerate(zip(tiles, scores, strict=True)):
            kept = probs if self.save_probabilities else None
            if tile.image.num_tiles == 1:
                mask = masks[index] if masks is not None else None
                finished.append(FinishedImage(tile.image, mask, kept, probs if on_cpu else None))
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
            done = finished[0]
            if done.mask is None and done.scores is not None:
                return class_argmax(done.scores[None])[0]
        return done.mask.cpu()

    def predict_folder(
        self, input_dir: str | Path, output_dir: str | Path, overwrite: bool = False
    ) -> PredictionSummary:
        """Predict every image under ``input_dir`` (a folder, or a text file listing image paths)
        into ``output_dir`` (layout in the module docstring); images whose outputs are complete
        there are left as they are unless ``overwrite``. Returns the summary; never raises for
        an unreadable input file."""
        inputs = InputFiles.from_source(input_dir, exclude=output_dir)
        if not inputs.files:
            check_output_folder(output_dir)
            return PredictionSummary(skipped=[(str(input_dir), "no image files found")])
        return self.predict_files(inputs.files, output_dir, overwrite)

    def predict_files(
        self,
        share: Sequence[InputFile],
        output_dir: str | Path,
        overwrite: bool = False,
        stop: StopRequest | None = None,
        progress: ProgressFactory = FolderProgress,
    ) -> PredictionSummary:
        """Predict the inputs ``share`` (``InputFiles.share(Shard(...))``) into ``output_dir``:
        inputs with complete outputs are counted and left unless ``overwrite``; the run stops
        before its next image once ``stop`` is requested (writing what it computed).
        ``progress`` makes the progress display."""
        started = time.monotonic()
        output_dir = check_output_folder(output_dir)
        layout = OutputLayout(output_dir, self.overlays, self.save_probabilities)
        plan = plan_share(share, layout, overwrite)
        summary = PredictionSummary(already_complete=plan.already_complete, total=len(share))
        display = progress(len(plan.to_do), plan.already_complete, self.progress)
        stop = stop or StopRequest()
        # the engine's threads (ONNX Runtime's: as many as torch's), before torch gives up its own
        engine_threads = torch.get_num_threads() if self.device.type == "cpu" else 1
        try:
            with torch_on_one_thread(not isinstance(self.engine, TorchEngine)):
                written, failed = run_share(self, plan.to_do, layout, display, stop, engine_threads)
        finally:
            display.close()
        summary.written = sorted(written)
        summary.skipped = failed
        summary.stopped_by = stop.name
        summary.wall_time_s = time.monotonic() - started
        return summary
