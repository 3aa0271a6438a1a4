"""CIFAR-10 as a data source: a folder of ``train/<class>/*`` and ``test/<class>/*`` images (an
unreadable file named and skipped), or its archive unpacked once into the cache (a hostile archive
refused); flips as StudioGAN makes them; the shipped config through ``gan fit`` (progress bar,
W&B offline) for a few steps, then ``gan sample`` and ``gan fid`` from its checkpoint."""

from __future__ import annotations

import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.dcgan.data import GANDataModule, MirroredImages
from tests import processes
from upsample.core.cifar10 import CIFAR10Error, cifar10_folder, unpack_archive

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs/gan/dcgan_cifar10.yaml"
TINY_ARGS = ["--model.nz=8", "--model.ngf=4", "--model.ndf=4", "--model.num_sample_images=4"]


def make_cifar_folder(root: Path, per_class: int = 3, classes: int = 2) -> Path:
    """A CIFAR-10 layout of 32x32 JPEGs (a red gradient mirrored apart from its flip), and one
    truncated file in ``train/``."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(per_class):
                image = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
                image[..., 0] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]
                Image.fromarray(image).save(folder / f"{index:04d}.jpg", quality=90)
    (root / "train" / "class0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return root


def pack(folder: Path, archive: Path) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "train", arcname="cifar10/train")
        tar.add(folder / "test", arcname="cifar10/test")
    return archive


def test_a_folder_an_archive_or_its_folder_give_the_splits(tmp_path: Path) -> None:
    folder = make_cifar_folder(tmp_path / "plain")
    assert cifar10_folder(folder) == folder
    archive = pack(folder, tmp_path / "holder" / "cifar10-jpeg.tar.gz")
    cache = tmp_path / "cache"
    unpacked = cifar10_folder(tmp_path / "holder", cache)
    assert unpacked.parent.parent == cache / "cifar10"
    assert sorted(p.name for p in (unpacked / "test").iterdir()) == ["class0", "class1"]
    assert cifar10_folder(archive, cache) == unpacked  # unpacked once, found again
    assert not list((cache / "cifar10").glob(".unpacking-*"))  # no half-unpacked folder left
    with pytest.raises(CIFAR10Error, match=r"missing: no CIFAR-10 here: expected a folder"):
        cifar10_folder(tmp_path / "missing")


def test_a_hostile_or_broken_archive_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(hostile, "w:gz") as tar:
        data = b"x"
        member = tarfile.TarInfo("../outside.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    with pytest.raises(CIFAR10Error, match=r"hostile.tar.gz: refused: member '../outside.txt'"):
        unpack_archive(hostile, tmp_path / "cache")
    assert not (tmp_path / "outside.txt").exists()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not an archive")
    with pytest.raises(CIFAR10Error, match="broken.tar.gz: not a readable tar archive"):
        unpack_archive(broken, tmp_path / "cache")


def test_the_data_module_reads_splits_skips_broken_files_and_flips(tmp_path: Path) -> None:
    folder = make_cifar_folder(tmp_path / "cifar")
    data = GANDataModule("cifar10", str(folder), image_size=32, channels=3, hflip=True)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file\(s\): .*broken.jpg"):
        train = data.dataset("train")
    assert len(train) == 6 and len(data.dataset("test")) == 6
    mirrored = data.train_dataset
    assert isinstance(mirrored, MirroredImages) and len(mirrored) == 12
    image, flipped = mirrored.uint8_item(0), mirrored.uint8_item(6)
    torch.testing.assert_close(flipped, image.flip(-1))
    assert image[0, 0, -1] > image[0, 0, 0]  # the red gradient runs left to right
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = GANDataModule("cifar10", str(folder), image_size=32, channels=3).train_dataset
    assert len(plain) == 6


@pytest.mark.slow
def test_the_shipped_config_fits_samples_and_scores(tmp_path: Path) -> None:
    folder = make_cifar_folder(tmp_path / "cifar", per_class=4)
    fit = [
        "fit",
        f"--config={CONFIG}",
        f"--data.root={folder}",
        "--data.batch_size=4",
        "--data.num_workers=0",
        *TINY_ARGS,
        "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={tmp_path / 'runs'}",
    ]
    result = processes.run(processes.python_command("upsample_app.console", "gan", *fit), tmp_path)
    assert result.returncode == 0, result.output[-4000:]
    assert "Epoch 0" in result.output and "broken.jpg" in result.output
    run = tmp_path / "runs" / "gan" / "version_0"
    assert list((run / "wandb").glob("offline-run-*"))
    checkpoint = run / "checkpoints" / "last.ckpt"
    # 8 readable training images, mirrored: 16 an epoch, 4 batches of 4: D, D+G, D, D+G
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 6

    from gan.cli import main

    with pytest.raises(SystemExit) as status:
        main(
            [
                "sample",
                "--ckpt_path",
                str(checkpoint),
                "--num",
                "4",
                "--output",
                str(tmp_path / "s"),
            ]
        )
    assert status.value.code == 0 and (tmp_path / "s" / "grid.png").is_file()
    fid = ["fid", f"--ckpt_path={checkpoint}", "--num=6", "--fid_features=random"]
    fid += [f"--cache_dir={tmp_path / 'fid'}", "--kid_subset_size=4", "--data.format=cifar10"]
    with pytest.raises(SystemExit) as status:
        main([*fid, f"--data.root={folder}", "--data.channels=3"])
    assert status.value.code == 0


def test_studiogans_own_recipe_is_options_of_the_config(tmp_path: Path) -> None:
    """StudioGAN's DCGAN (BCE, batch norm in the critic, no EMA) is the shipped config with four
    flags: the critic keeps its batch norms, there is no EMA, two critic steps a generator step."""
    from gan.cli import run_cli

    folder = make_cifar_folder(tmp_path / "cifar", per_class=2)
    cli = run_cli(
        [
            "fit",
            f"--config={CONFIG}",
            f"--data.root={folder}",
            "--data.batch_size=2",
            "--data.num_workers=0",
            *TINY_ARGS,
            "--model.loss=bce",
            "--model.spectral_norm=false",
            "--model.ema_decay=null",
            "--model.discriminator_steps=2",
            "--trainer.max_steps=3",
            "--wandb=false",
            f"--trainer.default_root_dir={tmp_path / 'runs'}",
        ]
    )
    module = cli.model
    assert module.ema is None and module.hparams.loss == "bce"
    norms = [m for m in module.discriminator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(hasattr(m, "parametrizations") for m in module.discriminator.modules())
    assert cli.trainer.global_step == 3  # D, D + G: three optimiser steps in two batches
