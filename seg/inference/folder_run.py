"""One run of folder inference over a list of inputs: decoding, the network and writing at once.

- Decoding: DataLoader worker processes (``num_workers``) read images ahead of the network, at
  least two batches' worth, at most a few batches' worth (memory stays bounded on any folder).
- The network: the main thread, batch after batch (``seg.inference.batching``), never waiting
  for a slow writer while the writing queue has room.
- Masks, encoding, writing: ``writer_threads`` threads (``seg.inference.outputs.OutputWriter``),
  which also reduce CPU scores to masks while the network runs the next batch.

Decoding and writing run at a lower priority than the network (``seg.inference.workers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from seg.inference.batching import TileBatches, TilePredictor
from seg.inference.image_folder import ImageFiles
from seg.inference.inputs import InputFile
from seg.inference.outputs import OutputLayout, OutputWriter
from seg.inference.progress import FolderProgress
from seg.inference.stopping import StopRequest
from seg.inference.tiling import TiledImage
from seg.inference.workers import Count, decoding_worker_init, pipeline_workers
from seg.visualize import Colours

#: batches of decoded images held ahead of the network (spread over the decoding processes).
BATCHES_AHEAD = 2


class RunOptions(TilePredictor, Protocol):
    """What ``run_share`` reads of a ``FolderPredictor``."""

    device: torch.device
    num_workers: Count
    writer_threads: Count
    palette: Colours
    processes_per_machine: int


def _single_item(item: dict[str, Any]) -> dict[str, Any]:
    return item


def decoding_loader(paths: Sequence[str], workers: int, batch_size: int, pin: bool) -> DataLoader:
    """The decoded images of ``paths`` in order (``ImageFiles`` items), ``workers`` processes
    keeping ``BATCHES_AHEAD`` batches of ``batch_size`` images ready."""
    ahead = math.ceil(BATCHES_AHEAD * batch_size / workers) if workers else None
    return DataLoader(
        ImageFiles(paths),
        batch_size=None,
        num_workers=workers,
        collate_fn=_single_item,
        prefetch_factor=max(2, ahead) if ahead else None,
        worker_init_fn=decoding_worker_init if workers else None,
        pin_memory=pin,
    )


def run_share(
    predictor: RunOptions,
    to_do: Sequence[InputFile],
    layout: OutputLayout,
    progress: FolderProgress,
    stop: StopRequest,
    engine_threads: int,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Predict and write the outputs of ``to_do`` (until ``stop`` is requested), the engine
    computing on ``engine_threads`` CPU threads; returns the paths written and the (path,
    reason) of the inputs that failed."""
    decoders, writers = pipeline_workers(
        predictor.num_workers,
        predictor.writer_threads,
        engine_threads,
        predictor.processes_per_machine,
    )
    writer = OutputWriter(
        layout, writers, max(2 * predictor.batch_size, 2 * writers), predictor.palette
    )
    paths = [item.path for item in to_do]
    loader = decoding_loader(paths, decoders, predictor.batch_size, predictor.device.type == "cuda")
    try:
        failed, reported = _predict_loaded(predictor, to_do, loader, writer, progress, stop)
    finally:
        writer.close()
    failed += writer.errors
    progress.advance(0, len(failed) - reported)  # outputs that failed after the last image read
    return writer.written, failed


def _predict_loaded(
    predictor: RunOptions,
    to_do: Sequence[InputFile],
    loader: DataLoader,
    writer: OutputWriter,
    progress: FolderProgress,
    stop: StopRequest,
) -> tuple[list[tuple[str, str]], int]:
    """The main loop: each decoded image's tiles into batches, each finished image to the
    writer; the (path, reason) of the unreadable inputs, and the failures shown so far."""
    batches = TileBatches(predictor, to_do, writer.submit)
    failed: list[tuple[str, str]] = []
    reported = 0

    def advance(images: int) -> None:
        nonlocal reported
        now_failed = len(failed) + len(writer.errors)
        progress.advance(images, now_failed - reported)
        reported = now_failed

    for item in loader:
        if stop.requested:
            return failed, reported
        source = to_do[item["index"]]
        if item["error"] is not None:
            failed.append((source.shown, item["error"]))
            progress.message(f"skipped {source.shown}: {item['error']}")
            advance(1)
            continue
        image = item["image"]
        tiles = predictor.tiling.count(*image.shape[1:])
        advance(batches.add(TiledImage(item["index"], source.path, image, tiles)))
    advance(batches.flush_all())
    return failed, reported
