"""pix2pix: paired data (label maps -> photos), the task choice of ``gan fit``, training through
the CLI with the shipped config (sample grids, validation, FID, exact resume), ``gan translate``
on a folder with broken files, and CamVid read where it lies."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.tasks import task_of
from gan.translation.paired_data import InputSpec, LabelMapError, camvid_spec, read_label_values
from gan.translation.paired_datamodule import PairedDataModule, augment_pairs
from tests.gan.conftest import run_gan_cli

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs/gan/pix2pix_camvid.yaml"
CAMVID = REPO.parent / "shared" / "data" / "camvid"  # ../shared/data/camvid
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]], np.uint8)


def make_paired_folder(
    root: Path,
    count: int = 8,
    size: tuple[int, int] = (20, 28),
    layout: tuple[str, str] = ("labels", "images"),
) -> Path:
    """``count`` label maps (classes 0-2 in rectangles, 255 = void in a corner) with photos that
    colour each class, in two sub-folders."""
    rng = np.random.default_rng(0)
    height, width = size
    for index in range(count):
        labels = np.zeros((height, width), np.uint8)
        for value in (1, 2):
            top, left = rng.integers(0, height - 6), rng.integers(0, width - 6)
            labels[top : top + 6, left : left + 8] = value
        labels[:2, :2] = 255
        photo = COLOURS[np.minimum(labels, 2)]
        photo[labels == 255] = 0
        name = Path(f"part{index % 2}") / f"frame_{index:02d}"
        for folder, image, suffix in ((layout[0], labels, ".png"), (layout[1], photo, ".jpg")):
            path = root / folder / name.with_suffix(suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
    return root


# ------------------------------------------------------------------------------ input spec
def test_label_maps_become_one_hot_with_a_void_channel(tmp_path: Path) -> None:
    spec = InputSpec("labels", (2, 3), num_classes=3, void_values=(255,))
    assert spec.channels == 4
    raw = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    indices = torch.from_numpy(spec.class_indices(raw, "x.png"))
    assert indices.tolist() == [[0, 1, 2], [3, 2, 0]]
    one_hot = spec.encode_labels(indices)
    assert one_hot.shape == (4, 2, 3) and torch.equal(one_hot.sum(0), torch.ones(2, 3))
    assert one_hot[3, 1, 0] == 1  # void marked in its own channel
    pictures = spec.to_rgb(one_hot[None])
    assert pictures.shape == (1, 3, 2, 3)
    torch.testing.assert_close(pictures[0, :, 1, 0], torch.zeros(3))  # void drawn black
    torch.testing.assert_close(pictures[0, :, 0, 0] * 255, torch.tensor(spec.palette[0]).float())
    with pytest.raises(
        LabelMapError, match=r"x\.png: label values 3, 7 are neither classes 0\.\.2"
    ):
        spec.class_indices(np.array([[3, 7, 255]]), "x.png")
    assert InputSpec.from_dict(spec.to_dict()) == spec
    camvid = camvid_spec([96, 128])
    assert camvid.channels == 12 and camvid.void_values == (11,) and len(camvid.palette) == 11
    with pytest.raises(ValueError, match="void_values"):
        InputSpec("labels", (4, 4), num_classes=3, void_values=(2,))


def test_label_maps_must_be_single_channel(tmp_path: Path) -> None:
    path = tmp_path / "colour.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    with pytest.raises(OSError, match=r"colour\.png: a label map must be single-channel"):
        read_label_values(path)
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "palette.png")
    assert read_label_values(tmp_path / "palette.png").tolist() == [[0, 1], [2, 1]]


# ---------------------------------------------------------------------------------- data
def test_paired_folder_pairs_skips_and_reads(tmp_path: Path) -> None:
    root = make_paired_folder(tmp_path / "data")
    (root / "labels" / "part0" / "orphan.png").write_bytes(
        (root / "labels" / "part0" / "frame_00.png").read_bytes()
    )
    (root / "images" / "part1" / "frame_01.jpg").write_bytes(b"not an image")
    data = PairedDataModule("folder", str(root), num_classes=3, image_size=[12, 16])
    with pytest.warns(UserWarning, match=r"orphan\.png \(no photo.*frame_01\.jpg") as caught:
        dataset = data.dataset("train")
    assert "skipped 2 file(s)" in str(caught[0].message)
    assert len(dataset) == 7
    inputs, photo = dataset[0]
    assert inputs.shape == (4, 12, 16) and photo.shape == (3, 12, 16)
    assert photo.min() >= -1 and photo.max() <= 1
    assert data.input_spec.channels == 4
    samples, photos = data.sample_batch(3)
    assert samples.shape == (3, 4, 12, 16) and photos.shape == (3, 3, 12, 16)
    with pytest.raises(ValueError, match="needs data.num_classes"):
        PairedDataModule("folder", str(root))
    ab = make_paired_folder(tmp_path / "ab", layout=("A", "B"))
    rgb = PairedDataModule("folder", str(ab), image_size=16)
    assert rgb.input_spec.kind == "rgb" and rgb.dataset("train")[0][0].shape == (3, 16, 16)


def test_bad_label_values_name_the_file(tmp_path: Path) -> None:
    root = make_paired_folder(tmp_path / "data", count=2)
    data = PairedDataModule("folder", str(root), num_classes=2, image_size=[8, 8])
    with pytest.raises(LabelMapError, match=r"frame_00\.png: label values 2 are neither"):
        data.dataset("train")[0]


def test_augmentation_moves_input_and_photo_together() -> None:
    spec = InputSpec("labels", (10, 14), num_classes=3)
    indices = torch.randint(0, 4, (4, 10, 14))
    inputs = spec.encode_labels(indices)
    photos = inputs[:, :3] * 2 - 1  # the photo is a function of the label map
    generator = torch.Generator().manual_seed(3)
    a, b = augment_pairs(inputs, photos, generator, hflip=True, jitter=1.0)
    torch.testing.assert_close(b, a[:, :3] * 2 - 1)
    flipped = [not torch.equal(x, y) for x, y in zip(a, inputs, strict=True)]
    assert any(flipped) and not all(flipped)
    again = augment_pairs(inputs, photos, torch.Generator().manual_seed(3), True, 1.0)
    assert torch.equal(again[0], a)
    a, b = augment_pairs(inputs, photos, torch.Generator().manual_seed(4), True, 1.3)
    assert a.shape == inputs.shape and b.shape == photos.shape
    assert torch.equal(a.sum(1), torch.ones(4, 10, 14)), "still one-hot after the zoom"


# --------------------------------------------------------------------------------- tasks
def test_the_task_comes_from_the_command_line_or_a_config(tmp_path: Path) -> None:
    assert task_of(["fit", "--config", "missing.yaml"]) == "dcgan"
    assert task_of(["fit", "--config", str(CONFIG)]) == "pix2pix"
    assert task_of(["fit", f"--config={CONFIG}", "--task", "dcgan"]) == "dcgan"
    assert task_of(["fit", "--task=dcgan", "--config", str(CONFIG)]) == "pix2pix"
    with pytest.raises(ValueError, match=r"--task must be one of \('dcgan', 'pix2pix', 'oasis'\)"):
        task_of(["fit", "--task", "cyclegan"])


# ---------------------------------------------------------------------- the command line
#: the shipped config at a tiny size, on a ``make_paired_folder`` folder
TINY_PIX2PIX_ARGS = [
    "--data.num_classes=3",
    "--data.image_size=[16, 24]",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--model.ngf=4",
    "--model.ndf=4",
    "--model.depth=4",
    "--model.patch_size=16",
    "--model.num_sample_images=3",
]


def translator_fit_args(
    config: Path, tiny: list[str], root: Path, data: Path, *extra: str
) -> list[str]:
    """``gan fit`` of a translator's shipped ``config`` at the ``tiny`` sizes on a
    ``make_paired_folder`` folder, everything written under ``root``."""
    return [
        "fit",
        f"--config={config}",
        "--data.format=folder",
        f"--data.root={data}",
        *tiny,
        f"--trainer.default_root_dir={root / 'runs'}",
        "--trainer.accelerator=cpu",
        "--trainer.enable_model_summary=false",
        *extra,
    ]


def _fit_args(root: Path, data: Path, *extra: str) -> list[str]:
    return translator_fit_args(CONFIG, TINY_PIX2PIX_ARGS, root, data, "--wandb=false", *extra)


def _last(root: Path) -> Path:
    return root / "runs" / "pix2pix" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_fit_validates_logs_grids_and_resumes_exactly(tmp_path: Path) -> None:
    data = make_paired_folder(tmp_path / "data", count=6)

    def fit(root: Path, *extra: str) -> dict:
        options = ["--model.upsampler=pixel_shuffle", "--data.hflip=true", "--data.jitter=1.2"]
        run_gan_cli(_fit_args(root, data, *options, *extra))
        return torch.load(_last(root), weights_only=False)

    fid = ["--data.void_values=[255]", "--model.fid_every_n_epochs=1"]
    fid += ["--model.fid_features=random"]
    fid += ["--model.kid_subset_size=3", f"--model.fid_cache_dir={tmp_path / 'fid'}"]
    whole = fit(tmp_path / "whole", "--trainer.max_epochs=2", *fid)
    run = tmp_path / "whole" / "runs" / "pix2pix" / "version_0"
    with open(run / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len([row for row in rows if row.get("val/l1")]) == 2
    assert [float(row["val/fid_num_real"]) for row in rows if row.get("val/fid")] == [6.0, 6.0]
    assert len([row for row in rows if row.get("train/l1_epoch")]) == 2
    grids = sorted((run / "images" / "samples").glob("*.png"))
    assert len(grids) == 2
    assert Image.open(grids[0]).size == (3 * 24 + 4 * 2, 3 * 16 + 4 * 2)  # input|output|target
    assert "task: pix2pix" in (run / "config.yaml").read_text()
    hparams = whole["hyper_parameters"]
    assert hparams["input_spec"]["num_classes"] == 3 and hparams["input_spec"]["kind"] == "labels"

    fit(tmp_path / "parts", "--trainer.max_epochs=1")
    resumed = fit(tmp_path / "parts", "--trainer.max_epochs=2", "--ckpt_path=last")
    assert resumed["global_step"] == whole["global_step"] == 12  # 3 batches x 2 epochs x (D, G)
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


@pytest.mark.slow
def test_translate_a_folder_with_broken_files(tmp_path: Path) -> None:
    from gan.cli import main

    data = make_paired_folder(tmp_path / "data", count=4)
    run_gan_cli(_fit_args(tmp_path, data, "--trainer.max_epochs=1", "--task=pix2pix"))
    labels = tmp_path / "to_translate"
    for path in (data / "labels").rglob("*.png"):
        target = labels / path.relative_to(data / "labels")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (labels / "part0" / "truncated.png").write_bytes(
        (labels / "part0" / "frame_00.png").read_bytes()[:40]
    )
    Image.fromarray(np.full((5, 5), 9, np.uint8)).save(labels / "part1" / "class9.png")
    Image.fromarray(np.zeros((9, 7), np.uint8)).save(labels / "odd_size.png")

    def translate(output: Path, *extra: str) -> int:
        args = ["translate", "--ckpt_path", str(_last(tmp_path)), "--input", str(labels)]
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--output", str(output), *extra])
        return exit_info.value.code

    assert translate(tmp_path / "out") == 1  # some files skipped
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
    )
    assert written == [
        "odd_size.png",
        "part0",
        "part0/frame_00.png",
        "part0/frame_02.png",
        "part1",
        "part1/frame_01.png",
        "part1/frame_03.png",
    ], "one photo per readable label map, same relative paths, no temporary files"
    photo = Image.open(tmp_path / "out" / "part0" / "frame_00.png")
    assert photo.size == (24, 16) and photo.mode == "RGB"
    assert translate(tmp_path / "again") == 1
    for path in (tmp_path / "out").rglob("*.png"):
        again = tmp_path / "again" / path.relative_to(tmp_path / "out")
        assert again.read_bytes() == path.read_bytes(), "deterministic for a seed"
    translate(tmp_path / "seed1", "--seed", "1")
    assert (tmp_path / "seed1" / "odd_size.png").read_bytes() != (
        tmp_path / "out" / "odd_size.png"
    ).read_bytes(), "the seed drives the dropout noise"
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--ckpt_path", str(tmp_path / "nope.ckpt"), "--input", str(labels),
              "--output", str(tmp_path / "x")])  # fmt: skip
    assert exit_info.value.code == 2


@pytest.mark.slow
@pytest.mark.skipif(not CAMVID.is_dir(), reason="CamVid not found at ../shared/data/camvid")
def test_camvid_with_the_shipped_config(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no CamVid file is skipped
        data = PairedDataModule("camvid", str(CAMVID), image_size=[96, 128])
        assert len(data.dataset("train")) == 367 and len(data.dataset("test")) == 233
    inputs, photo = data.dataset("val")[0]
    assert inputs.shape == (12, 96, 128) and photo.shape == (3, 96, 128)
    run_gan_cli(
        [
            "fit",
            f"--config={CONFIG}",
            f"--data.root={CAMVID}",
            "--data.max_train_images=4",
            "--data.max_val_images=2",
            "--data.batch_size=2",
            "--data.num_workers=0",
            "--model.ngf=4",
            "--model.ndf=4",
            "--trainer.max_epochs=1",
            f"--trainer.default_root_dir={tmp_path / 'runs'}",
            "--wandb=false",
        ]
    )
    assert _last(tmp_path).is_file()
