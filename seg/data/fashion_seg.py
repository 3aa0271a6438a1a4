"""Fashion-MNIST-Seg: canvases of real Fashion-MNIST garments with per-pixel class masks.

Each canvas holds a few garments at random positions and scales on a random coloured, noisy
background, possibly overlapping (later garments on top). The mask labels a pixel with the
garment's class + 1 where the garment's (resized) intensity exceeds a threshold, else 0
(background): 11 classes. Train canvases use only the Fashion-MNIST train split, validation
canvases only the test split. Generation is seeded and written in the folder layout
``<root>/fashion_seg/{train,val}/{images,masks}/<id>.png`` so that training reads real files
through the same reader as user data.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from seg.visualize import palette_mask_image

FASHION_CLASSES = (
    "background",
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
MARKER_NAME = "generation.json"
GENERATOR_VERSION = 1
SOURCE_SPLIT = {"train": "train", "val": "test"}


@dataclass(frozen=True)
class FashionSegParams:
    """Everything that determines the generated canvases (recorded in the marker file).

    Attributes:
        canvas_size: side of the square canvases in pixels.
        min_garments / max_garments: garments per canvas (inclusive range).
        min_scale / max_scale: garment side as a fraction of the canvas side.
        threshold: garment intensity (0..1) above which a pixel is labelled with its class.
        seed: base seed; each split derives its own stream from it.
    """

    canvas_size: int = 96
    min_garments: int = 2
    max_garments: int = 4
    min_scale: float = 0.3
    max_scale: float = 0.6
    threshold: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.canvas_size < 28:
            raise ValueError(f"canvas_size must be >= 28, got {self.canvas_size}")
        if not 1 <= self.min_garments <= self.max_garments:
            raise ValueError(
                f"need 1 <= min_garments <= max_garments, got {self.min_garments}, "
                f"{self.max_garments}"
            )
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError(
                f"need 0 < min_scale <= max_scale <= 1, got {self.min_scale}, {self.max_scale}"
            )
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dark linear colour gradient with Gaussian noise: (size, size, 3) float32 in [0, 1]."""
    start, end = rng.uniform(0.0, 0.35, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    coords = np.arange(size, dtype=np.float32) / max(size - 1, 1)
    ramp = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    image = start + (end - start) * ramp[..., None]
    image = image + rng.normal(0.0, 0.03, size=image.shape)
    return image.astype(np.float32)


def render_canvas(
    rng: np.random.Generator,
    garments: np.ndarray,
    labels: np.ndarray,
    params: FashionSegParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Compose one canvas.

    Args:
        rng: random stream (positions, scales, colours, garment choice).
        garments: uint8 (N, 28, 28) source garments; labels: int (N,) classes 0..9.

    Returns:
        image: uint8 (S, S, 3); mask: uint8 (S, S) with 0 = background, class + 1 elsewhere.
    """
    size = params.canvas_size
    image = _background(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    count = int(rng.integers(params.min_garments, params.max_garments + 1))
    for index in rng.integers(0, len(garments), size=count):
        side = round(size * rng.uniform(params.min_scale, params.max_scale))
        side = max(8, min(side, size))
        garment = Image.fromarray(garments[index]).resize((side, side), Image.Resampling.BILINEAR)
        intensity = np.asarray(garment, dtype=np.float32) / 255.0
        top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)
        colour = tint * (0.3 + 0.7 * intensity[..., None])
        # Opaque wherever the pixel is labelled, fading out below the threshold: every labelled
        # pixel is visible, so the task stays fair.
        half = params.threshold / 2
        alpha = np.clip((intensity - half) / half, 0, 1)[..., None]
        window = image[top : top + side, left : left + side]
        window[:] = window * (1 - alpha) + colour * alpha
        mask_window = mask[top : top + side, left : left + side]
        mask_window[intensity > params.threshold] = labels[index] + 1
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), mask


def _split_seed(seed: int, split: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, list(SOURCE_SPLIT).index(split)])


def generate_split(
    folder: Path,
    split: Literal["train", "val"],
    num: int,
    params: FashionSegParams,
    garments: np.ndarray,
    labels: np.ndarray,
) -> None:
    """Write ``num`` canvases as ``folder/images/<id>.png`` (RGB) and ``folder/masks/<id>.png``
    (palette PNG of class indices)."""
    rng = np.random.default_rng(_split_seed(params.seed, split))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for index in range(num):
        image, mask = render_canvas(rng, garments, labels, params)
        name = f"{index:06d}.png"
        Image.fromarray(image).save(folder / "images" / name)
        palette_mask_image(mask).save(folder / "masks" / name)


def _marker_content(split: str, num: int, params: FashionSegParams) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "source_split": SOURCE_SPLIT[split],
        "num": num,
        **asdict(params),
    }


def _is_current(folder: Path, expected: dict) -> bool:
    marker = folder / MARKER_NAME
    try:
        return json.loads(marker.read_text()) == expected
    except (OSError, ValueError):
        return False


def prepare_fashion_seg(
    root: str | Path,
    num_train: int,
    num_val: int,
    params: FashionSegParams | None = None,
    fashion_mnist_root: str | Path | None = None,
) -> Path:
    """Generate Fashion-MNIST-Seg under ``root/fashion_seg`` unless it is already there.

    Idempotent: each split folder holds a marker recording the generation parameters; a split is
    regenerated only when its marker is missing or differs. A split is generated in a temporary
    folder and renamed into place when complete, so an interrupted run leaves no partial split.

    Returns:
        ``root/fashion_seg`` (holding ``train/`` and ``val/``).
    """
    from upsample.core.datasets import load_fashion_mnist

    params = params or FashionSegParams()
    base = Path(root) / "fashion_seg"
    base.mkdir(parents=True, exist_ok=True)
    for split, num in (("train", num_train), ("val", num_val)):
        if num < 1:
            raise ValueError(f"num_{split} must be >= 1, got {num}")
        target = base / split
        expected = _marker_content(split, num, params)
        if _is_current(target, expected):
            continue
        garments, labels = load_fashion_mnist(SOURCE_SPLIT[split], root=fashion_mnist_root)
        staging = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=base))
        try:
            generate_split(staging, split, num, params, garments, labels)
            (staging / MARKER_NAME).write_text(json.dumps(expected, indent=2))
            if _is_current(target, expected):  # another process finished the same split first
                continue
            if target.exists():
                stale = Path(tempfile.mkdtemp(prefix=f".{split}.stale.", dir=base))
                os.replace(target, stale / split)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return base
