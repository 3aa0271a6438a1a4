"""The files of a prediction: ``masks/<name>.png`` (palette PNG of class indices),
``overlays/<name>.jpg`` and ``probabilities/<name>.npy``, written atomically; the names; the
summary of what was written and skipped."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import Tensor

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


@dataclass
class PredictionSummary:
    """What a folder prediction did: outputs written and files skipped (path, reason)."""

    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file was skipped."""
        return not self.skipped

    def report(self) -> str:
        """The counts, then one line per skipped file with the reason."""
        lines = [f"{len(self.written)} image(s) written, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


class OutputWriter:
    """Background threads that encode and write the outputs of folder inference atomically;
    ``written`` and ``errors`` (path, reason) say what became of each submitted image."""

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

    def submit(
        self, path: str, name: str, image: Tensor, mask: Tensor, probs: Tensor | None
    ) -> None:
        """Queue the outputs of input ``path`` under ``name``: ``image`` uint8 (3, H, W),
        ``mask`` (H, W) class indices, ``probs`` float16 (K, H, W) or None (all on the CPU)."""
        self.jobs.put((path, name, image, mask, probs))

    def _write(self, name: str, image: Tensor, mask: Tensor, probs: Tensor | None) -> None:
        mask_array = mask.numpy()
        image_array = image.permute(1, 2, 0).numpy()
        write_mask_and_overlay(
            self.output, name, image_array, mask_array, self.colours, mask_compress_level=1
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
        """Write what is queued, then stop the threads."""
        for _ in self._threads:
            self.jobs.put(None)
        for thread in self._threads:
            thread.join()
