"""The segmentation dataset (image/mask pairs as tensors, read from their files or their
decoded store, augmented on the CPU or prepared for the device), its epoch-seeded sampler and the
functions that batch its items.

The pairs come from ``seg.data.sources`` and are read by ``seg.data.pairs``; every problem with
the data is reported with the file it concerns (``SegmentationDataError``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from seg.data.labels import LabelSpec, SegmentationDataError
from seg.data.pairs import SamplePair, read_pair
from seg.losses import IGNORE_INDEX
from upsample.core.sampling import SeededShuffleSampler

if TYPE_CHECKING:
    from seg.data.augment_params import AugmentSpec
    from seg.data.decoded_store import DecodedStore

__all__ = ["SegmentationDataError"]  # defined in seg.data.labels, raised by everything here


Transform = Callable[..., dict[str, Any]]


class SegmentationDataset(Dataset):
    """Image/mask pairs read from disk (or from their decoded store), optionally jointly
    transformed (albumentations style) or with augmentation parameters for the device.

    Item: ``{"image": uint8 (3, H, W), "mask": uint8 (H, W), "name": str}``; ``num_classes``
    is the number of classes or a ``LabelSpec`` (see ``seg.data.pairs.read_mask``).
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
