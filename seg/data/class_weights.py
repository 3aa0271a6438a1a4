"""Class-frequency statistics of training masks and median frequency balancing (SegNet).

Median frequency balancing (Eigen & Fergus 2015, used by SegNet on CamVid): the frequency of
class c is the number of its pixels divided by the number of pixels of the images in which c
appears; its weight is ``median(frequencies) / frequency(c)``, so rare classes (poles, signs,
pedestrians) weigh more than road and sky. Counting reads every training mask once; the counts
are cached (keyed by the mask files' paths, sizes and modification times and the label rules),
so later runs start at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg.data.labels import LabelSpec
from seg.data.pairs import SamplePair, read_mask
from seg.losses import IGNORE_INDEX
from upsample.core.cache import cache_dir
from upsample.core.io import atomic_path

CACHE_SUBDIR = "class_frequencies"


@dataclass(frozen=True)
class ClassPixelCounts:
    """Per class: pixels of that class, and pixels of the images where it appears."""

    class_pixels: np.ndarray  # (K,) int64
    image_pixels: np.ndarray  # (K,) int64

    def median_frequency_weights(self) -> list[float]:
        """``median(freq) / freq(c)`` with ``freq(c) = class_pixels / image_pixels``; a class
        absent from every training mask gets weight 0 (it cannot be learnt from these masks)."""
        present = self.class_pixels > 0
        if not present.any():
            raise ValueError("no labelled pixel in the training masks: cannot weight classes")
        frequency = np.zeros(len(self.class_pixels), dtype=np.float64)
        frequency[present] = self.class_pixels[present] / self.image_pixels[present]
        median = float(np.median(frequency[present]))
        weights = np.zeros_like(frequency)
        weights[present] = median / frequency[present]
        return [float(w) for w in weights]


def count_class_pixels(pairs: Sequence[SamplePair], labels: LabelSpec) -> ClassPixelCounts:
    """Read every mask of ``pairs`` and count (ignored pixels take no part)."""
    k = labels.num_classes
    class_pixels = np.zeros(k, dtype=np.int64)
    image_pixels = np.zeros(k, dtype=np.int64)
    for pair in pairs:
        mask = read_mask(pair.mask, labels)
        counts = np.bincount(mask.ravel(), minlength=IGNORE_INDEX + 1)[:k].astype(np.int64)
        class_pixels += counts
        image_pixels[counts > 0] += mask.size
    return ClassPixelCounts(class_pixels, image_pixels)


def _cache_key(pairs: Sequence[SamplePair], labels: LabelSpec) -> str:
    digest = hashlib.sha1(repr(labels).encode())
    for pair in pairs:
        stat = Path(pair.mask).stat()
        digest.update(f"{Path(pair.mask).resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached_class_pixel_counts(
    pairs: Sequence[SamplePair], labels: LabelSpec, folder: str | Path | None = None
) -> ClassPixelCounts:
    """``count_class_pixels``, cached as JSON under ``folder`` (default
    ``<cache_dir()>/class_frequencies``); an unwritable cache folder only costs the recount."""
    folder = Path(folder) if folder is not None else cache_dir() / CACHE_SUBDIR
    path = folder / f"{_cache_key(pairs, labels)}.json"
    try:
        stored = json.loads(path.read_text())
        counts = ClassPixelCounts(
            np.asarray(stored["class_pixels"], dtype=np.int64),
            np.asarray(stored["image_pixels"], dtype=np.int64),
        )
        if len(counts.class_pixels) == labels.num_classes:
            return counts
    except (OSError, ValueError, KeyError):
        pass
    counts = count_class_pixels(pairs, labels)
    payload = {
        "class_pixels": counts.class_pixels.tolist(),
        "image_pixels": counts.image_pixels.tolist(),
        "masks": len(pairs),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            Path(temporary).write_text(json.dumps(payload))
    except OSError:
        pass
    return counts
