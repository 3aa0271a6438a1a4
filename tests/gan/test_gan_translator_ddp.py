"""The translators (pix2pix, OASIS) under two-process DDP (gloo, CPU) through the CLI with their
shipped configs and defaults (progress bar, W&B offline without a key, sample grids, checkpoints,
validation each epoch): no unused parameters (both networks take part in both steps), one run
folder, FID counting each validation pair exactly once with an odd-sized set. Under a hard timeout
that kills every rank."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tests import processes
from tests.gan.conftest import check_ddp_run, two_rank_fit_args
from tests.gan.test_gan_oasis import CONFIG as OASIS_CONFIG
from tests.gan.test_gan_oasis import TINY_OASIS_ARGS
from tests.gan.test_gan_pix2pix import CONFIG as PIX2PIX_CONFIG
from tests.gan.test_gan_pix2pix import TINY_PIX2PIX_ARGS, make_paired_folder

pytestmark = pytest.mark.slow
TRANSLATORS = {
    "pix2pix": (PIX2PIX_CONFIG, TINY_PIX2PIX_ARGS),
    "oasis": (OASIS_CONFIG, TINY_OASIS_ARGS),
}


@pytest.mark.parametrize("name", list(TRANSLATORS))
def test_ddp_fit_on_two_processes_with_the_shipped_defaults(name: str, tmp_path: Path) -> None:
    config, tiny = TRANSLATORS[name]
    train = make_paired_folder(tmp_path / "train", count=8)
    val = make_paired_folder(tmp_path / "val", count=5)  # odd: a padding sampler would count 6
    command = processes.python_command(
        "gan.cli",
        "fit",
        f"--config={config}",
        "--data.format=folder",
        f"--data.root={train}",
        f"--data.val_root={val}",
        *tiny,
        *two_rank_fit_args(tmp_path),
    )
    result = processes.run(command, tmp_path, timeout=300)
    run = check_ddp_run(result, tmp_path / "runs" / name)
    with open(run / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len([row for row in rows if row.get("val/l1")]) == 2
    fid_rows = [row for row in rows if row.get("val/fid")]
    assert [float(row["val/fid_num_real"]) for row in fid_rows] == [5.0, 5.0]
    assert [float(row["val/fid_num_fake"]) for row in fid_rows] == [5.0, 5.0]
    # 8 training pairs, 2 ranks, batch 2: 2 batches per rank and epoch, each a D and a G step.
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 8
    assert any(key.startswith("ema.module.") for key in checkpoint["state_dict"])
    assert len(list((run / "images" / "samples").glob("*.png"))) == 2, "a sample grid per epoch"
