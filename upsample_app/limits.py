"""What the app accepts from a user: the upload limits, and reading an upload as a photo or a
label map, with a message for the page when it is not one.

Every check that can be made from a file's header (its size on disk, its width and height) is
made before its pixels are decoded, so a decompression bomb is refused without the memory it
would take. Photos are read by ``upsample.core.io.read_image``, as ``seg predict`` reads them (EXIF
orientation, 16-bit, grey, RGBA and palette images normalised to RGB), so a photo shows in the app
what ``seg predict`` writes for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gan.translation.paired_data import read_label_values
from upsample.core.io import ImageReadError, normalise_image, open_image, read_image

#: the default limits: a 20 MB file, 12 megapixels (a 4000 x 3000 phone photo).
DEFAULT_MAX_MB = 20.0
DEFAULT_MAX_PIXELS = 12_000_000

#: PIL modes of single-channel label maps: their values are the classes.
LABEL_VALUE_MODES = frozenset({"1", "L", "P", "I", "I;16", "I;16B", "I;16L"})
#: PIL modes read as colour pictures (RGBA composited on black, as photos are).
COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa"})

#: an upload: a file path (what the page's file inputs give), an array (H, W) or (H, W, C)
#: uint8 (an image input, a painted canvas) or a PIL image.
Upload = str | Path | np.ndarray | Image.Image


class AppInputError(ValueError):
    """An input the app cannot use; its message is shown in the page as it is."""


@dataclass(frozen=True)
class UploadLimits:
    """The largest upload the app reads: ``max_mb`` megabytes on disk and ``max_pixels`` pixels
    (width x height) once decoded."""

    max_mb: float = DEFAULT_MAX_MB
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not self.max_mb > 0:
            raise ValueError(f"the upload limit must be positive, got {self.max_mb} MB")
        if self.max_pixels < 1:
            raise ValueError(f"the pixel limit must be positive, got {self.max_pixels}")

    @property
    def max_bytes(self) -> int:
        """``max_mb`` in bytes."""
        return int(self.max_mb * 2**20)

    def check_file(self, path: Path) -> None:
        """Raise ``AppInputError`` when ``path`` is missing or larger than ``max_mb``."""
        try:
            size = path.stat().st_size
        except OSError as error:
            raise AppInputError(f"{path.name}: cannot read the file ({error.strerror})") from error
        if size > self.max_bytes:
            raise AppInputError(
                f"{path.name}: {size / 2**20:.1f} MB; the app takes files of at most "
                f"{self.max_mb:g} MB"
            )

    def check_pixels(self, name: str, width: int, height: int) -> None:
        """Raise ``AppInputError`` when a ``width`` x ``height`` image has more than
        ``max_pixels`` pixels (or none)."""
        if width < 1 or height < 1:
            raise AppInputError(f"{name}: an empty image ({width}x{height} pixels)")
        if width * height > self.max_pixels:
            raise AppInputError(
                f"{name}: {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); the "
                f"app takes images of at most {self.max_pixels / 1e6:g} megapixels"
            )


def upload_name(source: Upload, default: str = "image") -> str:
    """The name an upload is shown and saved under: a file's name, else ``default``."""
    return Path(source).name if isinstance(source, str | Path) else default


def _header(path: Path, limits: UploadLimits) -> tuple[str, tuple[str, ...]]:
    """Check ``path``'s size on disk and its width and height (read from the header, no pixel
    decoded); return its PIL mode and bands."""
    limits.check_file(path)
    try:
        # the readers' own checks first (a format the toolkit reads and its suffix names, at
        # most $UPSAMPLE_MAX_IMAGE_PIXELS), then the app's lower pixel limit, with its message
        with open_image(path) as image:
            limits.check_pixels(path.name, *image.size)
            return image.mode, image.getbands()
    except ImageReadError as error:
        raise AppInputError(f"{path.name}: {error.reason}") from error


def _checked_array(array: np.ndarray, name: str, limits: UploadLimits) -> np.ndarray:
    """``array`` as uint8 (H, W) or (H, W, C) with C in 1, 3, 4; else ``AppInputError``."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        channels = array.shape[2] if array.ndim == 3 else "no"
        raise AppInputError(
            f"{name}: an image of shape {array.shape} ({channels} channels); expected 1, 3 or 4 "
            "channels (grey, RGB or RGBA)"
        )
    if array.dtype != np.uint8:
        raise AppInputError(f"{name}: {array.dtype} pixels; expected 8-bit (uint8) pixels")
    limits.check_pixels(name, array.shape[1], array.shape[0])
    return array


def read_photo(source: Upload, limits: UploadLimits, name: str | None = None) -> np.ndarray:
    """An upload as an upright RGB photo, uint8 (H, W, 3): a file read as ``seg predict`` reads
    it, an array (grey, RGB or RGBA) or a PIL image.

    Raises:
        AppInputError: naming the upload, when it is not an image, is too large (bytes or
            pixels), cannot be decoded, or has a channel count other than 1, 3 or 4.
    """
    name = name or upload_name(source, "photo")
    if isinstance(source, str | Path):
        path = Path(source)
        _header(path, limits)
        try:
            return np.asarray(read_image(path, mode="RGB"))
        except ImageReadError as error:
            raise AppInputError(f"{name}: {error.reason}") from error
    if isinstance(source, Image.Image):
        limits.check_pixels(name, *source.size)
        return np.asarray(normalise_image(source, "RGB"))
    array = _checked_array(source, name, limits)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    mode = "RGBA" if array.shape[2] == 4 else "RGB"
    return np.asarray(normalise_image(Image.fromarray(array, mode), "RGB"))


def read_label_upload(source: Upload, limits: UploadLimits, name: str | None = None) -> np.ndarray:
    """An uploaded label map: its raw values, integer (H, W), when it is single-channel (grey,
    16-bit, or a palette image whose indices are the classes, as ``gan translate`` reads them),
    or its colours, uint8 (H, W, 3), when it is a colour picture (RGBA composited on black).

    Raises:
        AppInputError: naming the upload, when it is not an image, is too large, cannot be
            decoded, or has a channel count that is neither 1 nor 3 (or 4 with alpha).
    """
    name = name or upload_name(source, "label map")
    if isinstance(source, str | Path):
        path = Path(source)
        mode, bands = _header(path, limits)
        try:
            if mode in LABEL_VALUE_MODES:
                return read_label_values(path)
            if mode in COLOUR_MODES:
                return np.asarray(read_image(path, mode="RGB"))
        except ImageReadError as error:
            raise AppInputError(f"{name}: {error.reason}") from error
        raise AppInputError(
            f"{name}: a {mode} image of {len(bands)} channels ({', '.join(bands)}); a label map "
            "is single-channel class indices (grey or palette PNG) or an RGB picture in the "
            "classes' colours"
        )
    if isinstance(source, Image.Image):
        limits.check_pixels(name, *source.size)
        if source.mode in LABEL_VALUE_MODES:
            return np.asarray(source)
        return np.asarray(normalise_image(source, "RGB"))
    array = _checked_array(source, name, limits)
    if array.ndim == 3 and array.shape[2] == 4:
        array = np.asarray(normalise_image(Image.fromarray(array, "RGBA"), "RGB"))
    return array
