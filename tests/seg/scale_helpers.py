"""What the tests of folder inference at scale share: a trained checkpoint, folders of awkward
files, and comparisons of output folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.seg.helpers import random_pair, write_folder_split

CONFIG = "configs/seg/fcn8s_fashion.yaml"


def train_checkpoint(folder: Path) -> Path:
    """A checkpoint of two tiny epochs of ``seg fit`` with the shipped config (its batch norms
    have statistics of their own); returns ``last.ckpt``."""
    from seg.cli import run_cli

    write_folder_split(folder / "data" / "train", 4)
    write_folder_split(folder / "data" / "val", 2, seed=1)
    run_cli(
        [
            "fit",
            "--config",
            CONFIG,
            "--data.format",
            "folder",
            "--data.root",
            str(folder / "data"),
            "--data.num_workers",
            "0",
            "--data.num_classes",
            "3",
            "--data.crop_size",
            "32",
            "--data.batch_size",
            "2",
            "--model.network.width",
            "0.0625",
            "--trainer.max_epochs",
            "2",
            "--trainer.enable_model_summary",
            "false",
            "--trainer.default_root_dir",
            str(folder / "runs"),
            "--wandb",
            "false",
        ]
    )
    return folder / "runs" / "seg" / "version_0" / "checkpoints" / "last.ckpt"


def write_odd_folder(folder: Path, count: int = 11) -> list[str]:
    """``count`` photos of odd sizes in nested folders, one larger than a 64-pixel tile, one
    unreadable file and two that share a stem; returns the output names of the readable ones."""
    rng = np.random.default_rng(0)
    names = []
    for index in range(count):
        sub = ("", "a", "b/c")[index % 3]
        (folder / sub).mkdir(parents=True, exist_ok=True)
        image, _ = random_pair(rng, 33 + index, 47 + 2 * index)
        Image.fromarray(image).save(folder / sub / f"img{index:02d}.png")
        names.append(f"{sub}/img{index:02d}".lstrip("/"))
    big, _ = random_pair(rng, 150, 170)
    Image.fromarray(big).save(folder / "a" / "big.jpg", quality=95)
    Image.fromarray(big[:40, :50]).save(folder / "a" / "big.png")
    (folder / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing after")
    return sorted([*names, "a/big_jpg", "a/big_png"])


def output_digests(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every output file (masks, overlays, probabilities)."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for kind in ("masks", "overlays", "probabilities")
        for path in sorted((folder / kind).rglob("*"))
        if path.is_file()
    }


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of an atomic write under ``folder``."""
    return sorted(path for path in folder.rglob(".*") if ".tmp" in path.name)
