"""Tiny segmentation datasets written to disk in every supported layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from PIL import Image

from seg.visualize import palette_mask_image

NUM_CLASSES = 3


def random_pair(
    rng: np.random.Generator, height: int, width: int, num_classes: int = NUM_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image whose colour encodes a blocky class mask (learnable), and the mask."""
    coarse = rng.integers(0, num_classes, size=(max(1, height // 8), max(1, width // 8)))
    mask = np.kron(coarse, np.ones((8, 8), dtype=np.int64))[:height, :width]
    mask = np.pad(mask, ((0, height - mask.shape[0]), (0, width - mask.shape[1])), mode="edge")
    colours = np.array([[20, 20, 20], [200, 40, 40], [40, 200, 40], [40, 40, 200]])
    image = colours[mask % len(colours)] + rng.integers(0, 30, size=(height, width, 3))
    return image.clip(0, 255).astype(np.uint8), mask.astype(np.uint8)


def write_folder_split(
    split_dir: Path,
    count: int,
    size: tuple[int, int] = (40, 48),
    seed: int = 0,
    ignore_border: bool = False,
) -> None:
    """``split_dir/images/<i>.png`` + ``split_dir/masks/<i>.png`` (class-index PNGs)."""
    rng = np.random.default_rng(seed)
    (split_dir / "images").mkdir(parents=True, exist_ok=True)
    (split_dir / "masks").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, mask = random_pair(rng, *size)
        if ignore_border:
            mask[:2] = 255
        Image.fromarray(image).save(split_dir / "images" / f"{index:03d}.png")
        Image.fromarray(mask).save(split_dir / "masks" / f"{index:03d}.png")


def write_voc(root: Path, ids_train: int = 4, ids_val: int = 3, seed: int = 0) -> Path:
    """A tiny PASCAL VOC 2012 layout (JPEG images, palette masks with a 255 border)."""
    base = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = {"train": [], "val": []}
    for split, count in (("train", ids_train), ("val", ids_val)):
        for index in range(count):
            name = f"2007_{split}{index:03d}"
            height, width = (36, 44) if index % 2 else (44, 36)
            image, mask = random_pair(rng, height, width)
            mask[0] = 255
            Image.fromarray(image).save(base / "JPEGImages" / f"{name}.jpg", quality=95)
            palette_mask_image(mask).save(base / "SegmentationClass" / f"{name}.png")
            names[split].append(name)
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(
            "\n".join(names[split]) + "\n"
        )
    return root


def one_step_trainer(**options: Any) -> pl.Trainer:
    """A CPU ``Trainer`` of one optimiser step without logger, checkpoints, progress bar or
    summary; ``options``: more ``Trainer`` arguments."""
    return pl.Trainer(
        **{
            "max_steps": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "accelerator": "cpu",
            **options,
        }
    )


def seeded_folder_data(folder_root: Path, workers: int, **options: Any) -> Any:
    """A ``SegDataModule`` of the folder dataset under ``folder_root`` (3 classes, batch 2,
    random crops of 24, seed 5), set up for fitting; ``options`` add to or replace these."""
    from seg.data.datamodule import SegDataModule

    settings: dict[str, Any] = dict(num_classes=3, batch_size=2, crop_size=24, seed=5)
    data = SegDataModule(
        format="folder",
        root=str(folder_root),
        num_workers=workers,
        **{**settings, **options},
    )
    data.setup("fit")
    return data
