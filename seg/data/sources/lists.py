"""Image lists, as VOC (``ImageSets/Segmentation/<split>.txt``) and CamVid (``<split>.txt``)
name a split's files: their lines, and the pair each line names once both files are found."""

from __future__ import annotations

from pathlib import Path

from seg.data.labels import SegmentationDataError
from seg.data.pairs import SamplePair


def listed_lines(list_file: Path) -> list[list[str]]:
    """The non-blank lines of an image list, split into fields; an empty list is an error."""
    lines = [line.split() for line in list_file.read_text().splitlines() if line.strip()]
    if not lines:
        raise SegmentationDataError(f"{list_file}: empty dataset, the list names no image")
    return lines


def listed_pair(image: Path, mask: Path, list_file: Path, mask_kind: str) -> SamplePair:
    """The pair of an image named in ``list_file``; an error names the file that is missing
    (the mask called ``mask_kind``: "mask", "label")."""
    if not image.is_file():
        raise SegmentationDataError(f"{image}: image listed in {list_file} not found")
    if not mask.is_file():
        raise SegmentationDataError(f"{image}: image has no {mask_kind} ({mask} not found)")
    return SamplePair(image, mask)
