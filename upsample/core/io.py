"""File I/O that never leaves a half-written file, and image reading that normalises odd formats
and treats every file as possibly hostile (:func:`open_image`)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: the image formats the toolkit decodes, by the file suffix that names each; a file's content
#: must be the format its suffix says (Pillow's other decoders, some of which run external
#: programs, are never reached by a renamed file).
SUFFIX_FORMATS: dict[str, frozenset[str]] = {
    ".png": frozenset({"PNG"}),
    ".jpg": frozenset({"JPEG", "MPO"}),  # MPO: a camera's JPEG with a second picture
    ".jpeg": frozenset({"JPEG", "MPO"}),
    ".bmp": frozenset({"BMP"}),
    ".gif": frozenset({"GIF"}),
    ".tif": frozenset({"TIFF"}),
    ".tiff": frozenset({"TIFF"}),
    ".webp": frozenset({"WEBP"}),
    ".ppm": frozenset({"PPM"}),
    ".pgm": frozenset({"PPM"}),
}
IMAGE_SUFFIXES = frozenset(SUFFIX_FORMATS)
#: the decoders that may open a file (Pillow's JPEG decoder also opens MPO files).
IMAGE_FORMATS = tuple(sorted(frozenset().union(*SUFFIX_FORMATS.values()) - {"MPO"}))

#: environment variable holding the largest image (width x height) the toolkit decodes.
MAX_IMAGE_PIXELS_ENV = "UPSAMPLE_MAX_IMAGE_PIXELS"
#: the default limit: Pillow's (about 89 megapixels, 0.25 GiB as 8-bit RGB).
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
# Pillow warns of an image between its limit and twice it; ``open_image`` applies the toolkit's
# limit itself (and names the file). Set once here: a ``catch_warnings`` block per image would
# reset every module's warning registry, so Pillow's once-per-place warnings repeated per image.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


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


#: the name ``atomic_path`` gives its temporary file: ``.<stem>.<8 random characters>.tmp<suffix>``
#: (``tempfile.mkstemp``'s random part).
_TEMPORARY_NAME = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>.*)$")


def temporary_target(path: str | Path) -> Path | None:
    """The file that ``path`` would have become if it is a temporary file of ``atomic_path``
    (left behind by a process that was killed while writing), else None."""
    path = Path(path)
    match = _TEMPORARY_NAME.match(path.name)
    if match is None:
        return None
    return path.with_name(match.group("stem") + match.group("suffix"))


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


def max_image_pixels() -> int:
    """The largest image (width x height) that is decoded: ``$UPSAMPLE_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_IMAGE_PIXELS`.

    Raises:
        ValueError: the variable is not a positive integer.
    """
    text = os.environ.get(MAX_IMAGE_PIXELS_ENV)
    if text is None:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${MAX_IMAGE_PIXELS_ENV} must be a positive integer, got {text!r}")
    return value


def set_max_image_pixels(pixels: int | None) -> None:
    """Set the largest image that is decoded, for this process and the ones it starts (data
    loader workers); None keeps the current limit.

    Raises:
        ValueError: ``pixels`` is not positive.
    """
    if pixels is None:
        return
    if int(pixels) < 1:
        raise ValueError(f"the largest image must be a positive number of pixels, got {pixels}")
    os.environ[MAX_IMAGE_PIXELS_ENV] = str(int(pixels))


@contextlib.contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """Open an image file that may be hostile, without decoding its pixels yet.

    Checked from the header, before any pixel is decoded (so memory stays bounded): the content
    is a format the toolkit reads and the one its suffix names (a PNG named ``.png``), and the
    image has at most :func:`max_image_pixels` pixels (a small file that declares 40000 x 40000
    pixels is refused). Truncated and corrupt files fail when the caller decodes them.

    Raises:
        ImageReadError: naming the file and the reason.
    """
    path = Path(path)
    limit = max_image_pixels()
    # Pillow refuses images above twice its own limit while opening them; raised to the
    # toolkit's limit when that is larger, so that the check below decides.
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, limit)
    try:
        opened = Image.open(path, formats=IMAGE_FORMATS)
    except FileNotFoundError as error:
        raise ImageReadError(path, "file not found") from error
    except UnidentifiedImageError as error:
        raise ImageReadError(
            path, f"not a recognised image format (expected one of {', '.join(IMAGE_FORMATS)})"
        ) from error
    except Image.DecompressionBombError as error:
        declared = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{declared.group(1)} pixels" if declared else "a size that"
        raise ImageReadError(
            path, _too_many_pixels(f"its header declares {size}", limit)
        ) from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageReadError(path, f"cannot decode image ({error})") from error
    with opened:
        expected = SUFFIX_FORMATS.get(path.suffix.lower())
        if expected is not None and opened.format not in expected:
            raise ImageReadError(
                path,
                f"the name says {path.suffix} but the content is {opened.format}; expected "
                f"{' or '.join(sorted(expected))} (rename the file to match its content)",
            )
        width, height = opened.size
        if width * height > limit:
            described = f"image of {width} x {height} = {width * height} pixels"
            raise ImageReadError(path, _too_many_pixels(described, limit))
        yield opened


def _too_many_pixels(described: str, limit: int) -> str:
    return (
        f"{described} exceeds the limit of {limit} pixels (a decompression bomb?); raise it "
        f"with ${MAX_IMAGE_PIXELS_ENV} or the command's --max_image_pixels"
    )


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

    The file is opened by :func:`open_image` (format, suffix and size checked before decoding).

    Raises:
        ImageReadError: naming the file and the reason, for missing, truncated, unknown,
            misnamed or oversized files.
    """
    path = Path(path)
    with open_image(path) as opened:
        try:
            opened.load()
            return normalise_image(opened, mode)
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
