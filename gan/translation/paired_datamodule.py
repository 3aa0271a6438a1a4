"""Paired data for image-to-image translation (pix2pix): label maps (or any images) -> photos.

Layouts read as they are:

- ``camvid``: CamVid as prepared by the SegNet authors, ``<split>/`` photos with
  ``<split>annot/`` label maps of the same name (root itself or ``root/CamVid``);
- ``folder``: ``labels/`` + ``images/`` or ``A/`` + ``B/`` under the root, paired by relative
  path without suffix (``labels/x/y.png`` with ``images/x/y.jpg``).

The generator's input is encoded as ``gan.translation.paired_data.InputSpec`` says; photos are RGB
in [-1, 1], resized to ``image_size`` with antialiasing.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from gan.core.data import SplitDataModule, to_model_range, unreadable_reason
from gan.translation.paired_data import InputKind, InputSpec, camvid_spec
from upsample.core.camvid import CAMVID_PALETTE, camvid_base
from upsample.core.io import IMAGE_SUFFIXES, read_image
from upsample.core.seeding import rank_seed, torch_seed

PairedFormat = Literal["camvid", "folder"]
#: folder layouts: (input folder, photo folder, input kind when ``input: auto``)
FOLDER_LAYOUTS = (("labels", "images", "labels"), ("A", "B", "rgb"))


# ------------------------------------------------------------------------------------ pairs
def _stems(folder: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(folder).with_suffix("")): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


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
        reasons = [f"{p} ({r})" for p in (source, photos[stem]) if (r := unreadable_reason(p))]
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

    item_name = "pairs"  # in messages

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
        super().__init__(batch_size, num_workers, val_split, max_train_images, max_val_images, seed)
        if format not in ("camvid", "folder"):
            raise ValueError(f"data.format must be 'camvid' or 'folder', got {format!r}")
        if root is None:
            raise ValueError(f"data.root is required: the {format} folder")
        if input not in ("auto", "labels", "rgb"):
            raise ValueError(f"data.input must be 'auto', 'labels' or 'rgb', got {input!r}")
        if jitter < 1.0:
            raise ValueError(f"data.jitter must be >= 1 (1: no zoom), got {jitter}")
        size = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
        self.format, self.root, self.val_root = format, root, val_root
        self.hflip, self.jitter = hflip, jitter
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
