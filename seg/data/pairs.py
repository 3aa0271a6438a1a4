"""One training example on disk (``SamplePair``: an image file and its mask file) and reading it:
the image as RGB pixels, the mask as class indices checked against the label rules.

Shared by everything that reads pairs: the dataset (``seg.data.datasets``), the decoded store
(``seg.data.decoded_store``) and the class-pixel counts (``seg.data.class_weights``). Every
problem is reported with the file it concerns: an unreadable file, a mask value outside the
classes, an image and mask of different sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg.data.labels import LabelSpec, SegmentationDataError
from upsample.core.io import ImageReadError, open_image, read_image

#: the modes of a single-channel image of class indices (8 or 16 bit) or a palette image
MASK_MODES = frozenset({"L", "P", "1", "I", "I;16", "I;16B", "I;16L"})


@dataclass(frozen=True)
class SamplePair:
    """One training example on disk: an image file and its mask file."""

    image: Path
    mask: Path

    @property
    def name(self) -> str:
        """The image's file name without its suffix."""
        return self.image.stem


def read_mask(path: str | Path, labels: int | LabelSpec) -> np.ndarray:
    """Read a class-index mask: a single-channel PNG (8 or 16 bit) of values or a palette PNG.

    ``labels``: a ``LabelSpec`` (which raw values are classes, remapped or ignored), or the
    number of classes (values 0..num_classes-1 are classes, 255 is ignored).

    Returns:
        (H, W) uint8 array of class indices; 255 = ignore.

    Raises:
        SegmentationDataError: unreadable file, a colour (non-palette) mask, or values that are
            neither a class nor ignored; the message names the file and values.
    """
    path = Path(path)
    spec = labels if isinstance(labels, LabelSpec) else LabelSpec.create(labels)
    try:
        with open_image(path) as opened:
            mode = opened.mode
            if mode not in MASK_MODES:
                raise SegmentationDataError(
                    f"{path}: mask has mode {mode}; expected a single-channel image of class "
                    "indices or a palette PNG"
                )
            opened.load()
            array = np.asarray(opened)
    except SegmentationDataError:
        raise
    except ImageReadError as error:
        raise SegmentationDataError(f"{path}: unreadable mask file ({error.reason})") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise SegmentationDataError(f"{path}: unreadable mask file ({error})") from error
    try:
        return spec.convert(array, path)
    except ValueError as error:
        raise SegmentationDataError(str(error)) from error


def read_pair(pair: SamplePair, labels: int | LabelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Read an image (RGB, EXIF-upright, uint8 (H, W, 3)) and its mask ((H, W) indices).

    Raises:
        SegmentationDataError: naming the file for an unreadable image or mask, bad mask values,
            or an image and mask of different sizes.
    """
    try:
        image = np.asarray(read_image(pair.image, mode="RGB"))
    except ImageReadError as error:
        raise SegmentationDataError(f"{error.path}: unreadable image ({error.reason})") from error
    mask = read_mask(pair.mask, labels)
    if image.shape[:2] != mask.shape[:2]:
        raise SegmentationDataError(
            f"{pair.image}: image size {image.shape[1]}x{image.shape[0]} differs from its mask "
            f"{pair.mask} size {mask.shape[1]}x{mask.shape[0]} (width x height)"
        )
    return image, mask
