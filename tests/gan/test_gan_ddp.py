"""Two-process DDP (gloo, CPU) through the CLI with the shipped config and its defaults (progress
bar, W&B offline without a key, sample grids, checkpoints, validation): two epochs without
find_unused_parameters, one run folder, and FID under DDP counting every validation image exactly
once with an odd-sized set. Under a hard timeout that kills every rank."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tests import processes
from tests.gan.conftest import TINY_MODEL_ARGS, check_ddp_run, make_image_folder, two_rank_fit_args

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_ddp_fit_on_two_processes_with_the_shipped_defaults(tmp_path: Path) -> None:
    train = make_image_folder(tmp_path / "train", count=8)
    val = make_image_folder(tmp_path / "val", count=7)  # odd: DistributedSampler would pad to 8
    command = processes.python_command(
        "gan.cli",
        "fit",
        f"--config={REPO / 'configs/gan/dcgan_fashion.yaml'}",
        "--data.format=folder",
        f"--data.root={train}",
        f"--data.val_root={val}",
        "--data.channels=3",
        "--data.batch_size=2",
        "--data.num_workers=0",
        *TINY_MODEL_ARGS,
        *two_rank_fit_args(tmp_path),
    )
    result = processes.run(command, tmp_path, timeout=300)
    run = check_ddp_run(result, tmp_path / "runs" / "gan")
    with open(run / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    fid_rows = [row for row in rows if row.get("val/fid")]
    assert len(fid_rows) == 2, "FID once per epoch"
    assert all(float(row["val/fid_num_real"]) == 7.0 for row in fid_rows)
    assert all(float(row["val/fid_num_fake"]) == 7.0 for row in fid_rows)
    # 8 training images, 2 ranks, batch 2: 2 batches per rank and epoch, each a D and a G step.
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 8
    cached = list((tmp_path / "fid_cache").glob("*.pt"))
    assert len(cached) == 1 and torch.load(cached[0]).shape == (7, 64)
    assert len(list((run / "images" / "samples").glob("*.png"))) == 2, "a sample grid per epoch"
