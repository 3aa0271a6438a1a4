"""Two-process DDP on CPU (gloo) through the CLI with the shipped config and its defaults
(progress bar, W&B offline without a key, validation overlays, checkpoints): both ranks train for
two epochs, one checkpoint folder is written, and validation counts every pixel of an odd-sized
validation set exactly once. Under a hard timeout that kills every rank."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tests import processes
from tests.seg.helpers import write_folder_split

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_ddp_fit_two_processes_with_the_shipped_defaults(tmp_path: Path) -> None:
    write_folder_split(tmp_path / "data" / "train", 8, size=(40, 48))
    # 5 validation images (odd: ranks get 3 and 2), two ignored rows each
    write_folder_split(tmp_path / "data" / "val", 5, size=(40, 48), seed=1, ignore_border=True)
    expected_pixels = 5 * (40 - 2) * 48
    command = processes.python_command(
        "seg.cli", "fit",
        "--config", str(REPO / "configs/seg/fcn8s_fashion.yaml"),
        "--data.format", "folder", "--data.root", str(tmp_path / "data"),
        "--data.num_classes", "3", "--data.batch_size", "2", "--data.num_workers", "0",
        "--data.crop_size", "32",
        "--model.network.width", "0.0625",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    )  # fmt: skip
    result = processes.run(command, tmp_path, timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.output
    assert "Epoch 1" in result.output  # the progress bar ran

    run = tmp_path / "runs" / "seg" / "version_0"
    assert sorted(p.name for p in (tmp_path / "runs" / "seg").iterdir()) == ["version_0"]
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints, checkpoints
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # 8 images over 2 ranks with batch 2: 2 steps per epoch (a single process would take 4)
    assert checkpoint["global_step"] == 4

    with open(run / "metrics.csv") as stream:
        rows = [row for row in csv.DictReader(stream) if row.get("val/pixels")]
    assert len(rows) == 2, "one validation per epoch"
    assert float(rows[-1]["val/pixels"]) == expected_pixels
    assert list((run / "images" / "val_overlays").glob("*.png")), "no overlay written"
    offline_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and list(offline_runs[0].glob("*.wandb"))
