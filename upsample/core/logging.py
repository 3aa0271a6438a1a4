"""Send images to whichever loggers a run has, and always to files under the run's directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image

from upsample.core.distributed import run_dir
from upsample.core.io import save_image_atomic

ImageBatch = torch.Tensor | Sequence[np.ndarray]


def to_uint8_images(images: ImageBatch) -> list[np.ndarray]:
    """Convert a float tensor (N, C, H, W) in [0, 1] (C = 1 or 3) or uint8 HxW[x3] arrays to a list
    of uint8 (H, W, 3) arrays."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (N, 1|3, H, W), got {tuple(images.shape)}")
        array = images.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
        images = list(array.transpose(0, 2, 3, 1))
    result = []
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(f"expected uint8 arrays, got {image.dtype}")
        if image.ndim == 2:
            image = image[..., None]
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        result.append(image)
    return result


def log_images(
    trainer: pl.Trainer,
    key: str,
    images: ImageBatch,
    captions: Sequence[str] | None = None,
) -> list[Path]:
    """Log images to every configured logger that takes images and write them as PNG files.

    Args:
        trainer: the running trainer; its loggers and run directory are used.
        key: a name such as ``"val/overlays"``; also the sub-folder under ``<run dir>/images``.
        images: float tensor (N, 1|3, H, W) in [0, 1], or a list of uint8 (H, W[, 3]) arrays.
        captions: optional, one per image.

    Returns:
        The PNG paths written (only on global rank 0; other ranks write nothing). No collective:
        it may be called on any rank (``upsample.core.distributed``).
    """
    if not trainer.is_global_zero:
        return []
    folder = run_dir(trainer) / "images" / key.replace("/", "_")
    arrays = to_uint8_images(images)
    if not arrays:
        return []
    if captions is not None and len(captions) != len(arrays):
        raise ValueError(f"{len(captions)} captions for {len(arrays)} images")
    step = trainer.global_step
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            extra = {"caption": list(captions)} if captions is not None else {}
            logger.log_image(key=key, images=arrays, step=step, **extra)
        elif isinstance(logger, TensorBoardLogger):
            for index, array in enumerate(arrays):
                logger.experiment.add_image(f"{key}/{index}", array, step, dataformats="HWC")
    return [
        save_image_atomic(Image.fromarray(array), folder / f"step{step:07d}_{index:02d}.png")
        for index, array in enumerate(arrays)
    ]
