"""Two-process DDP on CPU (gloo): both ranks train, one checkpoint is written, and validation
counts every pixel of an odd-sized validation set exactly once."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.runs import RUN_VERSION_ENV
from tests.seg.helpers import write_folder_split

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_ddp_fit_two_processes(tmp_path: Path) -> None:
    write_folder_split(tmp_path / "data" / "train", 8, size=(40, 48))
    # 5 validation images (odd: ranks get 3 and 2), two ignored rows each
    write_folder_split(tmp_path / "data" / "val", 5, size=(40, 48), seed=1, ignore_border=True)
    expected_pixels = 5 * (40 - 2) * 48
    env = {k: v for k, v in os.environ.items() if k != RUN_VERSION_ENV}
    env.update(
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}",
        WANDB_MODE="disabled",
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    command = [
        sys.executable, "-m", "seg.cli", "fit",
        "--config", str(REPO / "configs/seg/fcn8s_fashion.yaml"),
        "--data.format", "folder", "--data.root", str(tmp_path / "data"),
        "--data.num_classes", "3", "--data.batch_size", "2", "--data.num_workers", "0",
        "--data.crop_size", "32",
        "--model.width", "0.0625",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--wandb", "false",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output

    run = tmp_path / "runs" / "seg" / "version_0"
    assert sorted(p.name for p in (tmp_path / "runs" / "seg").iterdir()) == ["version_0"]
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints, checkpoints
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # 8 images over 2 ranks with batch 2: 2 steps per epoch (a single process would take 4)
    assert checkpoint["global_step"] == 2

    with open(run / "metrics.csv") as stream:
        rows = [row for row in csv.DictReader(stream) if row.get("val/pixels")]
    assert rows, "no validation metrics logged"
    assert float(rows[-1]["val/pixels"]) == expected_pixels
