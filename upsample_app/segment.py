"""The Segment tab as plain functions: photos in; masks, overlays, per-class pixel shares and the
files ``seg predict`` writes out.

The network runs through ``FolderPredictor.predict_image`` (tiling, flip TTA and blending as in
``seg predict``), overlays are ``seg.visualize.overlay_image`` and the files are written by
``seg.inference.outputs.write_mask_and_overlay``: at the default opacity the overlay is the one
``seg predict`` writes for the photo, byte for byte once saved as its JPEG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seg.inference.outputs import output_names, write_mask_and_overlay
from seg.visualize import overlay_image
from upsample_app.limits import AppInputError, Upload, UploadLimits, read_photo, upload_name
from upsample_app.models import SegmenterModel

#: the overlay's opacity in ``seg predict``'s files.
DEFAULT_OPACITY = 0.5
#: the columns of the per-class pixel share table.
SHARE_COLUMNS = ("photo", "class", "pixels", "share %")


@dataclass
class Segmentation:
    """One segmented photo: its ``name`` (the output stem, as ``seg predict`` names it), the
    photo ``image`` uint8 (H, W, 3) and its class-index ``mask`` uint8 (H, W)."""

    name: str
    image: np.ndarray
    mask: np.ndarray


def segment_photo(
    model: SegmenterModel,
    source: Upload,
    limits: UploadLimits,
    tta: bool = False,
    name: str | None = None,
) -> Segmentation:
    """Read one upload as ``seg predict`` reads a file and predict its mask.

    Raises:
        AppInputError: the upload is not a photo the app takes (``upsample_app.limits.read_photo``).
    """
    name = name or Path(upload_name(source, "photo")).stem
    image = read_photo(source, limits, name=upload_name(source, name))
    pixels = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    mask = model.predictor(tta).predict_image(pixels).numpy()
    return Segmentation(name, image, mask)


@dataclass
class Batch:
    """What ``segment_photos`` made of several uploads: the ``done`` segmentations and a
    message per ``skipped`` upload (as ``seg predict`` skips an unreadable file and reports it)."""

    done: list[Segmentation]
    skipped: list[str]


def segment_photos(
    model: SegmenterModel, sources: Sequence[Upload], limits: UploadLimits, tta: bool = False
) -> Batch:
    """``segment_photo`` for each upload, named as ``seg predict`` names its outputs (same stems
    get their suffix added: ``a_jpg``, ``a_png``); an upload that is not a photo the app takes
    is skipped with its message, the others are still segmented.

    Raises:
        AppInputError: no upload, or none that could be segmented (every message).
    """
    if not sources:
        raise AppInputError("no photo: upload one or more photos, or pick an example")
    uploads = [upload_name(source, f"photo_{index}.png") for index, source in enumerate(sources)]
    batch = Batch([], [])
    for source, name in zip(sources, output_names(uploads), strict=True):
        try:
            batch.done.append(segment_photo(model, source, limits, tta, name))
        except AppInputError as error:
            batch.skipped.append(str(error))
    if not batch.done:
        raise AppInputError("\n".join(batch.skipped))
    return batch


def overlay(
    model: SegmenterModel, segmentation: Segmentation, opacity: float = DEFAULT_OPACITY
) -> Image.Image:
    """The photo with its mask blended over it at ``opacity`` (0: the photo, 1: the class
    colours), in the dataset's colours; classes drawn black (background, void) stay clear."""
    if not 0.0 <= opacity <= 1.0:
        raise AppInputError(f"opacity {opacity}: expected a value from 0 to 1")
    return overlay_image(segmentation.image, segmentation.mask, opacity, model.colours)


def class_shares(
    model: SegmenterModel, segmentations: Sequence[Segmentation]
) -> list[list[str | int | float]]:
    """Rows of ``SHARE_COLUMNS``: for each photo, each class it shows, its pixel count and its
    share of the photo in percent (two decimals)."""
    rows: list[list[str | int | float]] = []
    for segmentation in segmentations:
        counts = np.bincount(segmentation.mask.ravel(), minlength=model.num_classes)
        total = int(segmentation.mask.size)
        for index in np.flatnonzero(counts):
            name = model.class_names[index] if index < model.num_classes else f"class_{index}"
            share = round(100.0 * int(counts[index]) / total, 2)
            rows.append([segmentation.name, name, int(counts[index]), share])
    return rows


def legend(model: SegmenterModel) -> list[tuple[str, tuple[int, int, int]]]:
    """(class name, RGB colour) of every class, in class order."""
    return list(zip(model.class_names, model.palette, strict=True))


def write_outputs(
    model: SegmenterModel, segmentations: Sequence[Segmentation], folder: str | Path
) -> list[Path]:
    """Write ``masks/<name>.png`` and ``overlays/<name>.jpg`` of each photo under ``folder``, the
    files ``seg predict`` writes (same encoder settings, so the same bytes); return their paths,
    masks first."""
    folder = Path(folder)
    written: list[Path] = []
    for segmentation in segmentations:
        write_mask_and_overlay(
            folder,
            segmentation.name,
            segmentation.image,
            segmentation.mask,
            model.colours,
            mask_compress_level=1,  # as seg predict's writer
        )
        written.append(folder / "masks" / f"{segmentation.name}.png")
    written += [folder / "overlays" / f"{s.name}.jpg" for s in segmentations]
    return written
