"""Image/mask pair discovery (folder and PASCAL VOC layouts) and the segmentation dataset.

Every problem with the data is reported with the file it concerns: an image without a mask,
a mask value outside the classes, sizes that differ, an unreadable file, an empty dataset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from seg.data.labels import FolderLayout, LabelSpec, SegmentationDataError
from seg.losses import IGNORE_INDEX
from upsample.core.camvid import camvid_base as common_camvid_base
from upsample.core.io import IMAGE_SUFFIXES, ImageReadError, open_image, read_image
from upsample.core.sampling import SeededShuffleSampler

if TYPE_CHECKING:
    from seg.data.augment_params import AugmentSpec
    from seg.data.decoded_store import DecodedStore

__all__ = ["SegmentationDataError"]  # defined in seg.data.labels, raised by everything here

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


@dataclass(frozen=True)
class SamplePair:
    """One training example on disk: an image file and its mask file."""

    image: Path
    mask: Path

    @property
    def name(self) -> str:
        return self.image.stem


def _files_by_stem(folder: Path, suffixes: Sequence[str], name_suffix: str = "") -> dict[str, Path]:
    """Map relative path without suffix (e.g. ``sub/0001``) -> file, for files under ``folder``;
    with ``name_suffix`` only files whose name (without suffix) ends with it, which is removed
    from the key (``x_leftImg8bit.png`` -> ``x``)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            stem = path.relative_to(folder).with_suffix("").as_posix()
            if name_suffix:
                if not stem.endswith(name_suffix):
                    continue
                stem = stem[: -len(name_suffix)]
            found.setdefault(stem, path)
    return found


def find_layout_pairs(root: str | Path, split: str, layout: FolderLayout) -> list[SamplePair]:
    """Pairs of split ``split`` under ``root`` in ``layout`` (see ``FolderLayout``).

    Raises:
        SegmentationDataError: the folders are missing, hold no image, or an image has no mask
            (the message names the image and the mask paths looked for).
    """
    root = Path(root)
    image_dir, mask_dir = layout.images(root, split), layout.masks(root, split)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise SegmentationDataError(
                f"{folder}: folder not found (expected {image_dir} and {mask_dir})"
            )
    images = _files_by_stem(image_dir, tuple(IMAGE_SUFFIXES), layout.image_suffix)
    masks = _files_by_stem(mask_dir, MASK_SUFFIXES, layout.mask_suffix)
    if not images:
        raise SegmentationDataError(f"{image_dir}: empty dataset, no image files found")
    pairs = []
    for stem, image in images.items():
        if stem not in masks:
            raise SegmentationDataError(
                f"{image}: image has no mask (looked for {mask_dir / stem}{layout.mask_suffix}"
                f"{{{','.join(MASK_SUFFIXES)}}})"
            )
        pairs.append(SamplePair(image, masks[stem]))
    return pairs


def find_folder_pairs(split_dir: str | Path) -> list[SamplePair]:
    """Pairs from ``split_dir/images/**`` and ``split_dir/masks/**`` matched by relative stem.

    Raises:
        SegmentationDataError: as ``find_layout_pairs``.
    """
    split_dir = Path(split_dir)
    return find_layout_pairs(split_dir.parent, split_dir.name, FolderLayout())


def _listed_lines(list_file: Path) -> list[list[str]]:
    """The non-blank lines of an image list, split into fields; an empty list is an error."""
    lines = [line.split() for line in list_file.read_text().splitlines() if line.strip()]
    if not lines:
        raise SegmentationDataError(f"{list_file}: empty dataset, the list names no image")
    return lines


def _listed_pair(image: Path, mask: Path, list_file: Path, mask_kind: str) -> SamplePair:
    """The pair of an image named in ``list_file``; an error names the file that is missing."""
    if not image.is_file():
        raise SegmentationDataError(f"{image}: image listed in {list_file} not found")
    if not mask.is_file():
        raise SegmentationDataError(f"{image}: image has no {mask_kind} ({mask} not found)")
    return SamplePair(image, mask)


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
    for fields in _listed_lines(list_file):
        image = base / split / Path(fields[0]).name
        mask_name = Path(fields[1]).name if len(fields) > 1 else image.name
        pairs.append(_listed_pair(image, base / f"{split}annot" / mask_name, list_file, "label"))
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
    return [
        _listed_pair(
            base / "JPEGImages" / f"{fields[0]}.jpg",
            base / "SegmentationClass" / f"{fields[0]}.png",
            list_file,
            "mask",
        )
        for fields in _listed_lines(list_file)
    ]


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
            if mode not in {"L", "P", "1", "I", "I;16", "I;16B", "I;16L"}:
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


Transform = Callable[..., dict[str, Any]]


class SegmentationDataset(Dataset):
    """Image/mask pairs read from disk (or from their decoded store), optionally jointly
    transformed (albumentations style) or with augmentation parameters for the device.

    Item: ``{"image": uint8 (3, H, W), "mask": uint8 (H, W), "name": str}``; ``num_classes``
    is the number of classes or a ``LabelSpec`` (see ``read_mask``).
    The transform is called as ``transform(image=HxWx3 array, mask=HxW array)`` and must return
    a dict with the same keys. An albumentations transform is reseeded for every item from
    ``(seed, epoch, index)``, so augmentations do not depend on worker processes or ranks and a
    resumed run sees the same ones. The key is an index (``epoch`` is then the attribute) or an
    ``(epoch, index)`` pair, as ``EpochSeededSampler`` yields them.

    ``store``: a ``DecodedStore`` of exactly ``pairs`` (``seg.data.decoded_store``): pixels are
    read from it instead of decoding the files. ``augment``: an ``AugmentSpec`` whose random
    parameters are drawn per item from a generator seeded by ``(seed, epoch, index)``
    (``seg.data.augment_params``), to be applied on the training device
    (``seg.data.device_augment``); the item then holds only the region of the image and mask
    that the crop reads, and ``"augment"``: the parameters (with ``region``, its top-left corner
    in the image, and ``size``); batch such items with ``augment_collate``.
    """

    def __init__(
        self,
        pairs: Sequence[SamplePair],
        num_classes: int | LabelSpec,
        transform: Transform | None = None,
        seed: int = 0,
        store: DecodedStore | None = None,
        augment: AugmentSpec | None = None,
    ) -> None:
        if not pairs:
            raise SegmentationDataError("empty dataset: no image/mask pair given")
        if transform is not None and augment is not None:
            raise ValueError("give a transform (on the CPU) or augment (on the device), not both")
        if store is not None and len(store) != len(pairs):
            raise ValueError(f"{store.path}: store of {len(store)} pairs for {len(pairs)} pairs")
        self.pairs = list(pairs)
        self.labels = (
            num_classes if isinstance(num_classes, LabelSpec) else LabelSpec.create(num_classes)
        )
        self.num_classes = self.labels.num_classes
        self.transform = transform
        self.seed = seed
        self.store = store
        self.augment = augment
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image (H, W, 3) and mask (H, W) of pair ``index``, from the store when there is one
        (read-only views of it then)."""
        if self.store is not None:
            return self.store.read(index)
        return read_pair(self.pairs[index], self.labels)

    def _generator(self, epoch: int, index: int) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, epoch, index])

    def _reseed(self, epoch: int, index: int) -> None:
        """Reseed an albumentations transform for item ``(epoch, index)``: one numpy and one
        Python generator shared by all its transforms, so they draw one after the other.
        (``Compose.set_random_seed`` gives every transform a generator of the same seed: they
        then draw the same numbers, and flip, scale, crop and padding position were all one
        draw.)"""
        state = int(self._generator(epoch, index).generate_state(1)[0])
        if hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(np.random.default_rng(state), random.Random(state))
        elif hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(state)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        pair = self.pairs[index]
        image, mask = self.read(index)
        if self.augment is not None:
            return self._with_params(image, mask, pair.name, epoch, index)
        if self.transform is not None:
            self._reseed(epoch, index)
            if self.store is not None:  # transforms may write into their input
                image, mask = np.array(image), np.array(mask)
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(np.array(mask)),
            "name": pair.name,
        }

    def _with_params(
        self, image: np.ndarray, mask: np.ndarray, name: str, epoch: int, index: int
    ) -> dict[str, Any]:
        from seg.data.augment_params import draw_params, source_region

        rng = np.random.default_rng(self._generator(epoch, index))
        params = draw_params(self.augment, rng, *mask.shape)
        top, bottom, left, right = source_region(params)
        params["region"] = np.array((top, left), dtype=np.int64)
        params["size"] = np.array((bottom - top, right - left), dtype=np.int64)
        return {
            # (3, h, w) views of (h, w, 3) copies: augment_collate copies them row by row
            "image": torch.from_numpy(np.array(image[top:bottom, left:right])).permute(2, 0, 1),
            "mask": torch.from_numpy(np.array(mask[top:bottom, left:right])),
            "name": name,
            "augment": params,
        }


class EpochSeededSampler(SeededShuffleSampler):
    """``SeededShuffleSampler`` whose items are ``(epoch, index)`` keys (for per-item seeding).

    The epoch travels with each key, so DataLoader workers that live across epochs
    (``persistent_workers``) augment with the current epoch's seeds: their copy of the dataset
    never sees a later ``set_epoch``. Lightning calls ``set_epoch`` in the main process, where
    the keys are drawn; under DDP its sampler wrapper forwards the call and shards the keys.
    """

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((epoch, index) for index in super().__iter__())


def pad_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples of possibly different sizes: pad at the bottom/right to the largest height
    and width, images with 0 and masks with 255 (ignored by the loss and the metrics).

    Returns:
        ``{"image": uint8 (N, 3, H, W), "mask": (N, H, W), "name": list[str]}``.
    """
    height = max(s["image"].shape[1] for s in samples)
    width = max(s["image"].shape[2] for s in samples)
    images = batch_buffer((len(samples), 3, height, width), 0, samples[0]["image"].dtype)
    masks = batch_buffer((len(samples), height, width), IGNORE_INDEX, samples[0]["mask"].dtype)
    for index, sample in enumerate(samples):
        h, w = sample["mask"].shape
        images[index, :, :h, :w] = sample["image"]
        masks[index, :h, :w] = sample["mask"]
    return {"image": images, "mask": masks, "name": [s["name"] for s in samples]}


def batch_buffer(shape: tuple[int, ...], fill: int, dtype: torch.dtype = torch.uint8) -> Tensor:
    """A tensor filled with ``fill``; inside a DataLoader worker it is allocated in shared
    memory, as ``default_collate`` does, so that handing the batch to the main process does not
    copy it once more."""
    if get_worker_info() is None:
        return torch.full(shape, fill, dtype=dtype)
    elem = torch.empty(0, dtype=dtype)
    try:
        storage = elem._typed_storage()._new_shared(math.prod(shape), device=elem.device)
    except AttributeError:  # should torch drop this private helper: a copy into shared memory
        return torch.full(shape, fill, dtype=dtype).share_memory_()
    buffer = elem.new(storage).resize_(shape)
    # new shared memory comes zeroed from the OS: filling it with 0 would touch every page twice
    return buffer.fill_(fill) if fill else buffer


def augment_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items of a ``SegmentationDataset`` with ``augment``: their regions at the top left
    of a common size (the rest, zeros, is never read), and their parameters
    (``collate_params``).

    Returns:
        ``{"image": uint8 (N, 3, H, W) (channels-last memory), "mask": (N, H, W), "name":
        list[str], "augment": {"params": ..., "groups": ...}}``.
    """
    from seg.data.augment_params import collate_params

    height = max(s["mask"].shape[0] for s in samples)
    width = max(s["mask"].shape[1] for s in samples)
    images = batch_buffer((len(samples), height, width, 3), 0)
    masks = batch_buffer((len(samples), height, width), 0)  # outside the regions: never read
    for index, sample in enumerate(samples):
        h, w = sample["mask"].shape
        images[index, :h, :w] = sample["image"].permute(1, 2, 0)
        masks[index, :h, :w] = sample["mask"]
    return {
        "image": images.permute(0, 3, 1, 2),
        "mask": masks,
        "name": [s["name"] for s in samples],
        "augment": collate_params([s["augment"] for s in samples]),
    }
