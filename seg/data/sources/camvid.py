"""CamVid as prepared for SegNet: where it lies and the pairs of a split, from its image list or,
without one, from its ``<split>/`` and ``<split>annot/`` folders."""

from __future__ import annotations

from pathlib import Path

from seg.data.labels import FolderLayout, SegmentationDataError
from seg.data.pairs import SamplePair
from seg.data.sources.folder import find_layout_pairs
from seg.data.sources.lists import listed_lines, listed_pair
from upsample.core.camvid import camvid_base as common_camvid_base

#: CamVid (SegNet version): ``<split>/`` images and ``<split>annot/`` labels of one name.
CAMVID_LAYOUT = FolderLayout(image_dir="{split}", mask_dir="{split}annot")


def camvid_base(root: str | Path) -> Path:
    """``upsample.core.camvid.camvid_base``, its error a ``SegmentationDataError`` as for all
    data."""
    try:
        return common_camvid_base(root)
    except FileNotFoundError as error:
        raise SegmentationDataError(str(error)) from error


def find_camvid_pairs(root: str | Path, split: str) -> list[SamplePair]:
    """Pairs of a CamVid split: the files named in ``<split>.txt`` (lines ``<image path>
    <label path>``, of which only the file names count), ``<split>/<name>`` with
    ``<split>annot/<name>``; without a list, every image of ``<split>/`` with its label.

    Raises:
        SegmentationDataError: naming the list, or the image or label file that is missing.
    """
    base = camvid_base(root)
    list_file = base / f"{split}.txt"
    if not list_file.is_file():
        return find_layout_pairs(base, split, CAMVID_LAYOUT)
    pairs = []
    for fields in listed_lines(list_file):
        image = base / split / Path(fields[0]).name
        mask_name = Path(fields[1]).name if len(fields) > 1 else image.name
        pairs.append(listed_pair(image, base / f"{split}annot" / mask_name, list_file, "label"))
    return pairs
