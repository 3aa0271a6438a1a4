"""What the GANs' data modules share: the model's [-1, 1] range, the readability check of an
image file, and a data module over named splits with resumable, rank-aware loaders."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from upsample.core.io import ImageReadError, open_image
from upsample.core.sampling import (
    ResumableDataLoader,
    SeededShuffleSampler,
    epoch_batches_done,
    evaluation_sampler,
)


def to_model_range(images: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def unreadable_reason(path: Path) -> str | None:
    """None if the file's header and structure look valid, else the reason."""
    try:
        with open_image(path) as image:
            image.verify()
    except ImageReadError as error:
        return error.reason
    except Exception as error:  # PIL raises many types for broken files
        return f"{type(error).__name__}: {error}"
    return None


class SplitDataModule(pl.LightningDataModule):
    """Loaders over a subclass's splits (``dataset(split)``, limited to ``max_train_images`` /
    ``max_val_images``; ``batch_size``, ``num_workers``, ``seed``): training shuffled by
    ``(seed, epoch)`` without a short last batch, validation (``val_split``) in order with each
    item on exactly one rank."""

    item_name = "images"  # in messages

    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        val_split: str,
        max_train_images: int | None,
        max_val_images: int | None,
        seed: int,
    ) -> None:
        super().__init__()
        # Lightning collects the arguments of every __init__ up the class chain: a subclass's
        # arguments are saved too.
        self.save_hyperparameters()
        self.batch_size, self.num_workers, self.val_split = batch_size, num_workers, val_split
        self.max_train_images, self.max_val_images = max_train_images, max_val_images
        self.seed = seed

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def _limited(self, split: str, limit: int | None) -> Dataset:
        dataset = self.dataset(split)
        if limit is not None and limit < len(dataset):
            return torch.utils.data.Subset(dataset, range(limit))
        return dataset

    @property
    def train_dataset(self) -> Dataset:
        """The training split, limited to ``max_train_images``."""
        return self._limited("train", self.max_train_images)

    @property
    def val_dataset(self) -> Dataset:
        """The validation split, limited to ``max_val_images``."""
        return self._limited(self.val_split, self.max_val_images)

    def transported(self, dataset: Dataset) -> Dataset:
        """The dataset as its items cross to the training process (a subclass may send uint8
        and convert on the device, in ``on_after_batch_transfer``)."""
        return dataset

    def _loader(
        self, dataset: Dataset, sampler: torch.utils.data.Sampler, train: bool
    ) -> DataLoader:
        dataset = self.transported(dataset)
        options = {
            "batch_size": self.batch_size,
            "sampler": sampler,
            "drop_last": train,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            # page-locked batches copy to a GPU asynchronously
            "pin_memory": self.trainer is not None
            and self.trainer.strategy.root_device.type == "cuda",
        }
        if not train:
            return DataLoader(dataset, **options)
        # A run resumed inside an epoch continues with the batches it had not trained.
        progress = lambda: epoch_batches_done(self.trainer)  # noqa: E731
        return ResumableDataLoader(dataset, progress=progress, **options)

    def train_dataloader(self) -> DataLoader:
        dataset = self.train_dataset
        if len(dataset) < self.batch_size:
            raise ValueError(
                f"the training set has {len(dataset)} {self.item_name}, fewer than "
                f"data.batch_size {self.batch_size}; lower the batch size"
            )
        return self._loader(dataset, SeededShuffleSampler(dataset, self.seed), train=True)

    def val_dataloader(self) -> DataLoader:
        dataset = self.val_dataset
        return self._loader(dataset, evaluation_sampler(dataset, self.trainer), train=False)
