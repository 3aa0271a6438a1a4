"""Two-process DDP (gloo, CPU): trains without find_unused_parameters, one checkpoint, and FID
counts every validation image exactly once with an odd-sized set."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.runs import RUN_VERSION_ENV
from tests.gan.conftest import fit_args, make_image_folder

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_ddp_fit_on_two_processes(tmp_path: Path) -> None:
    train = make_image_folder(tmp_path / "train", count=8)
    val = make_image_folder(tmp_path / "val", count=7)  # odd: DistributedSampler would pad to 8
    args = fit_args(
        tmp_path,
        train,
        f"--data.val_root={val}",
        "--data.batch_size=2",
        "--model.fid_every_n_epochs=1",
        "--model.fid_features=random",
        "--model.kid_subset_size=4",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop(RUN_VERSION_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "gan.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "find_unused_parameters" not in result.stderr
    run = tmp_path / "runs" / "gan" / "version_0"
    assert sorted(p.name for p in (tmp_path / "runs" / "gan").iterdir()) == ["version_0"]
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and not any(".tmp" in name for name in checkpoints)
    with open(run / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    fid_rows = [row for row in rows if row.get("val/fid")]
    assert len(fid_rows) == 1
    assert float(fid_rows[0]["val/fid_num_real"]) == 7.0
    assert float(fid_rows[0]["val/fid_num_fake"]) == 7.0
    # 8 training images, 2 ranks, batch 2: 2 batches per rank, each with a D and a G step.
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 4
    cached = list((tmp_path / "fid_cache").glob("*.pt"))
    assert len(cached) == 1 and torch.load(cached[0]).shape == (7, 64)
