"""File I/O that never leaves a half-written file, and image reading that normalises odd formats."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class ImageReadError(OSError):
    """An image file could not be read; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A reader never sees a partial file: either the old content (or nothing) or the complete new one.
    The temporary name keeps the suffix so that writers choosing a format by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        # mkstemp creates the file private (0600); give it the permissions a plain open() would
        os.chmod(temporary_path, 0o666 & ~_UMASK)
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def save_image_atomic(image: Image.Image, path: str | Path, **save_kwargs: Any) -> Path:
    """Save a PIL image to ``path`` atomically; the format follows ``path``'s extension."""
    path = Path(path)
    image_format = save_kwargs.pop("format", None) or Image.registered_extensions().get(
        path.suffix.lower()
    )
    with atomic_path(path) as temporary:
        image.save(temporary, format=image_format, **save_kwargs)
    return path


def save_array_atomic(array: np.ndarray, path: str | Path) -> Path:
    """Save a numpy array as ``.npy`` atomically."""
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.save(stream, array)
    return path


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit / 32-bit integer and float single-channel images to 8-bit."""
    array = np.asarray(image)
    if image.mode.startswith("I;16") or array.dtype == np.uint16:
        scaled = array.astype(np.float64) / 65535.0 * 255.0
    elif array.dtype.kind == "f":
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        in_unit_range = low >= 0.0 and high <= 1.0
        scaled = array * 255.0 if in_unit_range else (array - low) / max(high - low, 1e-12) * 255.0
    else:  # mode "I": 32-bit signed; treat as 16-bit data when it fits, else min-max
        high = float(array.max()) if array.size else 0.0
        scaled = array / (65535.0 if high > 255 else 255.0) * 255.0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def normalise_image(image: Image.Image, mode: Literal["RGB", "L"] = "RGB") -> Image.Image:
    """Return ``image`` upright (EXIF orientation applied) as 8-bit ``mode``.

    16-bit and float images are scaled to 8 bits, transparency is composited on black, palette
    and CMYK images are converted.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def read_image(path: str | Path, mode: Literal["RGB", "L"] = "RGB") -> Image.Image:
    """Read an image file fully and normalise it (see ``normalise_image``).

    Raises:
        ImageReadError: naming the file and the reason, for missing, truncated or unknown files.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            return normalise_image(opened, mode)
    except FileNotFoundError as error:
        raise ImageReadError(path, "file not found") from error
    except UnidentifiedImageError as error:
        raise ImageReadError(path, "not a recognised image format") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageReadError(path, f"cannot decode image ({error})") from error


def list_images(folder: str | Path) -> list[Path]:
    """All files under ``folder`` (recursive) whose suffix is an image suffix, sorted."""
    folder = Path(folder)
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def probe_writable_folder(folder: str | Path) -> None:
    """Create ``folder`` and write (and remove) a temporary file in it; raises the ``OSError``
    of the first step that fails (a file in the way, no permission, a full disk, ...)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def check_output_folder(folder: str | Path) -> Path:
    """Create ``folder`` and make sure files can be written into it, before any work is done.

    Raises:
        OSError: naming the folder and the reason (a file in the way, no permission, ...).
    """
    folder = Path(folder)
    try:
        probe_writable_folder(folder)
    except OSError as error:
        reason = error.strerror or str(error)
        raise OSError(
            f"{folder}: cannot write into this output folder ({reason}); expected a folder that "
            "exists or can be created, with write permission"
        ) from error
    return folder
