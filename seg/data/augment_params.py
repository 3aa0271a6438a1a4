"""The training augmentation's random parameters, drawn per sample on the CPU.

``AugmentSpec`` is the recipe (``seg.data.transforms.train_transform``'s arguments). For the
augmentation on the training device (``seg.data.device_augment``) each sample's parameters are
drawn here from its own numpy generator (seeded from ``(seed, epoch, index)`` by the dataset), with
the distributions of the albumentations transforms they stand for, so that they are the same for
any number of workers and on any device. ``collate_params`` stacks them into small tensors and
lists, per operation, the samples it applies to (index tensors whose lengths the host knows, so
the device never has to be asked).

Geometry per sample: the image (height H, width W) is scaled to ``int(H * s)`` x ``int(W * s)``
(albumentations ``RandomScale``), placed at a random position in a crop-sized canvas where it is
smaller (``PadIfNeeded(position="random")``), cropped at a random position where it is larger
(``RandomCrop``), then mirrored (``HorizontalFlip``); ``offset`` is the crop's top-left corner in
the scaled image (negative where the canvas pads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seg.data.transforms import Augmentation, crop_shape, train_transform

#: ColorJitter's operations, in the numbering of its random order
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
#: ``road_photometric``: the probabilities of its transforms (see there)
ROAD_BRIGHTNESS_CONTRAST_P, ROAD_GAMMA_P, ROAD_HSV_P, ROAD_BLUR_OR_NOISE_P = 0.8, 0.3, 0.3, 0.2
ROAD_GAMMA_LIMIT = (80.0, 120.0)
ROAD_HUE_SHIFT = 5.0  # OpenCV hue units (2 degrees each)
ROAD_BLUR_SIZES = (3, 5)
ROAD_NOISE_STD = (0.01, 0.04)  # of 255
JITTER_P = 0.8
HFLIP_P = 0.5
#: the largest motion-blur kernel side: every sample's kernel is padded to it
KERNEL_SIDE = max(ROAD_BLUR_SIZES)
#: operations that apply to a subset of the samples (``groups`` of ``collate_params``)
GROUPS = (
    "brightness_contrast",
    "gamma",
    "hsv",
    "blur",
    "noise",
    *(f"jitter{position}_{op}" for position in range(4) for op in JITTER_OPS),
)


@dataclass(frozen=True)
class AugmentSpec:
    """The training augmentation: random scale in ``scale_range``, pad and crop to ``crop``
    ((height, width); ``None``: no scaling or cropping), horizontal flips, and photometric
    changes: ``augmentation="default"`` a colour jitter of strength ``color_jitter``, ``"road"``
    ``road_photometric(color_jitter)``; ``color_jitter=0`` none."""

    crop: tuple[int, int] | None
    scale_range: tuple[float, float] = (0.75, 1.25)
    hflip: bool = True
    color_jitter: float = 0.2
    augmentation: Augmentation = "default"

    @classmethod
    def create(
        cls,
        crop_size: int | Sequence[int] | None,
        scale_range: Sequence[float] = (0.75, 1.25),
        hflip: bool = True,
        color_jitter: float = 0.2,
        augmentation: Augmentation = "default",
    ) -> AugmentSpec:
        """The spec of ``train_transform``'s arguments (validated by it)."""
        spec = cls(
            crop_shape(crop_size),
            (float(scale_range[0]), float(scale_range[1])),
            bool(hflip),
            float(color_jitter),
            augmentation,
        )
        spec.albumentations()  # raises ValueError for invalid arguments, naming them
        return spec

    def albumentations(self) -> Any:
        """The albumentations pipeline of this spec (the reference implementation)."""
        return train_transform(
            self.crop, self.scale_range, self.hflip, self.color_jitter, self.augmentation
        )

    @property
    def photometric(self) -> str:
        """``"none"``, ``"default"`` (colour jitter) or ``"road"``."""
        return "none" if self.color_jitter <= 0 else self.augmentation

    @property
    def scales(self) -> bool:
        return self.crop is not None and self.scale_range != (1.0, 1.0)


def _crop_offset(rng: np.random.Generator, scaled: int, crop: int) -> int:
    """The crop's first row (or column) in the scaled image: ``PadIfNeeded(position="random")``
    places a smaller image at ``randint(0, crop - scaled)`` (a negative offset here), a larger one
    is cut at ``int((scaled - crop + 1) * u)`` (``RandomCrop``)."""
    if scaled < crop:
        return -int(rng.integers(0, crop - scaled + 1))
    return int((scaled - crop + 1) * rng.random())


def motion_kernel(rng: np.random.Generator, size: int, side: int = KERNEL_SIDE) -> np.ndarray:
    """albumentations ``MotionBlur``'s kernel (a line of random angle, direction bias and
    shift, normalised to sum 1), centred in a ``side`` x ``side`` float32 array."""
    angle = math.radians(rng.uniform(0.0, 360.0))
    direction = float(np.clip(rng.uniform(-1.0, 1.0), -1.0, 1.0))
    half = size // 2
    start, end = float(-half), float(half)
    if direction < 0:
        end = half * (1 + direction)
    elif direction > 0:
        start = -half * (1 - direction)
    t = np.linspace(start, end, size)
    x = half + math.cos(angle) * t + rng.uniform(-1, 1) * half / 2
    y = half + math.sin(angle) * t + rng.uniform(-1, 1) * half / 2
    x = np.clip(np.round(x), 0, size - 1).astype(int)
    y = np.clip(np.round(y), 0, size - 1).astype(int)
    kernel = np.zeros((side, side), dtype=np.float32)
    border = (side - size) // 2
    kernel[border + y, border + x] = 1.0
    return kernel / kernel.sum()


def _identity_kernel() -> np.ndarray:
    kernel = np.zeros((KERNEL_SIDE, KERNEL_SIDE), dtype=np.float32)
    kernel[KERNEL_SIDE // 2, KERNEL_SIDE // 2] = 1.0
    return kernel


def draw_params(
    spec: AugmentSpec, rng: np.random.Generator, height: int, width: int
) -> dict[str, np.ndarray]:
    """One sample's parameters for an image of ``height`` x ``width``: every field below, with
    the identity where an operation is not drawn (so every sample has the same fields).

    Geometry (int64): ``source`` (H, W), ``scaled`` (int(H*s), int(W*s)), ``offset`` (crop
    top/left in the scaled image), ``extent`` (the output's valid size: the crop, or (H, W)
    without one), ``flip``. Photometric (float32 unless said): ``jitter`` (0/1), ``brightness``,
    ``contrast``, ``saturation``, ``hue`` (turns) and ``order`` (int64 (4,)) of ColorJitter;
    ``brightness_contrast`` (0/1), ``alpha``, ``beta`` (of 255), ``gamma_on``, ``gamma``,
    ``hsv_on``, ``hue_shift`` (turns), ``sat_shift`` (of 255), ``blur`` (0/1), ``kernel``
    (KERNEL_SIDE x KERNEL_SIDE), ``noise`` (0/1), ``noise_std`` (of 255), ``noise_seed`` (int64)
    of ``road_photometric``.
    """
    scale = rng.uniform(*spec.scale_range) if spec.scales else 1.0
    if spec.crop is None:
        scaled, offset, extent = (height, width), (0, 0), (height, width)
    else:
        scaled = (max(1, int(height * scale)), max(1, int(width * scale)))
        offset = tuple(_crop_offset(rng, scaled[axis], spec.crop[axis]) for axis in (0, 1))
        extent = spec.crop
    flip = spec.hflip and rng.random() < HFLIP_P
    params: dict[str, np.ndarray] = {
        "source": np.array((height, width), dtype=np.int64),
        "scaled": np.array(scaled, dtype=np.int64),
        "offset": np.array(offset, dtype=np.int64),
        "extent": np.array(extent, dtype=np.int64),
        "flip": np.array(int(flip), dtype=np.int64),
    }
    params.update(_draw_jitter(spec, rng) if spec.photometric == "default" else _no_jitter())
    params.update(_draw_road(spec, rng) if spec.photometric == "road" else _no_road())
    return params


def _floats(**values: float) -> dict[str, np.ndarray]:
    return {key: np.array(value, dtype=np.float32) for key, value in values.items()}


def _no_jitter() -> dict[str, np.ndarray]:
    return {
        "jitter": np.array(0, dtype=np.int64),
        **_floats(brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0),
        "order": np.arange(4, dtype=np.int64),
    }


def _draw_jitter(spec: AugmentSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``A.ColorJitter(b, b, b, min(b / 4, 0.5), p=0.8)``: factors uniform in
    [max(0, 1 - b), 1 + b], hue in turns uniform in [-h, h], the four in a random order."""
    if rng.random() >= JITTER_P:
        return _no_jitter()
    strength = spec.color_jitter
    low, high = max(0.0, 1.0 - strength), 1.0 + strength
    hue = min(strength / 4, 0.5)
    factors = _floats(
        brightness=rng.uniform(low, high),
        contrast=rng.uniform(low, high),
        saturation=rng.uniform(low, high),
        hue=rng.uniform(-hue, hue),
    )
    return {"jitter": np.array(1, dtype=np.int64), **factors, "order": rng.permutation(4)}


def _no_road() -> dict[str, np.ndarray]:
    flags = ("brightness_contrast", "gamma_on", "hsv_on", "blur", "noise", "noise_seed")
    return {
        **{key: np.array(0, dtype=np.int64) for key in flags},
        **_floats(alpha=1.0, beta=0.0, gamma=1.0, hue_shift=0.0, sat_shift=0.0, noise_std=0.0),
        "kernel": _identity_kernel(),
    }


def _draw_road(spec: AugmentSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``road_photometric(strength)``: brightness/contrast (p 0.8), gamma (p 0.3), hue and
    saturation (p 0.3), then motion blur or Gaussian noise (p 0.2, one of the two)."""
    params = _no_road()
    strength = spec.color_jitter
    if rng.random() < ROAD_BRIGHTNESS_CONTRAST_P:
        params["brightness_contrast"] = np.array(1, dtype=np.int64)
        params.update(
            _floats(
                alpha=1.0 + rng.uniform(-strength, strength),
                beta=rng.uniform(-strength, strength) * 255.0,
            )
        )
    if rng.random() < ROAD_GAMMA_P:
        params["gamma_on"] = np.array(1, dtype=np.int64)
        params.update(_floats(gamma=rng.uniform(*ROAD_GAMMA_LIMIT) / 100.0))
    if rng.random() < ROAD_HSV_P:
        saturation = round(80 * strength)
        params["hsv_on"] = np.array(1, dtype=np.int64)
        params.update(
            _floats(
                hue_shift=rng.uniform(-ROAD_HUE_SHIFT, ROAD_HUE_SHIFT) / 180.0,
                sat_shift=rng.uniform(-saturation, saturation),
            )
        )
    if rng.random() < ROAD_BLUR_OR_NOISE_P:
        if rng.random() < 0.5:
            params["blur"] = np.array(1, dtype=np.int64)
            params["kernel"] = motion_kernel(rng, int(rng.choice(ROAD_BLUR_SIZES)))
        else:
            params["noise"] = np.array(1, dtype=np.int64)
            params["noise_seed"] = np.array(rng.integers(0, 2**31), dtype=np.int64)
            params.update(_floats(noise_std=rng.uniform(*ROAD_NOISE_STD) * 255.0))
    return params


def source_region(params: dict[str, np.ndarray]) -> tuple[int, int, int, int]:
    """Rows and columns ``(top, bottom, left, right)`` of the source image that the sample's
    crop reads (bilinear and nearest-neighbour taps, one pixel to spare): only they need to
    travel to the device."""
    bounds = []
    for axis in (0, 1):
        source, scaled = int(params["source"][axis]), int(params["scaled"][axis])
        offset, extent = int(params["offset"][axis]), int(params["extent"][axis])
        first, last = max(0, offset), min(scaled, offset + extent) - 1
        ratio = source / scaled
        taps = []
        for position in (first, last):
            linear = min(max((position + 0.5) * ratio - 0.5, 0.0), source - 1.0)
            taps += [math.floor(linear), min(math.floor(linear) + 1, source - 1)]
            taps.append(min((2 * position + 1) * source // (2 * scaled), source - 1))
        bounds.append((max(0, min(taps) - 1), min(source, max(taps) + 2)))
    (top, bottom), (left, right) = bounds
    return top, bottom, left, right


def collate_params(samples: Sequence[dict[str, np.ndarray]]) -> dict[str, dict[str, Tensor]]:
    """Stack the samples' parameters: ``{"params": {field: (N, ...) tensor}, "groups": {op:
    int64 indices of the samples it applies to}}`` (see ``GROUPS``)."""
    stacked = {
        key: torch.from_numpy(np.stack([sample[key] for sample in samples])) for key in samples[0]
    }
    flags = {
        "brightness_contrast": stacked["brightness_contrast"],
        "gamma": stacked["gamma_on"],
        "hsv": stacked["hsv_on"],
        "blur": stacked["blur"],
        "noise": stacked["noise"],
    }
    jitter = stacked["jitter"].bool()
    for position in range(4):
        for number, op in enumerate(JITTER_OPS):
            flags[f"jitter{position}_{op}"] = jitter & (stacked["order"][:, position] == number)
    groups = {name: flag.bool().nonzero().flatten() for name, flag in flags.items()}
    return {"params": stacked, "groups": groups}
