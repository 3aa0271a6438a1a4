"""Data: fitting images to the model size, image folders with broken files, Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.dcgan.data import FittedImageFolder, GANDataModule, fit_images
from upsample.core.datasets import fashion_mnist_dir


def test_pad_keeps_small_images_unchanged_and_centred() -> None:
    images = torch.randint(1, 256, (2, 1, 28, 28), dtype=torch.uint8)
    padded = fit_images(images, 32, "pad")
    assert padded.shape == (2, 1, 32, 32)
    assert torch.equal(padded[:, :, 2:30, 2:30], images)
    assert padded[:, :, :2].sum() == 0 and padded[:, :, :, 30:].sum() == 0


def test_pad_shrinks_large_images_keeping_aspect_ratio() -> None:
    images = torch.full((1, 3, 40, 80), 200, dtype=torch.uint8)
    padded = fit_images(images, 32, "pad")
    assert padded.shape == (1, 3, 32, 32)
    rows = (padded[0, 0] > 0).any(dim=1).nonzero().flatten()
    assert len(rows) == 16 and rows[0] == 8  # 80x40 -> 32x16, centred vertically


@pytest.mark.parametrize("fit", ["crop", "stretch"])
def test_crop_and_stretch_sizes(fit: str) -> None:
    images = torch.randint(0, 256, (3, 47, 61), dtype=torch.uint8)
    assert fit_images(images, 64, fit).shape == (3, 64, 64)


def test_folder_dataset_is_recursive_and_in_range(image_folder: Path) -> None:
    dataset = FittedImageFolder(image_folder, size=32, channels=3, fit="crop")
    assert len(dataset) == 12
    item = dataset[0]
    assert item.shape == (3, 32, 32) and item.dtype == torch.float32
    assert float(item.min()) >= -1.0 and float(item.max()) <= 1.0
    assert FittedImageFolder(image_folder, size=32, channels=1)[0].shape == (1, 32, 32)


def test_folder_dataset_reports_and_skips_broken_files(image_folder: Path) -> None:
    (image_folder / "part0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (image_folder / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    with pytest.warns(UserWarning, match=r"broken\.png"):
        dataset = FittedImageFolder(image_folder, size=32)
    assert len(dataset) == 12
    assert [path.name for path, _ in dataset.skipped] == ["broken.png"]


def test_folder_without_images_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no readable image"):
        FittedImageFolder(tmp_path, size=32)
    with pytest.raises(FileNotFoundError, match="not found"):
        FittedImageFolder(tmp_path / "missing", size=32)


def test_folder_datamodule_batches_and_cache_key(image_folder: Path) -> None:
    datamodule = GANDataModule(
        "folder", str(image_folder), 32, 3, "crop", batch_size=4, num_workers=0
    )
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.shape == (4, 3, 32, 32)
    key = datamodule.val_dataset_key
    assert key.startswith("folder-") and key.endswith("-32px-3ch-crop-n12")
    small = GANDataModule("folder", str(image_folder), 32, 3, "crop", batch_size=20, num_workers=0)
    with pytest.raises(ValueError, match="fewer than data.batch_size"):
        small.train_dataloader()


def test_bad_datamodule_arguments() -> None:
    with pytest.raises(ValueError, match="data.root"):
        GANDataModule("folder")
    with pytest.raises(ValueError, match="channels"):
        GANDataModule("fashion", channels=2)


def _fashion_available() -> bool:
    try:
        fashion_mnist_dir(download=False)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST idx files not found locally")
def test_fashion_datamodule_subset_padding_and_channels() -> None:
    datamodule = GANDataModule(
        "fashion",
        image_size=32,
        channels=3,
        batch_size=8,
        num_workers=0,
        max_train_images=16,
        max_val_images=5,
    )
    assert len(datamodule.train_dataset) == 16 and len(datamodule.val_dataset) == 5
    raw = next(iter(datamodule.train_dataloader()))
    assert raw.dtype == torch.uint8  # a quarter of float32's bytes between processes
    batch = datamodule.on_after_batch_transfer(raw, 0)  # where Lightning put it: [-1, 1]
    torch.testing.assert_close(batch, raw.float() / 127.5 - 1)
    assert batch.shape == (8, 3, 32, 32)
    assert torch.equal(batch[:, 0], batch[:, 1])  # grey replicated
    assert float(batch[:, :, :2].max()) == -1.0  # padding is black
    assert datamodule.val_dataset_key == "fashion-test-32px-3ch-pad-n5"
