"""Image data for the GAN: Fashion-MNIST, MNIST, CIFAR-10 or any image folder, as tensors in
[-1, 1].

Every image is fitted to the model's square size (``fit``): ``pad`` (shrink if larger, keeping the
aspect ratio, then centre on black: Fashion-MNIST's 28x28 becomes 32x32 unchanged), ``crop``
(resize the shorter side, centre crop) or ``stretch`` (resize, ignoring the aspect ratio).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from gan.core.data import SplitDataModule, to_model_range, unreadable_reason
from upsample.core.cifar10 import cifar10_folder
from upsample.core.datasets import Split, load_fashion_mnist, load_mnist
from upsample.core.io import ImageReadError, list_images, read_image

DataFormat = Literal["fashion", "mnist", "cifar10", "folder"]
DATA_FORMATS: tuple[str, ...] = ("fashion", "mnist", "cifar10", "folder")
FitMode = Literal["pad", "crop", "stretch"]


def fit_images(images: Tensor, size: int, fit: FitMode = "pad") -> Tensor:
    """Fit uint8 images ``(..., C, H, W)`` to ``(..., C, size, size)`` (see module docstring)."""
    height, width = images.shape[-2:]
    if fit == "stretch":
        return TF.resize(images, [size, size], antialias=True)
    if fit == "crop":
        images = TF.resize(images, size, antialias=True)  # shorter side -> size
        return TF.center_crop(images, [size, size])
    if fit == "pad":
        if max(height, width) > size:
            scale = size / max(height, width)
            new_size = [max(1, round(height * scale)), max(1, round(width * scale))]
            images = TF.resize(images, new_size, antialias=True)
            height, width = new_size
        top, left = (size - height) // 2, (size - width) // 2
        return TF.pad(images, [left, top, size - width - left, size - height - top], fill=0)
    raise ValueError(f"fit must be 'pad', 'crop' or 'stretch', got {fit!r}")


class TensorImageDataset(Dataset):
    """In-memory uint8 images ``(N, C, S, S)``; item ``i`` is float ``(C, S, S)`` in [-1, 1]."""

    def __init__(self, images: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 images (N, C, S, S), got {images.dtype} {images.shape}"
            )
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return to_model_range(self.images[index])

    def uint8_item(self, index: int) -> Tensor:
        """Item ``index`` as stored: uint8 ``(C, S, S)``."""
        return self.images[index]


def arrays_to_images(array: np.ndarray, size: int, channels: int, fit: FitMode) -> Tensor:
    """uint8 ``(N, H, W)`` grey images -> uint8 ``(N, channels, size, size)``."""
    images = torch.from_numpy(np.array(array, dtype=np.uint8)).unsqueeze(1)
    images = fit_images(images, size, fit)
    return images.expand(-1, channels, -1, -1).contiguous()


class FittedImageFolder(Dataset):
    """Every image under ``root`` (recursive, sorted), fitted to ``(channels, size, size)``.

    Files that are not readable images are reported by name in one warning when the dataset is
    made and skipped (``skipped`` lists them with the reason). A file that still fails to decode
    later is reported and replaced by the next readable one, so training goes on.
    Item ``i`` is float ``(C, S, S)`` in [-1, 1].
    """

    def __init__(
        self, root: str | Path, size: int, channels: int = 3, fit: FitMode = "crop"
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: image folder not found")
        self.size, self.channels, self.fit = size, channels, fit
        self.files: list[Path] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in list_images(self.root):
            reason = unreadable_reason(path)
            if reason is None:
                self.files.append(path)
            else:
                self.skipped.append((path, reason))
        if self.skipped:
            listing = "; ".join(f"{path} ({reason})" for path, reason in self.skipped[:20])
            more = f" and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
            warnings.warn(
                f"skipped {len(self.skipped)} unreadable image file(s): {listing}{more}",
                stacklevel=2,
            )
        if not self.files:
            raise FileNotFoundError(f"{self.root}: no readable image files found (recursive)")

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> Tensor:
        """uint8 ``(C, S, S)`` of file ``index``; raises ``ImageReadError`` naming the file."""
        image = read_image(self.files[index], mode="L" if self.channels == 1 else "RGB")
        array = np.array(image, dtype=np.uint8)
        tensor = torch.from_numpy(
            array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy()
        )
        return fit_images(tensor, self.size, self.fit).contiguous()

    def __getitem__(self, index: int) -> Tensor:
        return to_model_range(self.uint8_item(index))

    def uint8_item(self, index: int) -> Tensor:
        """Item ``index`` as uint8 ``(C, S, S)`` (a file that fails to decode is reported and
        replaced by the next readable one)."""
        for offset in range(len(self.files)):
            try:
                return self.load((index + offset) % len(self.files))
            except ImageReadError as error:
                warnings.warn(f"skipping unreadable image {error}", stacklevel=2)
        raise ImageReadError(self.root, "no image in the folder could be decoded")

    def fingerprint(self) -> str:
        """Hash of the file list with sizes and modification times (cache keys)."""
        digest = hashlib.sha1()
        for path in self.files:
            stat = path.stat()
            digest.update(
                f"{path.relative_to(self.root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
        return digest.hexdigest()[:16]


class Uint8Items(Dataset):
    """The items of a dataset with ``uint8_item`` (``TensorImageDataset``, ``FittedImageFolder``,
    or a ``Subset`` of one) as uint8 ``(C, S, S)``: what crosses from the loader's worker
    processes to the training process (a quarter of the bytes of float32), to be brought to
    [-1, 1] on the training device (``to_model_range``)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Tensor:
        dataset = self.dataset
        if isinstance(dataset, torch.utils.data.Subset):
            dataset, index = dataset.dataset, dataset.indices[index]
        return dataset.uint8_item(index)  # type: ignore[attr-defined]

    @staticmethod
    def supports(dataset: Dataset) -> bool:
        """Whether ``dataset`` (or the dataset of a ``Subset``) has ``uint8_item``."""
        if isinstance(dataset, torch.utils.data.Subset):
            dataset = dataset.dataset
        return hasattr(dataset, "uint8_item")


class MirroredImages(Dataset):
    """Every image of ``dataset`` (with ``uint8_item``) twice: as it is (items ``0..N-1``) and
    mirrored left-right (items ``N..2N-1``). Shuffled, it is random horizontal flipping with
    probability 1/2, each image seen both ways once an epoch, and a resumed run draws the same
    flips as an uninterrupted one (the seeded sampler decides them)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.size = len(dataset)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return 2 * self.size

    def uint8_item(self, index: int) -> Tensor:
        dataset, base = self.dataset, index % self.size
        if isinstance(dataset, torch.utils.data.Subset):
            dataset, base = dataset.dataset, dataset.indices[base]
        image = dataset.uint8_item(base)  # type: ignore[attr-defined]
        return image.flip(-1) if index >= self.size else image

    def __getitem__(self, index: int) -> Tensor:
        return to_model_range(self.uint8_item(index))


class GANDataModule(SplitDataModule):
    """Training and validation images for the GAN, float ``(B, C, S, S)`` in [-1, 1].

    Args:
        format: ``fashion`` (Fashion-MNIST, local Debian copy first), ``mnist``, ``cifar10`` or
            ``folder``.
        root: for ``folder`` the image folder (required); for ``cifar10`` a folder of
            ``train/<class>/*`` and ``test/<class>/*`` images, a folder holding
            ``cifar10-jpeg.tar.gz`` or the archive itself (unpacked once into the cache:
            ``upsample.core.cifar10``); for the MNISTs an optional folder with the idx files
            (else the usual search order of ``upsample.core.datasets``).
        image_size: side S of the square images the models use (32, 64 or 128).
        channels: 1 (grey) or 3 (RGB); grey datasets are replicated to 3 channels if asked.
        fit: how images are brought to S x S: ``pad``, ``crop`` or ``stretch``.
        batch_size: training batch size per device; also the validation batch size.
        num_workers: data-loading worker processes.
        val_split: the split used for validation and as the FID reference: ``test`` (the MNISTs'
            test split, or ``val_root`` for folders) or ``train``. Folders without ``val_root``
            use the training folder itself.
        val_root: optional second image folder for the ``folder`` format's ``test`` split.
        max_train_images / max_val_images: keep only the first N images (quick runs, tests).
        seed: seeds the shuffling of the training set (the same order after a resume).
        hflip: mirror training images left-right at random (``MirroredImages``: an epoch then
            shows every image both ways).
    """

    def __init__(
        self,
        format: DataFormat = "fashion",
        root: str | None = None,
        image_size: int = 32,
        channels: int = 1,
        fit: FitMode = "pad",
        batch_size: int = 128,
        num_workers: int = 2,
        val_split: Split = "test",
        val_root: str | None = None,
        max_train_images: int | None = None,
        max_val_images: int | None = None,
        seed: int = 0,
        hflip: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, val_split, max_train_images, max_val_images, seed)
        if format not in DATA_FORMATS:
            raise ValueError(f"data.format must be one of {DATA_FORMATS}, got {format!r}")
        if format in ("folder", "cifar10") and root is None:
            raise ValueError(f"data.format {format!r} needs data.root (where the images are)")
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {channels}")
        self.format, self.root, self.image_size, self.channels = format, root, image_size, channels
        self.fit, self.val_root, self.hflip = fit, val_root, hflip
        self._datasets: dict[str, Dataset] = {}

    @property
    def train_dataset(self) -> Dataset:
        """The training split, limited to ``max_train_images``, mirrored when ``hflip``."""
        dataset = super().train_dataset
        return MirroredImages(dataset) if self.hflip else dataset

    def transported(self, dataset: Dataset) -> Dataset:
        # uint8 between processes; [-1, 1] on the device (on_after_batch_transfer)
        return Uint8Items(dataset) if Uint8Items.supports(dataset) else dataset

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """A batch of uint8 images ``(N, C, S, S)``, now on the training device, in [-1, 1]."""
        if isinstance(batch, Tensor) and batch.dtype == torch.uint8:
            return to_model_range(batch)
        return batch

    def dataset(self, split: Split) -> Dataset:
        """The (cached) dataset of a split, before any ``max_*_images`` limit."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if split not in self._datasets:
            self._datasets[split] = self._make_dataset(split)
        return self._datasets[split]

    def _make_dataset(self, split: Split) -> Dataset:
        if self.format == "cifar10":
            folder = cifar10_folder(self.root) / split  # type: ignore[arg-type]
            return FittedImageFolder(folder, self.image_size, self.channels, self.fit)
        if self.format == "folder":
            folder = self.root if split == "train" or self.val_root is None else self.val_root
            return FittedImageFolder(folder, self.image_size, self.channels, self.fit)
        loader = load_fashion_mnist if self.format == "fashion" else load_mnist
        array, _ = loader(split, self.root)
        return TensorImageDataset(arrays_to_images(array, self.image_size, self.channels, self.fit))

    def dataset_key(self, split: Split, limit: int | None = None) -> str:
        """Identifies a split's images after fitting (cache key for FID real features)."""
        dataset = self._limited(split, limit)
        source = self.format
        if self.format in ("folder", "cifar10"):
            base = self.dataset(split)
            assert isinstance(base, FittedImageFolder)
            source = f"folder-{base.fingerprint()}"
        return f"{source}-{split}-{self.image_size}px-{self.channels}ch-{self.fit}-n{len(dataset)}"

    @property
    def val_dataset_key(self) -> str:
        return self.dataset_key(self.val_split, self.max_val_images)
