"""Unlabelled images as prediction reads them: those of a folder (LightningCLI prediction) and those
of a list of paths (folder inference's share of its inputs); upright RGB, an unreadable file
reported instead of raised."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from upsample.core.io import ImageReadError, list_images, read_image


class UnlabelledImageFolder(Dataset):
    """Every image file under ``root`` (recursive, sorted), read upright as RGB; files under
    ``exclude`` (an output folder inside the input folder) are left out.

    Item: ``{"image": uint8 (3, H, W) or None, "path": relative path (str), "error": reason or
    None}``; an unreadable file gives ``image=None`` and the reason instead of raising, so one bad
    file does not stop the others.
    """

    def __init__(self, root: str | Path, exclude: str | Path | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: input folder not found")
        excluded = Path(exclude).resolve() if exclude is not None else None
        self.files = [
            path
            for path in list_images(self.root)
            if excluded is None or not path.resolve().is_relative_to(excluded)
        ]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        relative = path.relative_to(self.root).as_posix()
        try:
            image = np.asarray(read_image(path, mode="RGB"))
        except ImageReadError as error:
            return {"image": None, "path": relative, "error": error.reason}
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return {"image": tensor, "path": relative, "error": None}


def collate_images(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate for LightningCLI prediction: a batch of one image (sizes differ).
    ``{"image": uint8 (1, 3, H, W), "path": [rel], "error": [reason or None]}``."""
    if len(items) != 1:
        raise ValueError("LightningCLI prediction reads one image per batch")
    item = items[0]
    image = item["image"].unsqueeze(0) if item["image"] is not None else None
    return {"image": image, "path": [item["path"]], "error": [item["error"]]}


class ImageFiles(Dataset):
    """The images at ``paths`` (folder inference's share of the inputs), read upright as RGB.

    Item: ``{"index": i, "image": uint8 (3, H, W) or None, "error": reason or None}``; an
    unreadable file gives ``image=None`` and the reason instead of raising.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            image = np.array(read_image(self.paths[index], mode="RGB"))
        except ImageReadError as error:
            return {"index": index, "image": None, "error": error.reason}
        # (3, H, W) as a view of the decoded (H, W, 3) pixels: no copy here, none for the overlay
        return {"index": index, "image": torch.from_numpy(image).permute(2, 0, 1), "error": None}
