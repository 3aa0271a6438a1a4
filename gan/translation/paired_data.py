"""What a pix2pix generator's input is (:class:`InputSpec`) and how label maps are read.

The spec is stored in the model's hyperparameters, so that ``gan translate`` needs only the
checkpoint. A label map (single-channel PNG of class indices, or a palette PNG whose indices are
the classes) becomes a one-hot map with one channel per class plus a last channel for void
(CamVid's value 11, a folder's ``void_values``, 255 by default): void regions are marked as such,
not left blank, so the generator paints them as it saw them in the photos. An RGB input (``A/``
images) is scaled to [-1, 1]. Both are resized to ``image_size`` (label maps with
nearest-neighbour, RGB with antialiasing). The paired folders and their data module are in
``gan.translation.paired_datamodule``.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from gan.core.data import to_model_range
from upsample.core.camvid import CAMVID_PALETTE, CAMVID_VOID, CAMVID_VOID_COLOUR
from upsample.core.io import ImageReadError, open_image, read_image

#: the data module's ``input`` choice: ``auto`` picks by layout
InputKind = Literal["auto", "labels", "rgb"]


class LabelMapError(ValueError):
    """A label map holds values that are neither a class nor void; the message names the file."""


def default_palette(num_classes: int) -> list[list[int]]:
    """Distinct saturated colours, one per class (hues spread by the golden ratio)."""
    colours = []
    for index in range(num_classes):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 0.55 + 0.4 * (index % 2))
        colours.append([round(red * 255), round(green * 255), round(blue * 255)])
    return colours


@dataclass(frozen=True)
class InputSpec:
    """What the generator's input is: ``kind`` ``labels`` (one-hot of ``num_classes`` classes plus
    a void channel; raw values in ``void_values`` are void) or ``rgb``; the training resolution
    ``image_size`` (height, width); ``palette`` (RGB per class) and ``void_colour`` draw label
    maps in pictures."""

    kind: Literal["labels", "rgb"]
    image_size: tuple[int, int]
    num_classes: int = 0
    void_values: tuple[int, ...] = (255,)
    palette: tuple[tuple[int, int, int], ...] = field(default=())
    void_colour: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.kind not in ("labels", "rgb"):
            raise ValueError(f"input kind must be 'labels' or 'rgb', got {self.kind!r}")
        size = tuple(int(v) for v in self.image_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"image_size must be [height, width], got {self.image_size!r}")
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "void_values", tuple(int(v) for v in self.void_values))
        if self.kind == "labels":
            if self.num_classes < 1:
                raise ValueError("label-map input needs num_classes >= 1")
            classes = set(range(self.num_classes)) & set(self.void_values)
            if classes:
                raise ValueError(f"void_values {sorted(classes)} are class indices")
            palette = self.palette or default_palette(self.num_classes)
            if len(palette) != self.num_classes:
                raise ValueError(
                    f"palette has {len(palette)} colours for {self.num_classes} classes"
                )
            object.__setattr__(self, "palette", tuple(tuple(int(c) for c in p) for p in palette))

    @property
    def channels(self) -> int:
        """Input channels of the generator."""
        return self.num_classes + 1 if self.kind == "labels" else 3

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (hyperparameters, YAML)."""
        values = asdict(self)
        return {key: _plain(value) for key, value in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputSpec:
        return cls(**{key: _tuples(value) for key, value in values.items()})

    # -------------------------------------------------------------------------------- encoding
    def class_indices(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        """Raw label values (H, W) -> int64 classes 0..K-1 with K = void.

        Raises:
            LabelMapError: naming ``path`` and the values that are neither a class nor void.
        """
        raw = np.asarray(raw).astype(np.int64)
        void = np.isin(raw, self.void_values)
        bad = ~void & ((raw < 0) | (raw >= self.num_classes))
        if bad.any():
            values = ", ".join(str(v) for v in np.unique(raw[bad])[:10])
            raise LabelMapError(
                f"{path}: label values {values} are neither classes 0..{self.num_classes - 1} "
                f"nor void {list(self.void_values)}"
            )
        return np.where(void, self.num_classes, raw)

    def encode_labels(self, indices: Tensor) -> Tensor:
        """Class indices (..., H, W) with K = void -> one-hot float (..., K + 1, H, W)."""
        one_hot = F.one_hot(indices.long(), self.num_classes + 1)
        return one_hot.movedim(-1, -3).float()

    def load(self, path: str | Path) -> Tensor:
        """The generator input of one file at ``image_size``: (C, H, W) float.

        Raises:
            ImageReadError: the file is unreadable; LabelMapError: bad label values.
        """
        if self.kind == "rgb":
            return self.encode_image(TF.pil_to_tensor(read_image(path, "RGB")))
        return self.encode_label_values(read_label_values(path), path)

    def encode_image(self, image: Tensor) -> Tensor:
        """The generator input of an RGB input image uint8 (3, H, W): (3, H', W') in [-1, 1] at
        ``image_size``, resized with antialiasing."""
        return to_model_range(TF.resize(image, list(self.image_size), antialias=True))

    def encode_label_values(self, raw: np.ndarray, path: str | Path) -> Tensor:
        """The generator input of a label map's raw values (H, W) (a file's, or a map painted
        in the app): (K + 1, H', W') one-hot at ``image_size``, resized with nearest-neighbour.

        Raises:
            LabelMapError: naming ``path`` and the values that are neither a class nor void.
        """
        height, width = self.image_size
        indices = torch.from_numpy(self.class_indices(raw, path))
        indices = TF.resize(
            indices[None], [height, width], interpolation=InterpolationMode.NEAREST_EXACT
        )[0]
        return self.encode_labels(indices)

    def to_rgb(self, inputs: Tensor) -> Tensor:
        """Generator inputs (N, C, H, W) -> pictures (N, 3, H, W) in [0, 1]: label maps in the
        palette's colours (void in ``void_colour``), RGB inputs as they are."""
        if self.kind == "rgb":
            return inputs.float().add(1).div(2).clamp(0, 1)
        colours = torch.tensor([*self.palette, self.void_colour], dtype=torch.float32) / 255
        return colours.to(inputs.device)[inputs.argmax(dim=1)].permute(0, 3, 1, 2)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def draws_camvid(spec: InputSpec) -> bool:
    """Whether ``spec`` draws its label maps in CamVid's class colours."""
    return spec.palette == tuple(CAMVID_PALETTE)


def camvid_spec(image_size: Sequence[int]) -> InputSpec:
    """CamVid label maps: 11 classes, 11 = void (black in pictures)."""
    return InputSpec(
        "labels",
        tuple(image_size),
        num_classes=len(CAMVID_PALETTE),
        void_values=(CAMVID_VOID,),
        palette=CAMVID_PALETTE,
        void_colour=CAMVID_VOID_COLOUR,
    )


def read_label_values(path: str | Path) -> np.ndarray:
    """The raw values (H, W) of a single-channel label map (8/16-bit grey, or a palette image's
    indices).

    Raises:
        ImageReadError: naming the file, when it is unreadable or has colour channels.
    """
    path = Path(path)
    try:
        with open_image(path) as image:
            if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                raise ImageReadError(
                    path,
                    f"a label map must be single-channel class indices (or a palette image), "
                    f"got mode {image.mode}",
                )
            image.load()
            return np.asarray(image)
    except ImageReadError:
        raise
    except FileNotFoundError as error:
        raise ImageReadError(path, "file not found") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageReadError(path, f"cannot decode image ({error})") from error
