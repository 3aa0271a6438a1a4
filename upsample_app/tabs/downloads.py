"""The files the page offers for download: one folder per request under the work folder (old
ones removed as new ones come), and pictures saved into it the way the page needs them."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from seg.inference.outputs import OVERLAY_JPEG_QUALITY

#: request folders of downloads older than this are removed.
DOWNLOADS_KEPT_S = 3600.0


def request_folder(work_dir: Path) -> Path:
    """A new folder for one request's downloads; folders older than ``DOWNLOADS_KEPT_S`` go."""
    downloads = work_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for old in downloads.iterdir():
        if time.time() - old.stat().st_mtime > DOWNLOADS_KEPT_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=downloads))


def save_png(image: Image.Image | np.ndarray, folder: Path, name: str) -> str:
    """Save a picture for the page (a PIL image or a uint8 (H, W, 3) array) as
    ``folder/name.png`` with fast (level 1) compression and return its path: Gradio would
    encode it at level 6, which takes longer than the network on a photo (70-110 ms for
    450x300); the pixels are the same."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    path = folder / f"{name}.png"
    picture.save(path, compress_level=1)
    return str(path)


def save_jpeg(image: Image.Image, folder: Path, name: str) -> str:
    """Save an overlay for the page as ``folder/name.jpg`` with ``seg predict``'s overlay
    settings and return its path."""
    path = folder / f"{name}.jpg"
    image.save(path, quality=OVERLAY_JPEG_QUALITY)
    return str(path)
