"""``SegDataModule``: Fashion-MNIST-Seg, image/mask folders (any declared layout), PASCAL VOC,
CamVid."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from seg.data.augment_params import AugmentSpec
from seg.data.class_weights import ClassPixelCounts, cached_class_pixel_counts
from seg.data.dataset_classes import declared_classes
from seg.data.datasets import (
    EpochSeededSampler,
    SegmentationDataError,
    SegmentationDataset,
    augment_collate,
    pad_collate,
)
from seg.data.decoded_store import DecodedStore, cached_store
from seg.data.device_augment import augment_batch
from seg.data.fashion_seg import FashionSegParams, prepare_fashion_seg
from seg.data.labels import DATASET_SPEC_KEYS
from seg.data.pairs import SamplePair
from seg.data.sources.camvid import camvid_base, find_camvid_pairs
from seg.data.sources.folder import find_layout_pairs
from seg.data.sources.voc import find_voc_pairs
from seg.data.transforms import Augmentation
from seg.inference.image_folder import UnlabelledImageFolder, collate_images
from upsample.core.sampling import ResumableDataLoader, epoch_batches_done, evaluation_sampler

DataFormat = Literal["fashion", "folder", "voc", "camvid"]
FORMATS = ("fashion", "folder", "voc", "camvid")
AugmentOn = Literal["auto", "cpu", "device"]
AUGMENT_ON = ("auto", "cpu", "device")
#: splits read from the decoded store (with ``cache``): those read at every epoch of ``fit``
CACHED_SPLITS = ("train", "val")


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value``, checked to be one of ``choices`` (a ``ValueError`` naming argument ``name``)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


class SegDataModule(pl.LightningDataModule):
    """Segmentation data for training, validation, testing and prediction.

    Formats:
        ``fashion``: Fashion-MNIST-Seg, generated on first use by ``prepare_data`` under
            ``root/fashion_seg/{train,val}`` (11 classes). Test = the validation canvases.
        ``folder``: ``root/{train,val}/images/**`` and ``.../masks/**`` with matching relative
            stems; masks are class-index or palette PNGs, 255 = ignore; ``num_classes`` required.
            Test reads the ``test`` split when present, else ``val``. Other layouts, class
            names, colours, ignored values and a label remapping are declared with the
            ``image_dir`` ... ``label_map`` arguments or in ``root/dataset.yaml`` (same keys;
            the arguments win), e.g. Cityscapes as it is unpacked.
        ``voc``: PASCAL VOC 2012 (``JPEGImages``, ``SegmentationClass``,
            ``ImageSets/Segmentation/{train,val}.txt``) under ``root`` (or ``root/VOC2012``,
            ``root/VOCdevkit/VOC2012``); 21 classes. Test = val.
        ``camvid``: CamVid as prepared for SegNet (``{train,val,test}/`` photos,
            ``{split}annot/`` labels, ``{split}.txt`` lists) under ``root`` (or ``root/CamVid``);
            11 classes with their names and colours, label 11 (void) ignored.

    Batches: ``{"image": uint8 (N, 3, H, W), "mask": uint8 (N, H, W), "name": list[str]}``.
    Training images are jointly augmented (random scale, pad and crop to ``crop_size``, flip,
    colour jitter); validation/test images are not transformed and are padded per batch (mask
    padding is 255, so it is never counted). Under DDP, validation and test use a sampler that
    does not pad with repeated samples, so each sample is counted exactly once.

    Speed (issue 20): with ``cache`` the training and validation pairs are decoded once into a
    memory-mapped uint8 store that every worker shares (``seg.data.decoded_store``). The
    training augmentation runs either with albumentations in the DataLoader workers
    (``augment_on="cpu"``, the reference) or as batched tensor operations on the training
    device after the batch is moved there (``"device"``, ``seg.data.device_augment``): the
    workers then only read the regions the crops need and draw each sample's parameters, and
    batches cross process boundaries as uint8 (pinned on CUDA). ``"auto"`` augments on the
    device when it is not a CPU; on a CPU albumentations is 4-5x cheaper per photo
    (``bench/results/retired/input_pipeline.md``). Both draw from ``(seed, epoch, index)`` with
    the same distributions.

    Args:
        format: ``"fashion"``, ``"folder"``, ``"voc"`` or ``"camvid"``.
        root: data folder (for ``fashion``, where the canvases are generated).
        num_classes: number of classes including background; fixed for fashion (11), voc (21)
            and camvid (11); for folder given here, by ``class_names`` or in ``dataset.yaml``.
        class_names: class names (folder; used in per-class logs), default ``class_<i>``.
        palette: class colours [[r, g, b], ...] for masks and overlays (folder; default the
            VOC colour map).
        ignore_values: raw mask values that are ignored (folder; default [255]).
        label_map: raw mask value -> class ({raw: class}, 255 ignores; folder): only the listed
            values (and ``ignore_values``) are valid, e.g. Cityscapes label ids -> train ids.
        image_dir, mask_dir, image_suffix, mask_suffix: folder layout (``{split}`` is replaced by
            the split name; see ``seg.data.labels.FolderLayout``), default
            ``{split}/images`` and ``{split}/masks`` with no suffix.
        dataset_spec: a YAML declaration of the keys above (folder; default
            ``root/dataset.yaml`` when it exists).
        num_train, num_val: number of generated canvases (fashion only).
        canvas_size, garments, garment_scale, fashion_seed: generation parameters (fashion only).
        fashion_mnist_root: folder with the Fashion-MNIST idx files (else the usual places).
        batch_size: training batch size per device; ``val_batch_size`` defaults to it.
        num_workers: DataLoader worker processes.
        crop_size: training crop side or [height, width]; ``None`` keeps the full image (no
            random scaling).
        scale_range, hflip, color_jitter: training augmentation; ``augmentation="road"``
            replaces the colour jitter by photometric changes suited to street photos
            (``seg.data.transforms.road_photometric``).
        class_frequency_cache: folder of the cached class-pixel counts (median frequency
            balancing); default ``$UPSAMPLE_CACHE_DIR/class_frequencies``.
        cache: read the training and validation pairs from their decoded store (built on first
            use, rebuilt when a file changes; 4 bytes per pixel on disk); without room for it
            on the cache's disk, a warning and the files are decoded as with ``False``.
        cache_dir: folder of the decoded stores; default ``$UPSAMPLE_CACHE_DIR/decoded``.
        augment_on: where the training augmentation runs: ``"cpu"`` (albumentations in the
            workers), ``"device"`` (batched tensor operations on the training device, in
            ``on_after_batch_transfer``) or ``"auto"`` (the device unless it is a CPU).
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
        class_names: list[str] | None = None,
        palette: list[list[int]] | None = None,
        ignore_values: list[int] | None = None,
        label_map: dict[int, int] | None = None,
        image_dir: str | None = None,
        mask_dir: str | None = None,
        image_suffix: str | None = None,
        mask_suffix: str | None = None,
        dataset_spec: str | None = None,
        batch_size: int = 16,
        val_batch_size: int | None = None,
        num_workers: int = 2,
        crop_size: int | list[int] | None = None,
        scale_range: tuple[float, float] = (0.75, 1.25),
        hflip: bool = True,
        color_jitter: float = 0.2,
        augmentation: Augmentation = "default",
        class_frequency_cache: str | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        augment_on: AugmentOn = "auto",
        predict_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.format, self.root = _one_of("format", format, FORMATS), Path(root)
        # (canvas_size, min_garments, max_garments, min_scale, max_scale) in field order
        self.fashion_params = FashionSegParams(
            canvas_size, *garments, *garment_scale, seed=fashion_seed
        )
        self.num_train, self.num_val = num_train, num_val
        self.fashion_mnist_root = fashion_mnist_root
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers = num_workers
        self.augment_on = _one_of("augment_on", augment_on, AUGMENT_ON)
        self.augment_spec = AugmentSpec.create(
            crop_size, scale_range, hflip, color_jitter, augmentation
        )
        self.train_transform = self.augment_spec.albumentations()
        self.cache, self.cache_dir = cache, cache_dir
        self.class_frequency_cache = class_frequency_cache
        self.predict_dir, self.seed = predict_dir, seed
        declared = (num_classes, class_names, palette, ignore_values, label_map)
        declared += (image_dir, mask_dir, image_suffix, mask_suffix)  # DATASET_SPEC_KEYS' order
        self._declare(dict(zip(DATASET_SPEC_KEYS, declared, strict=True)), dataset_spec)
        self.datasets: dict[str, Dataset] = {}

    def _declare(self, declared: dict[str, Any], dataset_spec: str | None) -> None:
        """Set ``num_classes``, ``class_names``, ``palette``, ``labels`` (the ``LabelSpec``) and
        ``layout`` from the format, the declaration file and the arguments
        (``seg.data.dataset_classes``)."""
        classes = declared_classes(self.format, self.root, declared, dataset_spec)
        self.num_classes, self.class_names = classes.num_classes, classes.class_names
        self.palette, self.labels, self.layout = classes.palette, classes.labels, classes.layout

    @property
    def data_dir(self) -> Path:
        """The folder holding the splits (fashion, folder and camvid formats)."""
        if self.format == "fashion":
            return self.root / "fashion_seg"
        return camvid_base(self.root) if self.format == "camvid" else self.root

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
        if self.format == "camvid":
            return find_camvid_pairs(self.root, split)
        if split == "test" and not self.layout.images(self.data_dir, "test").is_dir():
            split = "val"
        return find_layout_pairs(self.data_dir, split, self.layout)

    def class_pixel_counts(self) -> ClassPixelCounts:
        """Pixels per class in the training masks (cached; see ``seg.data.class_weights``)."""
        return cached_class_pixel_counts(
            self.pairs("train"), self.labels, self.class_frequency_cache
        )

    def median_frequency_weights(self) -> list[float]:
        """SegNet's median frequency balancing weights from the training masks."""
        return self.class_pixel_counts().median_frequency_weights()

    def _store(self, split: str) -> DecodedStore | None:
        """The decoded store of a split's pairs, built on first use (``seg.data.decoded_store``);
        ``None`` without ``cache``, for other splits, or where it cannot be built (a warning)."""
        if not self.cache or split not in CACHED_SPLITS:
            return None
        return cached_store(self.pairs(split), self.labels, self.cache_dir, rank_zero_info)

    @property
    def augments_on_device(self) -> bool:
        """Whether training batches are augmented on the training device (``augment_on``;
        ``auto``: when the trainer's device is not a CPU)."""
        if self.augment_on != "auto":
            return self.augment_on == "device"
        return self._device_type() != "cpu"

    def _device_type(self) -> str:
        trainer = self.trainer
        return trainer.strategy.root_device.type if trainer is not None else "cpu"

    def _dataset(self, split: Literal["train", "val", "test"]) -> SegmentationDataset:
        pairs, store = self.pairs(split), self._store(split)
        if split != "train":
            return SegmentationDataset(pairs, self.labels, None, self.seed, store)
        if self.augments_on_device:
            spec = self.augment_spec
            return SegmentationDataset(pairs, self.labels, None, self.seed, store, spec)
        return SegmentationDataset(pairs, self.labels, self.train_transform, self.seed, store)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.datasets["train"] = self._dataset("train")
            self.datasets["val"] = self._dataset("val")
        elif stage == "validate":
            self.datasets["val"] = self._dataset("val")
        elif stage == "test":
            self.datasets["test"] = self._dataset("test")
        elif stage == "predict":
            if self.predict_dir is None:
                raise SegmentationDataError(
                    "predict needs --data.predict_dir (a folder of images), or use "
                    "`seg predict --ckpt_path CKPT --input DIR --output DIR`"
                )
            self.datasets["predict"] = UnlabelledImageFolder(self.predict_dir)

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
        # A run resumed inside an epoch continues with the batches it had not trained.
        resumable = {"progress": lambda: epoch_batches_done(self.trainer)}
        loader_class = ResumableDataLoader if split == "train" else DataLoader
        return loader_class(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            # Workers live across epochs: starting them anew cost about half a second per epoch
            # with CamVid photos (bench.throughput_camvid); EpochSeededSampler's keys carry the
            # epoch to them.
            persistent_workers=self.num_workers > 0,
            collate_fn=augment_collate if dataset.augment is not None else pad_collate,
            # page-locked batches copy to a GPU asynchronously
            pin_memory=self._device_type() == "cuda",
            # Drop a ragged last training batch (a batch of one breaks batch norm on 1x1 maps),
            # unless that would leave a rank without any batch.
            drop_last=split == "train" and per_rank > batch_size,
            **(resumable if split == "train" else {}),
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment a training batch on its device when its dataset draws parameters for that
        (``augment_on``); every other batch passes unchanged."""
        if isinstance(batch, dict) and "augment" in batch:
            return self.augment_batch(batch)
        return batch

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Apply the augmentation of a batch of the device path where the batch is (Lightning
        calls this after moving it; call it yourself when iterating ``train_dataloader()``
        without a trainer): ``{"image": uint8 (N, 3, h, w), "mask": uint8 (N, h, w), "name"}``
        with ``(h, w)`` the crop size (without one, the batch's largest image)."""
        # without a crop every sample's region is its whole image: the batch's size is the largest
        crop = self.augment_spec.crop
        out_size = crop or tuple(batch["image"].shape[-2:])
        images, masks = augment_batch(
            batch["image"], batch["mask"], batch["augment"], out_size, crop is not None
        )
        return {"image": images, "mask": masks, "name": batch["name"]}

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self.datasets["predict"],
            batch_size=1,
            num_workers=self.num_workers,
            collate_fn=collate_images,
        )
