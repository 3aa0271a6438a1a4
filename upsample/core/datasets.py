"""Locate and read the MNIST-family idx files, local copies first.

Fashion-MNIST is looked up, in order, in an explicit folder, ``$FASHION_MNIST_DIR``, the Debian
package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) and
``<root>/FashionMNIST/raw`` (torchvision's layout). Only when none holds the files is
torchvision's download tried, which needs internet.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Split = Literal["train", "test"]

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATA_ROOT = Path("data")

_PREFIX = {"train": "train", "test": "t10k"}


def _idx_names(split: Split) -> tuple[str, str]:
    prefix = _PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _holds_idx_files(folder: Path) -> bool:
    names = [*_idx_names("train"), *_idx_names("test")]
    return all(_find_idx(folder, name) is not None for name in names)


def _find_idx(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class _IdxDataset:
    """Where one MNIST-family dataset may be found on disk and how to fetch it."""

    title: str  # for messages
    torchvision_name: str  # torchvision class and folder name
    env_var: str
    system_dirs: tuple[Path, ...]
    hint: str


FASHION_MNIST = _IdxDataset(
    "Fashion-MNIST",
    "FashionMNIST",
    "FASHION_MNIST_DIR",
    (DEBIAN_FASHION_MNIST_DIR,),
    "Install the Debian package dataset-fashion-mnist or set FASHION_MNIST_DIR to a folder with "
    "train-images-idx3-ubyte.gz etc.",
)
MNIST = _IdxDataset(
    "MNIST", "MNIST", "MNIST_DIR", (), "Set MNIST_DIR to a folder with the MNIST idx files."
)


def _dataset_dir(spec: _IdxDataset, root: str | Path | None, download: bool) -> Path:
    """Search ``root`` (as is and in torchvision's layout), ``$env_var``, the system folders and
    ``data/``; download with torchvision as the last resort."""
    raw = Path(spec.torchvision_name) / "raw"
    candidates: list[Path] = []
    if root is not None:
        candidates += [Path(root), Path(root) / raw]
    if env := os.environ.get(spec.env_var):
        candidates.append(Path(env))
    candidates += list(spec.system_dirs)
    if root is None:
        candidates.append(DEFAULT_DATA_ROOT / raw)
    for folder in candidates:
        if _holds_idx_files(folder):
            return folder
    searched = ", ".join(str(c) for c in candidates)
    if not download:
        raise FileNotFoundError(f"{spec.title} idx files not found in {searched}. {spec.hint}")
    target = Path(root) if root is not None else DEFAULT_DATA_ROOT
    try:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, spec.torchvision_name)
        for train in (True, False):
            dataset_class(str(target), train=train, download=True)
    except Exception as error:  # network errors come in many types
        raise FileNotFoundError(
            f"{spec.title} idx files not found in {searched}, and the download into {target} "
            f"failed ({error}). {spec.hint}"
        ) from error
    return target / raw


def fashion_mnist_dir(root: str | Path | None = None, download: bool = True) -> Path:
    """Return a folder holding the four Fashion-MNIST idx files (``.gz`` or uncompressed).

    Args:
        root: a folder given by the user: searched first, as is and as ``root/FashionMNIST/raw``;
            also where torchvision downloads to when no local copy exists.
        download: allow torchvision's download as the last resort.

    Raises:
        FileNotFoundError: naming every folder searched, when no copy is found and the download
            is disabled or fails.
    """
    return _dataset_dir(FASHION_MNIST, root, download)


def mnist_dir(root: str | Path | None = None, download: bool = True) -> Path:
    """Like ``fashion_mnist_dir``, for MNIST (``$MNIST_DIR``; torchvision folder ``MNIST``)."""
    return _dataset_dir(MNIST, root, download)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (optionally gzip-compressed) into a numpy array.

    Returns:
        uint8 array of shape (N, H, W) for images or (N,) for labels.

    Raises:
        ValueError: naming the file when the header or the size does not match the idx format.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (header {data[:4]!r})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: header promises {expected} values of shape {shape}, "
            f"file holds {len(data) - offset}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _load_idx_pair(folder: Path, split: Split) -> tuple[np.ndarray, np.ndarray]:
    image_name, label_name = _idx_names(split)
    image_path, label_path = _find_idx(folder, image_name), _find_idx(folder, label_name)
    if image_path is None or label_path is None:
        raise FileNotFoundError(f"{folder}: missing {image_name}(.gz) or {label_name}(.gz)")
    images = read_idx(image_path)
    labels = read_idx(label_path).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(
            f"{image_path}: {len(images)} images but {label_path}: {len(labels)} labels"
        )
    return images, labels


def _load_split(
    spec: _IdxDataset, split: Split, root: str | Path | None, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _load_idx_pair(_dataset_dir(spec, root, download), split)


def load_fashion_mnist(
    split: Split, root: str | Path | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load a Fashion-MNIST split, local copies first (see ``fashion_mnist_dir``).

    Returns:
        images: uint8 (N, 28, 28); labels: int64 (N,) in [0, 9].
    """
    return _load_split(FASHION_MNIST, split, root, download)


def load_mnist(
    split: Split, root: str | Path | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Like ``load_fashion_mnist``, for MNIST (see ``mnist_dir``)."""
    return _load_split(MNIST, split, root, download)
