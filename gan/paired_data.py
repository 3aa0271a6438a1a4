"""Paired data for image-to-image translation (pix2pix): label maps (or any images) -> photos.

Layouts read as they are:

- ``camvid``: CamVid as prepared by the SegNet authors, ``<split>/`` photos with
  ``<split>annot/`` label maps of the same name (root itself or ``root/CamVid``);
- ``folder``: ``labels/`` + ``images/`` or ``A/`` + ``B/`` under the root, paired by relative
  path without suffix (``labels/x/y.png`` with ``images/x/y.jpg``).

How the generator's input is encoded (:class:`InputSpec`, stored in the model's hyperparameters so
that ``gan translate`` needs only the checkpoint): a label map (single-channel PNG of class
indices, or a palette PNG whose indices are the classes) becomes a one-hot map with one channel
per class plus a last channel for void (CamVid's value 11, a folder's ``void_values``, 255 by
default): void regions are marked as such, not left blank, so the generator paints them as it saw
them in the photos. An RGB input (``A/`` images) is scaled to [-1, 1]. Photos are RGB in [-1, 1].
Both are resized to ``image_size`` (label maps with nearest-neighbour, photos with antialiasing).
"""

from __future__ import annotations

import colorsys
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from common.camvid import CAMVID_PALETTE, CAMVID_VOID, CAMVID_VOID_COLOUR
from common.io import IMAGE_SUFFIXES, ImageReadError, read_image
from common.seeding import rank_seed, torch_seed
from gan.data import SplitDataModule, _is_readable, to_model_range

PairedFormat = Literal["camvid", "folder"]
InputKind = Literal["auto", "labels", "rgb"]
#: folder layouts: (input folder, photo folder, input kind when ``input: auto``)
FOLDER_LAYOUTS = (("labels", "images", "labels"), ("A", "B", "rgb"))


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
        height, width = self.image_size
        if self.kind == "rgb":
            image = TF.pil_to_tensor(read_image(path, "RGB"))
            return to_model_range(TF.resize(image, [height, width], antialias=True))
        indices = torch.from_numpy(self.class_indices(read_label_values(path), path))
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
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                raise ImageReadError(
                    path,
                    f"a label map must be single-channel class indices (or a palette image), "
                    f"got mode {image.mode}",
                )
            return np.asarray(image)
    except ImageReadError:
        raise
    except FileNotFoundError as error:
        raise ImageReadError(path, "file not found") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageReadError(path, f"cannot decode image ({error})") from error


# ------------------------------------------------------------------------------------ pairs
def _stems(folder: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(folder).with_suffix("")): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def camvid_base(root: str | Path) -> Path:
    """The CamVid folder: ``root`` or ``root/CamVid``, holding ``train/`` and ``trainannot/``."""
    root = Path(root)
    for candidate in (root, root / "CamVid"):
        if (candidate / "train").is_dir() and (candidate / "trainannot").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{root}: no CamVid layout (train/ and trainannot/) here or in {root}/CamVid"
    )


def folder_layout(root: str | Path) -> tuple[Path, Path, str]:
    """(input folder, photo folder, default input kind) of a paired folder."""
    root = Path(root)
    for inputs, photos, kind in FOLDER_LAYOUTS:
        if (root / inputs).is_dir() and (root / photos).is_dir():
            return root / inputs, root / photos, kind
    raise FileNotFoundError(
        f"{root}: expected a paired folder with labels/ + images/ or A/ + B/ sub-folders"
    )


def find_pairs(input_dir: Path, photo_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Readable (input, photo) pairs matched by relative path without suffix, and the reasons
    for every file left out (no partner, unreadable)."""
    inputs, photos = _stems(input_dir), _stems(photo_dir)
    pairs, skipped = [], []
    for stem, source in inputs.items():
        if stem not in photos:
            skipped.append(f"{source} (no photo {photo_dir / stem}.*)")
            continue
        reasons = [f"{p} ({r})" for p in (source, photos[stem]) if (r := _is_readable(p))]
        if reasons:
            skipped.extend(reasons)
        else:
            pairs.append((source, photos[stem]))
    skipped += [f"{photo} (no input {input_dir / stem}.*)" for stem, photo in photos.items()
                if stem not in inputs]  # fmt: skip
    return pairs, skipped


class PairedDataset(Dataset):
    """(input, photo) pairs at the spec's size: ``(C, H, W)`` input and ``(3, H, W)`` photo in
    [-1, 1]. Decoded items are kept in memory (small at training resolutions)."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], spec: InputSpec) -> None:
        if not pairs:
            raise FileNotFoundError("no readable (input, photo) pairs found")
        self.pairs, self.spec = list(pairs), spec
        self._cache: dict[int, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if index not in self._cache:
            source, photo = self.pairs[index]
            image = TF.pil_to_tensor(read_image(photo, "RGB"))
            image = TF.resize(image, list(self.spec.image_size), antialias=True)
            self._cache[index] = (self.spec.load(source), to_model_range(image))
        return self._cache[index]

    def fingerprint(self) -> str:
        """Hash of the file list with sizes and modification times (cache keys)."""
        digest = hashlib.sha1()
        for pair in self.pairs:
            for path in pair:
                stat = path.stat()
                digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]


class PairedDataModule(SplitDataModule):
    """Paired training and validation data for ``Pix2PixModule``: batches ``(inputs, photos)``.

    Args:
        format: ``camvid`` or ``folder`` (see the module docstring).
        root: the CamVid folder, or the paired training folder.
        val_root: the paired validation folder (``folder``; default: the training folder).
        val_split: CamVid's split for validation, sample grids and FID: ``val`` or ``test``.
        input: ``labels`` (one-hot label maps), ``rgb`` or ``auto`` (labels for CamVid and
            ``labels/``, rgb for ``A/``).
        num_classes: classes of a folder's label maps (CamVid: 11).
        void_values: raw label values that are void (folder default [255]; CamVid 11).
        palette: colours of a folder's classes in pictures (default: distinct hues).
        image_size: training resolution [height, width] (or one side for squares).
        batch_size / num_workers: of the loaders (the validation batch size too).
        hflip: mirror training pairs at random.
        jitter: random zoom of training pairs up to this factor, cropped back to the size
            (the paper's "resize to 286, crop 256" is 1.12; 1 turns it off).
        max_train_images / max_val_images: keep only the first N pairs (quick runs, tests).
        seed: seeds the shuffling and the augmentation (per step and rank: a resumed run sees
            the same pairs, mirrored and zoomed alike).
    """

    def __init__(
        self,
        format: PairedFormat = "camvid",
        root: str | None = None,
        val_root: str | None = None,
        val_split: Literal["val", "test"] = "val",
        input: InputKind = "auto",
        num_classes: int | None = None,
        void_values: list[int] | None = None,
        palette: list[list[int]] | None = None,
        image_size: int | list[int] = (96, 128),
        batch_size: int = 8,
        num_workers: int = 2,
        hflip: bool = True,
        jitter: float = 1.12,
        max_train_images: int | None = None,
        max_val_images: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.item_name = "pairs"
        if format not in ("camvid", "folder"):
            raise ValueError(f"data.format must be 'camvid' or 'folder', got {format!r}")
        if root is None:
            raise ValueError(f"data.root is required: the {format} folder")
        if input not in ("auto", "labels", "rgb"):
            raise ValueError(f"data.input must be 'auto', 'labels' or 'rgb', got {input!r}")
        if jitter < 1.0:
            raise ValueError(f"data.jitter must be >= 1 (1: no zoom), got {jitter}")
        size = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
        self.format, self.root, self.val_root, self.val_split = format, root, val_root, val_split
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.hflip, self.jitter = hflip, jitter
        self.max_train_images, self.max_val_images = max_train_images, max_val_images
        if format == "camvid":
            if input == "rgb" or num_classes not in (None, len(CAMVID_PALETTE)):
                raise ValueError("data.format camvid has label-map input with 11 classes")
            self.input_spec = camvid_spec(size)
        else:
            kind = folder_layout(root)[2] if input == "auto" else input
            if kind == "labels" and num_classes is None:
                raise ValueError(f"{root}: label-map input needs data.num_classes")
            self.input_spec = InputSpec(
                kind,
                tuple(size),
                num_classes=num_classes or 0,
                void_values=tuple(void_values if void_values is not None else (255,)),
                palette=tuple(tuple(c) for c in palette or ()),
            )
        self._datasets: dict[str, PairedDataset] = {}

    # -------------------------------------------------------------------------------- datasets
    def _pairs(self, split: str) -> list[tuple[Path, Path]]:
        if self.format == "camvid":
            base = camvid_base(self.root)
            pairs, skipped = find_pairs(base / f"{split}annot", base / split)
        else:
            folder = self.root if split == "train" or self.val_root is None else self.val_root
            input_dir, photo_dir, _ = folder_layout(folder)
            pairs, skipped = find_pairs(input_dir, photo_dir)
        if skipped:
            more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
            warnings.warn(
                f"skipped {len(skipped)} file(s): {'; '.join(skipped[:20])}{more}", stacklevel=3
            )
        return pairs

    def dataset(self, split: str) -> PairedDataset:
        """The dataset of ``train``, ``val`` or ``test`` (CamVid) before any limit."""
        key = split
        if self.format == "folder":  # validation on the training folder: the same dataset
            key = "train" if split == "train" or self.val_root is None else "val"
        if key not in self._datasets:
            self._datasets[key] = PairedDataset(self._pairs(key), self.input_spec)
        return self._datasets[key]

    @property
    def val_dataset_key(self) -> str:
        """Identifies the validation photos (cache key for FID real features)."""
        split = self.val_split if self.format == "camvid" else "val"
        source = f"{self.format}-{self.dataset(self.val_split).fingerprint()}"
        height, width = self.input_spec.image_size
        return f"paired-{source}-{split}-{height}x{width}-n{len(self.val_dataset)}"

    def sample_batch(self, num: int) -> tuple[Tensor, Tensor]:
        """``num`` validation pairs spread evenly over the split, stacked (the fixed sample grid;
        neighbouring CamVid frames look alike)."""
        dataset = self.val_dataset
        indices = np.linspace(0, len(dataset) - 1, min(num, len(dataset))).round().astype(int)
        items = [dataset[int(i)] for i in indices]
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    # -------------------------------------------------------------------------- augmentation
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        if trainer is None or not trainer.training or (not self.hflip and self.jitter == 1.0):
            return batch
        step = trainer.fit_loop.total_batch_idx
        seed = torch_seed(rank_seed(self.seed, step, trainer.global_rank))
        generator = torch.Generator().manual_seed(seed)
        labels = self.input_spec.kind == "labels"
        return augment_pairs(*batch, generator, self.hflip, self.jitter, labels)


def augment_pairs(
    inputs: Tensor,
    photos: Tensor,
    generator: torch.Generator,
    hflip: bool,
    jitter: float,
    label_inputs: bool = True,
) -> tuple[Tensor, Tensor]:
    """Mirror and zoom each (input, photo) pair alike: a random horizontal flip, then a random
    zoom by up to ``jitter`` (one-hot label inputs nearest-neighbour, images bilinear) cropped
    back at a random place. Random numbers from ``generator`` only."""
    height, width = photos.shape[-2:]
    out_inputs, out_photos = [], []
    for a, b in zip(inputs, photos, strict=True):
        draws = torch.rand(4, generator=generator).tolist()
        if hflip and draws[0] < 0.5:
            a, b = a.flip(-1), b.flip(-1)
        scale = 1.0 + (jitter - 1.0) * draws[1]
        big = (round(height * scale), round(width * scale))
        if big != (height, width):
            top = int(draws[2] * (big[0] - height + 1))
            left = int(draws[3] * (big[1] - width + 1))
            if label_inputs:
                a = F.interpolate(a[None], size=big, mode="nearest-exact")[0]
            else:
                a = F.interpolate(a[None], size=big, mode="bilinear", align_corners=False)[0]
            b = F.interpolate(b[None], size=big, mode="bilinear", align_corners=False)[0]
            a = a[:, top : top + height, left : left + width]
            b = b[:, top : top + height, left : left + width]
        out_inputs.append(a)
        out_photos.append(b)
    return torch.stack(out_inputs), torch.stack(out_photos)
