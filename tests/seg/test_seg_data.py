"""Fashion-MNIST-Seg generation, folder/VOC readers, bad-data errors, the data module."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import seg.data.fashion_seg as fashion_seg
from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError, SegmentationDataset, pad_collate
from seg.data.fashion_seg import FashionSegParams, prepare_fashion_seg, render_canvas
from seg.data.pairs import read_mask
from seg.data.sources.folder import find_folder_pairs
from seg.data.sources.voc import find_voc_pairs
from tests.seg.helpers import seeded_folder_data, write_folder_split

SMALL = FashionSegParams(canvas_size=48, seed=3)


def fake_fashion_mnist(calls: list[str]):
    """Stand-in for ``load_fashion_mnist`` that records which split was asked for and encodes
    the split in the garments (train: filled squares, test: filled discs) and labels."""

    def load(split: str, root: object = None) -> tuple[np.ndarray, np.ndarray]:
        calls.append(split)
        yy, xx = np.mgrid[:28, :28]
        shape = (np.abs(yy - 14) < 10) & (np.abs(xx - 14) < 10)
        if split == "test":
            shape = (yy - 14) ** 2 + (xx - 14) ** 2 < 100
        garments = np.repeat((shape * 200).astype(np.uint8)[None], 10, axis=0)
        labels = np.arange(10) if split == "train" else np.full(10, 9)
        return garments, labels

    return load


def test_render_canvas_labels_garment_pixels() -> None:
    rng = np.random.default_rng(0)
    garments = np.zeros((1, 28, 28), dtype=np.uint8)
    garments[0, 4:24, 4:24] = 255
    image, mask = render_canvas(rng, garments, np.array([6]), SMALL)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 7}  # class 6 -> label 7, background 0
    # labelled pixels are visibly different from the dark background
    assert image[mask == 7].mean() > image[mask == 0].mean() + 40


def test_generation_seeded_idempotent_and_split_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr("upsample.core.datasets.load_fashion_mnist", fake_fashion_mnist(calls))
    base = prepare_fashion_seg(tmp_path / "a", num_train=4, num_val=3, params=SMALL)
    assert calls == ["train", "test"]  # train canvases from train, val canvases from test
    train_labels = set().union(
        *(np.unique(read_mask(p, 11)) for p in (base / "train/masks").iterdir())
    )
    val_labels = set().union(*(np.unique(read_mask(p, 11)) for p in (base / "val/masks").iterdir()))
    assert val_labels <= {0, 10}  # the fake test split holds only class 9
    assert len(train_labels - {0, 10}) > 0
    assert len(list((base / "train/images").glob("*.png"))) == 4
    assert len(list((base / "val/images").glob("*.png"))) == 3
    marker = json.loads((base / "train" / fashion_seg.MARKER_NAME).read_text())
    assert marker["source_split"] == "train" and marker["num"] == 4 and marker["canvas_size"] == 48

    prepare_fashion_seg(tmp_path / "a", num_train=4, num_val=3, params=SMALL)
    assert calls == ["train", "test"]  # nothing regenerated

    other = prepare_fashion_seg(tmp_path / "b", num_train=4, num_val=3, params=SMALL)
    for name in ("train/images/000002.png", "val/masks/000001.png"):
        assert (base / name).read_bytes() == (other / name).read_bytes()  # seeded

    prepare_fashion_seg(tmp_path / "a", num_train=5, num_val=3, params=SMALL)
    assert calls[-1] == "train" and len(calls) == 5  # only the changed split is regenerated
    assert len(list((base / "train/images").glob("*.png"))) == 5
    assert not [p for p in base.iterdir() if p.name.startswith(".")]  # no staging left


def test_folder_pairs_and_dataset_items(folder_root: Path) -> None:
    pairs = find_folder_pairs(folder_root / "train")
    assert len(pairs) == 6 and pairs[0].name == "000"
    item = SegmentationDataset(pairs, num_classes=3)[0]
    assert item["image"].shape == (3, 40, 48) and item["image"].dtype == torch.uint8
    assert item["mask"].shape == (40, 48) and int(item["mask"].max()) < 3


def test_voc_pairs_accept_parent_folders(voc_root: Path) -> None:
    assert len(find_voc_pairs(voc_root, "train")) == 4
    assert len(find_voc_pairs(voc_root / "VOCdevkit" / "VOC2012", "val")) == 3


# --- bad data: every error names the file ------------------------------------------------


def test_mask_value_outside_classes(folder_root: Path) -> None:
    bad = folder_root / "train" / "masks" / "001.png"
    mask = np.zeros((40, 48), dtype=np.uint8)
    mask[0, :3] = [7, 9, 255]
    Image.fromarray(mask).save(bad)
    dataset = SegmentationDataset(find_folder_pairs(folder_root / "train"), num_classes=3)
    with pytest.raises(SegmentationDataError, match=r"001\.png: mask values 7, 9 are outside"):
        dataset[1]


def test_image_and_mask_sizes_differ(folder_root: Path) -> None:
    Image.fromarray(np.zeros((30, 48), dtype=np.uint8)).save(folder_root / "val/masks/002.png")
    dataset = SegmentationDataset(find_folder_pairs(folder_root / "val"), num_classes=3)
    with pytest.raises(SegmentationDataError, match=r"images/002\.png: image size 48x40 differs"):
        dataset[2]


def test_image_without_mask(folder_root: Path) -> None:
    (folder_root / "train/masks/003.png").unlink()
    with pytest.raises(SegmentationDataError, match=r"003\.png: image has no mask"):
        find_folder_pairs(folder_root / "train")


def test_unreadable_image_and_mask(folder_root: Path) -> None:
    (folder_root / "train/images/004.png").write_bytes(b"not a png")
    (folder_root / "train/masks/005.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    dataset = SegmentationDataset(find_folder_pairs(folder_root / "train"), num_classes=3)
    with pytest.raises(SegmentationDataError, match=r"images/004\.png: unreadable image"):
        dataset[4]
    with pytest.raises(SegmentationDataError, match=r"masks/005\.png: unreadable mask"):
        dataset[5]


def test_colour_mask_rejected(folder_root: Path) -> None:
    Image.new("RGB", (48, 40)).save(folder_root / "train/masks/000.png")
    with pytest.raises(SegmentationDataError, match=r"masks/000\.png: mask has mode RGB"):
        read_mask(folder_root / "train/masks/000.png", 3)


def test_empty_datasets(tmp_path: Path, voc_root: Path) -> None:
    (tmp_path / "empty/images").mkdir(parents=True)
    (tmp_path / "empty/masks").mkdir(parents=True)
    with pytest.raises(SegmentationDataError, match=r"empty/images: empty dataset"):
        find_folder_pairs(tmp_path / "empty")
    with pytest.raises(SegmentationDataError, match=r"missing/images: folder not found"):
        find_folder_pairs(tmp_path / "missing")
    (voc_root / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").write_text("\n")
    with pytest.raises(SegmentationDataError, match=r"val\.txt: empty dataset"):
        find_voc_pairs(voc_root, "val")


def test_voc_listed_image_missing(voc_root: Path) -> None:
    (voc_root / "VOCdevkit/VOC2012/SegmentationClass/2007_train001.png").unlink()
    with pytest.raises(SegmentationDataError, match=r"2007_train001\.jpg: image has no mask"):
        find_voc_pairs(voc_root, "train")


# --- the data module ----------------------------------------------------------------------


def test_datamodule_folder_batches(folder_root: Path) -> None:
    data = SegDataModule(
        format="folder",
        root=str(folder_root),
        num_classes=3,
        batch_size=4,
        num_workers=0,
        crop_size=32,
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.uint8
    assert batch["mask"].shape == (4, 32, 32)
    values = set(batch["mask"].unique().tolist())
    assert values <= {0, 1, 2, 255}
    val_batch = next(iter(data.val_dataloader()))
    assert val_batch["image"].shape == (3, 3, 40, 48)  # validation is not transformed
    assert len(data.train_dataloader()) == 1  # 6 images, batch 4: the ragged batch is dropped


def augmenting_loader(folder_root: Path, workers: int) -> torch.utils.data.DataLoader:
    """The training loader of a folder dataset with random crops (seeded)."""
    return seeded_folder_data(folder_root, workers).train_dataloader()


def test_augmentation_reproducible_per_epoch_and_index(folder_root: Path) -> None:
    def first_batch(epoch: int, workers: int) -> torch.Tensor:
        loader = augmenting_loader(folder_root, workers)
        loader.sampler.set_epoch(epoch)
        return next(iter(loader))["image"]

    assert torch.equal(first_batch(0, 0), first_batch(0, 2))
    assert not torch.equal(first_batch(0, 0), first_batch(1, 0))


def test_persistent_workers_augment_with_each_epochs_seeds(folder_root: Path) -> None:
    """Workers that live across epochs never see the main process's ``set_epoch`` on their copy
    of the dataset; the sampler's (epoch, index) keys must still give every epoch its own
    augmentations, the same as a fresh loader without workers."""

    persistent = augmenting_loader(folder_root, 2)
    assert persistent.persistent_workers
    epochs = []
    for epoch in range(3):
        persistent.sampler.set_epoch(epoch)
        epochs.append([batch["image"] for batch in persistent])
        reference = augmenting_loader(folder_root, 0)
        reference.sampler.set_epoch(epoch)
        expected = [batch["image"] for batch in reference]
        assert all(torch.equal(a, b) for a, b in zip(epochs[-1], expected, strict=True))
    assert not torch.equal(epochs[1][0], epochs[2][0])


def test_voc_datamodule_pads_val_batches(voc_root: Path) -> None:
    data = SegDataModule(format="voc", root=str(voc_root), batch_size=3, num_workers=0)
    assert data.num_classes == 21 and data.class_names[15] == "person"
    data.setup("validate")
    batch = next(iter(data.val_dataloader()))
    assert batch["image"].shape == (3, 3, 44, 44)
    assert (batch["mask"][0, :, 36:] == 255).all()  # a 44x36 image padded to 44 wide


def test_pad_collate_pads_mask_with_ignore() -> None:
    samples = [
        {"image": torch.ones(3, 2, 3, dtype=torch.uint8), "mask": torch.ones(2, 3), "name": "a"},
        {"image": torch.ones(3, 4, 1, dtype=torch.uint8), "mask": torch.ones(4, 1), "name": "b"},
    ]
    batch = pad_collate(samples)
    assert batch["image"].shape == (2, 3, 4, 3) and batch["name"] == ["a", "b"]
    assert batch["mask"][0, 2:].eq(255).all() and batch["mask"][1, :, 1:].eq(255).all()
    assert batch["image"][0, :, 2:].eq(0).all()


def test_datamodule_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs num_classes"):
        SegDataModule(format="folder", root=str(tmp_path))
    with pytest.raises(ValueError, match="has 11 classes"):
        SegDataModule(format="fashion", num_classes=5)
    data = SegDataModule(format="folder", root=str(tmp_path), num_classes=3)
    write_folder_split(tmp_path / "train", 2)
    with pytest.raises(SegmentationDataError, match="val/images: folder not found"):
        data.setup("fit")


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("num_classes: five", "num_classes", "an integer"),
        ("class_names: road", "class_names", "a list of names"),
        ("palette: [[0, 0]]", "palette", "a list of [r, g, b] colours"),
        ("ignore_values: 255", "ignore_values", "a list of raw mask values"),
        ("label_map: [7, 8]", "label_map", "a mapping of raw mask value -> class"),
        ("image_dir: 3", "image_dir", "a folder"),
    ],
)
def test_a_dataset_declaration_of_the_wrong_type_names_file_key_and_expectation(
    tmp_path: Path, line: str, key: str, expected: str
) -> None:
    from seg.data.labels import DatasetSpec, LabelSpecError

    path = tmp_path / "dataset.yaml"
    path.write_text(line + "\n")
    with pytest.raises(LabelSpecError, match=rf"dataset.yaml: {key} must be {re.escape(expected)}"):
        DatasetSpec.read(path)
