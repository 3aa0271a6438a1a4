"""upsample.core.datasets: idx parsing and local-first lookup."""

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from upsample.core.datasets import FASHION_MNIST, fashion_mnist_dir, load_fashion_mnist, read_idx


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion(folder: Path, n: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.arange(n * 4).reshape(n, 2, 2))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_read_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), array)


def test_read_idx_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(ValueError, match="short: header promises 10 values"):
        read_idx(path)


def test_explicit_root_and_env_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_fashion(tmp_path / "mine")
    assert fashion_mnist_dir(tmp_path / "mine", download=False) == tmp_path / "mine"
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "mine"))
    images, labels = load_fashion_mnist("test", download=False)
    assert images.shape == (3, 2, 2) and labels.dtype == np.int64


def test_missing_files_error_lists_searched_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_system_copy = dataclasses.replace(FASHION_MNIST, system_dirs=(tmp_path / "none",))
    monkeypatch.setattr("upsample.core.datasets.FASHION_MNIST", no_system_copy)
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fashion_mnist_dir(tmp_path / "empty", download=False)


def test_real_fashion_mnist_when_installed() -> None:
    try:
        images, labels = load_fashion_mnist("test", download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed locally (Debian package dataset-fashion-mnist)")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert sorted(np.bincount(labels).tolist()) == [1000] * 10
