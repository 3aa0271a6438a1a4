"""Image/mask pair discovery (folder and PASCAL VOC layouts) and the segmentation dataset.

Every problem with the data is reported with the file it concerns: an image without a mask,
a mask value outside the classes, sizes that differ, an unreadable file, an empty dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from common.io import IMAGE_SUFFIXES, ImageReadError, read_image
from common.sampling import SeededShuffleSampler
from seg.visualize import IGNORE_INDEX

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")
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


class SegmentationDataError(ValueError):
    """The segmentation data on disk is not usable; the message names the file and the problem."""


@dataclass(frozen=True)
class SamplePair:
    """One training example on disk: an image file and its mask file."""

    image: Path
    mask: Path

    @property
    def name(self) -> str:
        return self.image.stem


def _files_by_stem(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """Map relative path without suffix (e.g. ``sub/0001``) -> file, for files under ``folder``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return found


def find_folder_pairs(split_dir: str | Path) -> list[SamplePair]:
    """Pairs from ``split_dir/images/**`` and ``split_dir/masks/**`` matched by relative stem.

    Raises:
        SegmentationDataError: the folders are missing, hold no image, or an image has no mask
            (the message names the image and the mask paths looked for).
    """
    split_dir = Path(split_dir)
    image_dir, mask_dir = split_dir / "images", split_dir / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise SegmentationDataError(
                f"{folder}: folder not found (expected {split_dir}/images and {split_dir}/masks)"
            )
    images = _files_by_stem(image_dir, tuple(IMAGE_SUFFIXES))
    masks = _files_by_stem(mask_dir, MASK_SUFFIXES)
    if not images:
        raise SegmentationDataError(f"{image_dir}: empty dataset, no image files found")
    pairs = []
    for stem, image in images.items():
        if stem not in masks:
            raise SegmentationDataError(
                f"{image}: image has no mask (looked for {mask_dir / stem}"
                f"{{{','.join(MASK_SUFFIXES)}}})"
            )
        pairs.append(SamplePair(image, masks[stem]))
    return pairs


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
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise SegmentationDataError(f"{list_file}: empty dataset, the list holds no image id")
    pairs = []
    for image_id in ids:
        image = base / "JPEGImages" / f"{image_id}.jpg"
        mask = base / "SegmentationClass" / f"{image_id}.png"
        if not image.is_file():
            raise SegmentationDataError(f"{image}: image listed in {list_file} not found")
        if not mask.is_file():
            raise SegmentationDataError(f"{image}: image has no mask ({mask} not found)")
        pairs.append(SamplePair(image, mask))
    return pairs


def read_mask(path: str | Path, num_classes: int) -> np.ndarray:
    """Read a class-index mask: a single-channel PNG of indices or a palette PNG.

    Returns:
        (H, W) uint8 array (int64 when ``num_classes`` > 255) of class indices; 255 = ignore.

    Raises:
        SegmentationDataError: unreadable file, a colour (non-palette) mask, or values that are
            neither a class (0..num_classes-1) nor 255; the message names the file and values.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            mode = opened.mode
            if mode not in {"L", "P", "1", "I", "I;16", "I;16B", "I;16L"}:
                raise SegmentationDataError(
                    f"{path}: mask has mode {mode}; expected a single-channel image of class "
                    "indices or a palette PNG"
                )
            array = np.asarray(opened)
    except SegmentationDataError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        raise SegmentationDataError(f"{path}: unreadable mask file ({error})") from error
    values = np.unique(array).astype(np.int64)
    bad = values[(values >= num_classes) & (values != IGNORE_INDEX)]
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise SegmentationDataError(
            f"{path}: mask values {shown} are outside the classes 0..{num_classes - 1} "
            f"(255 = ignore)"
        )
    return array.astype(np.uint8 if num_classes <= 255 else np.int64)


def read_pair(pair: SamplePair, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read an image (RGB, EXIF-upright, uint8 (H, W, 3)) and its mask ((H, W) indices).

    Raises:
        SegmentationDataError: naming the file for an unreadable image or mask, bad mask values,
            or an image and mask of different sizes.
    """
    try:
        image = np.asarray(read_image(pair.image, mode="RGB"))
    except ImageReadError as error:
        raise SegmentationDataError(f"{error.path}: unreadable image ({error.reason})") from error
    mask = read_mask(pair.mask, num_classes)
    if image.shape[:2] != mask.shape[:2]:
        raise SegmentationDataError(
            f"{pair.image}: image size {image.shape[1]}x{image.shape[0]} differs from its mask "
            f"{pair.mask} size {mask.shape[1]}x{mask.shape[0]} (width x height)"
        )
    return image, mask


Transform = Callable[..., dict[str, Any]]


class SegmentationDataset(Dataset):
    """Image/mask pairs read from disk, optionally jointly transformed (albumentations style).

    Item: ``{"image": uint8 (3, H, W), "mask": uint8 or int64 (H, W), "name": str}``.
    The transform is called as ``transform(image=HxWx3 array, mask=HxW array)`` and must return
    a dict with the same keys. An albumentations transform is reseeded for every item from
    ``(seed, epoch, index)``, so augmentations do not depend on worker processes or ranks and a
    resumed run sees the same ones (``epoch`` is set by ``EpochSeededSampler``).
    """

    def __init__(
        self,
        pairs: Sequence[SamplePair],
        num_classes: int,
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        if not pairs:
            raise SegmentationDataError("empty dataset: no image/mask pair given")
        self.pairs = list(pairs)
        self.num_classes = num_classes
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        image, mask = read_pair(pair, self.num_classes)
        if self.transform is not None:
            if hasattr(self.transform, "set_random_seed"):
                sequence = np.random.SeedSequence([self.seed, self.epoch, index])
                self.transform.set_random_seed(int(sequence.generate_state(1)[0]))
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)),
            "name": pair.name,
        }


class EpochSeededSampler(SeededShuffleSampler):
    """``SeededShuffleSampler`` that also tells its dataset the epoch (for per-item seeding).

    Lightning calls ``set_epoch`` in the main process before the epoch's workers start, so the
    workers see the new epoch; under DDP Lightning's sampler wrapper forwards the call.
    """

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.data_source, "epoch"):
            self.data_source.epoch = epoch


def pad_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples of possibly different sizes: pad at the bottom/right to the largest height
    and width, images with 0 and masks with 255 (ignored by the loss and the metrics).

    Returns:
        ``{"image": uint8 (N, 3, H, W), "mask": (N, H, W), "name": list[str]}``.
    """
    height = max(s["image"].shape[1] for s in samples)
    width = max(s["image"].shape[2] for s in samples)
    images = torch.zeros((len(samples), 3, height, width), dtype=samples[0]["image"].dtype)
    masks = torch.full((len(samples), height, width), IGNORE_INDEX, dtype=samples[0]["mask"].dtype)
    for index, sample in enumerate(samples):
        h, w = sample["mask"].shape
        images[index, :, :h, :w] = sample["image"]
        masks[index, :h, :w] = sample["mask"]
    return {"image": images, "mask": masks, "name": [s["name"] for s in samples]}
