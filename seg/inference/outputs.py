"""The files of a prediction: ``masks/<name>.png`` (palette PNG of class indices),
``overlays/<name>.jpg`` and ``probabilities/<name>.npy``, written atomically by background
threads; their names."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from seg.inference.argmax import class_indices
from seg.inference.workers import lower_thread_priority
from seg.visualize import Colours, overlay_image, palette_mask_image
from upsample.core.io import save_array_atomic, save_image_atomic

#: the JPEG quality of the overlay files.
OVERLAY_JPEG_QUALITY = 90


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


def write_mask_and_overlay(
    output: Path,
    name: str,
    image: np.ndarray,
    mask: np.ndarray,
    colours: Colours = None,
    mask_compress_level: int | None = None,
) -> None:
    """Write ``masks/<name>.png`` (the class indices ``mask`` (H, W) as a palette PNG, zlib level
    ``mask_compress_level``, default PIL's) and ``overlays/<name>.jpg`` (``image`` uint8
    (H, W, 3) with the coloured mask blended over it) under ``output``."""
    compression = {} if mask_compress_level is None else {"compress_level": mask_compress_level}
    save_image_atomic(
        palette_mask_image(mask, colours), output / "masks" / f"{name}.png", **compression
    )
    save_image_atomic(
        overlay_image(image, mask, colours=colours),
        output / "overlays" / f"{name}.jpg",
        quality=OVERLAY_JPEG_QUALITY,
    )


@dataclass(frozen=True)
class OutputLayout:
    """The files one input gets under ``folder``: ``masks/<name>.png``, and, when enabled,
    ``overlays/<name>.jpg`` and ``probabilities/<name>.npy``. An input is done when all of them
    exist: each is written to a temporary name and renamed, so a file that exists is whole."""

    folder: Path
    overlays: bool = True
    probabilities: bool = False

    def files(self, name: str) -> list[Path]:
        """The output files of the input named ``name``, the mask first."""
        files = [self.folder / "masks" / f"{name}.png"]
        if self.overlays:
            files.append(self.folder / "overlays" / f"{name}.jpg")
        if self.probabilities:
            files.append(self.folder / "probabilities" / f"{name}.npy")
        return files

    def name_of(self, path: Path) -> str | None:
        """The input name whose output ``path`` would be (None for another file)."""
        try:
            kind, *rest = path.relative_to(self.folder).parts
        except ValueError:
            return None
        if kind not in ("masks", "overlays", "probabilities") or not rest:
            return None
        return Path(*rest).with_suffix("").as_posix()


@dataclass
class OutputJob:
    """One image's outputs, waiting for a writer thread: the input (``path``, ``name``), the
    image uint8 (3, H, W), and its class-index ``mask`` (H, W), or the ``scores`` (K, H, W) that
    the writer reduces to one, and the float16 ``probabilities`` (K, H, W) to save, if any (all
    on the CPU)."""

    path: str
    name: str
    image: Tensor
    mask: Tensor | None = None
    scores: Tensor | None = None
    probabilities: Tensor | None = None


class OutputWriter:
    """Background threads that turn scores into masks and encode and write the outputs of folder
    inference atomically (``OutputLayout``); ``written`` and ``errors`` (path, reason) say what
    became of each submitted image. The queue holds at most ``queue_size`` images: a full one
    makes ``submit`` wait, so memory stays bounded on any folder."""

    def __init__(
        self,
        layout: OutputLayout,
        threads: int = 1,
        queue_size: int = 32,
        colours: Colours = None,
    ) -> None:
        self.layout = layout
        self.colours = colours
        self.jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self.errors: list[tuple[str, str]] = []
        self.written: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: OutputJob) -> None:
        """Queue the outputs of one image (waits while the queue is full)."""
        self.jobs.put(job)

    def _write(self, job: OutputJob) -> None:
        if job.mask is not None:
            mask = job.mask.numpy()
        elif job.scores is not None:
            mask = class_indices(job.scores)
        else:
            raise ValueError(f"{job.path}: neither a mask nor scores to write")
        files = self.layout.files(job.name)
        save_image_atomic(palette_mask_image(mask, self.colours), files[0], compress_level=1)
        if self.layout.overlays:
            image = job.image.permute(1, 2, 0).numpy()
            overlay = overlay_image(image, mask, colours=self.colours)
            save_image_atomic(overlay, files[1], quality=OVERLAY_JPEG_QUALITY)
        if self.layout.probabilities and job.probabilities is not None:
            save_array_atomic(job.probabilities.numpy(), files[-1])

    def _run(self) -> None:
        lower_thread_priority()
        while (job := self.jobs.get()) is not None:
            try:
                self._write(job)
                with self._lock:
                    self.written.append(job.path)
            except Exception as error:  # a full disk must not stop the other outputs
                with self._lock:
                    self.errors.append((job.path, f"cannot write outputs ({error})"))
            finally:
                self.jobs.task_done()

    def close(self) -> None:
        """Write what is queued, then stop the threads."""
        for _ in self._threads:
            self.jobs.put(None)
        for thread in self._threads:
            thread.join()
