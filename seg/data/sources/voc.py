"""PASCAL VOC 2012 segmentation: its 21 classes, where its year folder lies and the pairs its
image lists name."""

from __future__ import annotations

from pathlib import Path

from seg.data.labels import SegmentationDataError
from seg.data.pairs import SamplePair
from seg.data.sources.lists import listed_lines, listed_pair

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def voc_base(root: str | Path) -> Path:
    """The VOC year folder (holding ``JPEGImages``) under ``root``: root itself,
    ``root/VOC2012`` or ``root/VOCdevkit/VOC2012``."""
    root = Path(root)
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise SegmentationDataError(
        f"{root}: no PASCAL VOC layout found (looked for JPEGImages/ in {root}, {root}/VOC2012 "
        f"and {root}/VOCdevkit/VOC2012)"
    )


def find_voc_pairs(root: str | Path, split: str) -> list[SamplePair]:
    """Pairs listed in ``ImageSets/Segmentation/<split>.txt``: ``JPEGImages/<id>.jpg`` with
    ``SegmentationClass/<id>.png``.

    Raises:
        SegmentationDataError: naming the list file or the missing image/mask file.
    """
    base = voc_base(root)
    list_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise SegmentationDataError(f"{list_file}: image list not found")
    return [
        listed_pair(
            base / "JPEGImages" / f"{fields[0]}.jpg",
            base / "SegmentationClass" / f"{fields[0]}.png",
            list_file,
            "mask",
        )
        for fields in listed_lines(list_file)
    ]
