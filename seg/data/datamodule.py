"""``SegDataModule``: Fashion-MNIST-Seg, an images/ + masks/ folder layout, or PASCAL VOC."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from common.sampling import evaluation_sampler

from seg.data.datasets import (
    VOC_CLASSES,
    SamplePair,
    SegmentationDataError,
    EpochSeededSampler,
    SegmentationDataset,
    find_folder_pairs,
    find_voc_pairs,
    pad_collate,
)
from seg.data.fashion_seg import FASHION_CLASSES, FashionSegParams, prepare_fashion_seg
from seg.data.transforms import train_transform

DataFormat = Literal["fashion", "folder", "voc"]


class SegDataModule(pl.LightningDataModule):
    """Segmentation data for training, validation, testing and prediction.

    Formats:
        ``fashion``: Fashion-MNIST-Seg, generated on first use by ``prepare_data`` under
            ``root/fashion_seg/{train,val}`` (11 classes). Test = the validation canvases.
        ``folder``: ``root/{train,val}/images/**`` and ``.../masks/**`` with matching relative
            stems; masks are class-index or palette PNGs, 255 = ignore; ``num_classes`` required.
            Test reads ``root/test`` when present, else ``root/val``.
        ``voc``: PASCAL VOC 2012 (``JPEGImages``, ``SegmentationClass``,
            ``ImageSets/Segmentation/{train,val}.txt``) under ``root`` (or ``root/VOC2012``,
            ``root/VOCdevkit/VOC2012``); 21 classes. Test = val.

    Batches: ``{"image": uint8 (N, 3, H, W), "mask": uint8 (N, H, W), "name": list[str]}``.
    Training images are jointly augmented (random scale, pad and crop to ``crop_size``, flip,
    colour jitter); validation/test images are not transformed and are padded per batch (mask
    padding is 255, so it is never counted). Under DDP, validation and test use a sampler that
    does not pad with repeated samples, so each sample is counted exactly once.

    Args:
        format: ``"fashion"``, ``"folder"`` or ``"voc"``.
        root: data folder (for ``fashion``, where the canvases are generated).
        num_classes: number of classes including background; fixed for fashion (11) and voc (21).
        num_train, num_val: number of generated canvases (fashion only).
        canvas_size, garments, garment_scale, fashion_seed: generation parameters (fashion only).
        fashion_mnist_root: folder with the Fashion-MNIST idx files (else the usual places).
        batch_size: training batch size per device; ``val_batch_size`` defaults to it.
        num_workers: DataLoader worker processes.
        crop_size: training crop side; ``None`` keeps the full image (no random scaling).
        scale_range, hflip, color_jitter: training augmentation.
        predict_dir: image folder for ``seg predict --config ...`` (LightningCLI prediction).
        seed: seed of the training order and augmentations (reproducible, also when resumed).
    """

    def __init__(
        self,
        format: DataFormat = "fashion",
        root: str = "data",
        num_classes: int | None = None,
        num_train: int = 4000,
        num_val: int = 500,
        canvas_size: int = 96,
        garments: tuple[int, int] = (2, 4),
        garment_scale: tuple[float, float] = (0.3, 0.6),
        fashion_seed: int = 0,
        fashion_mnist_root: str | None = None,
        batch_size: int = 16,
        val_batch_size: int | None = None,
        num_workers: int = 2,
        crop_size: int | None = None,
        scale_range: tuple[float, float] = (0.75, 1.25),
        hflip: bool = True,
        color_jitter: float = 0.2,
        predict_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if format not in ("fashion", "folder", "voc"):
            raise ValueError(f"format must be 'fashion', 'folder' or 'voc', got {format!r}")
        self.format = format
        self.root = Path(root)
        self.fashion_params = FashionSegParams(
            canvas_size=canvas_size,
            min_garments=garments[0],
            max_garments=garments[1],
            min_scale=garment_scale[0],
            max_scale=garment_scale[1],
            seed=fashion_seed,
        )
        self.num_train = num_train
        self.num_val = num_val
        self.fashion_mnist_root = fashion_mnist_root
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.crop_size = crop_size
        self.scale_range = tuple(scale_range)
        self.hflip = hflip
        self.color_jitter = color_jitter
        self.predict_dir = predict_dir
        self.seed = seed
        self.num_classes = self._resolve_num_classes(num_classes)
        self.datasets: dict[str, Dataset] = {}

    def _resolve_num_classes(self, num_classes: int | None) -> int:
        fixed = {"fashion": len(FASHION_CLASSES), "voc": len(VOC_CLASSES)}.get(self.format)
        if fixed is not None:
            if num_classes not in (None, fixed):
                raise ValueError(
                    f"format {self.format!r} has {fixed} classes, got num_classes={num_classes}"
                )
            return fixed
        if num_classes is None or num_classes < 2:
            raise ValueError(
                f"format 'folder' needs num_classes >= 2 (including background), got {num_classes}"
            )
        return num_classes

    @property
    def class_names(self) -> list[str]:
        """Names of the classes (``class_<i>`` for the folder format)."""
        if self.format == "fashion":
            return list(FASHION_CLASSES)
        if self.format == "voc":
            return list(VOC_CLASSES)
        return [f"class_{index}" for index in range(self.num_classes)]

    @property
    def data_dir(self) -> Path:
        """The folder holding the ``train``/``val`` splits (folder and fashion formats)."""
        return self.root / "fashion_seg" if self.format == "fashion" else self.root

    def prepare_data(self) -> None:
        if self.format == "fashion":
            prepare_fashion_seg(
                self.root,
                self.num_train,
                self.num_val,
                self.fashion_params,
                fashion_mnist_root=self.fashion_mnist_root,
            )

    def pairs(self, split: Literal["train", "val", "test"]) -> list[SamplePair]:
        """The image/mask pairs of a split (see the class docstring for where they come from)."""
        if self.format == "voc":
            return find_voc_pairs(self.root, "train" if split == "train" else "val")
        if split == "test" and not (self.data_dir / "test").is_dir():
            split = "val"
        return find_folder_pairs(self.data_dir / split)

    def _dataset(self, split: Literal["train", "val", "test"]) -> SegmentationDataset:
        transform = None
        if split == "train":
            transform = train_transform(
                self.crop_size, self.scale_range, self.hflip, self.color_jitter
            )
        return SegmentationDataset(self.pairs(split), self.num_classes, transform, self.seed)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.datasets["train"] = self._dataset("train")
            self.datasets["val"] = self._dataset("val")
        elif stage == "validate":
            self.datasets["val"] = self._dataset("val")
        elif stage == "test":
            self.datasets["test"] = self._dataset("test")
        elif stage == "predict":
            from seg.predict import ImageFolderDataset

            if self.predict_dir is None:
                raise SegmentationDataError(
                    "predict needs --data.predict_dir (a folder of images), or use "
                    "`seg predict --ckpt_path CKPT --input DIR --output DIR`"
                )
            self.datasets["predict"] = ImageFolderDataset(self.predict_dir)

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        dataset = self.datasets[split]
        if split == "train":
            # Lightning wraps this sampler in a distributed one under DDP.
            sampler = EpochSeededSampler(dataset, seed=self.seed)
        else:
            # Under DDP every sample goes to exactly one rank (no padding duplicates).
            sampler = evaluation_sampler(dataset, self.trainer)
        per_rank = -(-len(dataset) // self._world_size())
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=pad_collate,
            # Drop a ragged last training batch (a batch of one breaks batch norm on 1x1 maps),
            # unless that would leave a rank without any batch.
            drop_last=split == "train" and per_rank > batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        from seg.predict import collate_images

        return DataLoader(
            self.datasets["predict"],
            batch_size=1,
            num_workers=self.num_workers,
            collate_fn=collate_images,
        )
