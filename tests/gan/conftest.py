"""Shared fixtures for the GAN tests: a tiny image folder and one tiny trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TINY_MODEL_ARGS = [
    "--model.nz=8",
    "--model.ngf=4",
    "--model.ndf=4",
    "--model.num_sample_images=4",
]


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """Run each GAN test on one intra-op thread: the tensors are tiny, and on a shared 2-core
    machine thread hand-offs cost far more than they save (KID's small matmuls ran 30x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_image_folder(folder: Path, count: int = 12, size: tuple[int, int] = (20, 24)) -> Path:
    """``count`` small RGB PNGs (bright disc on dark background) in two sub-folders."""
    rng = np.random.default_rng(0)
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    for index in range(count):
        cy, cx = rng.uniform(5, height - 5), rng.uniform(5, width - 5)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < rng.uniform(9, 30)
        image = np.zeros((height, width, 3), np.uint8)
        image[disc] = rng.integers(128, 256, size=3)
        path = folder / f"part{index % 2}" / f"image_{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


def fit_args(root: Path, data_root: Path, *extra: str) -> list[str]:
    """Arguments of a few-step ``gan fit`` on a folder of images, nothing written outside root."""
    return [
        "fit",
        "--data.format=folder",
        f"--data.root={data_root}",
        "--data.image_size=32",
        "--data.channels=3",
        "--data.batch_size=4",
        "--data.num_workers=0",
        *TINY_MODEL_ARGS,
        f"--model.fid_cache_dir={root / 'fid_cache'}",
        f"--trainer.default_root_dir={root / 'runs'}",
        "--trainer.max_epochs=1",
        "--trainer.accelerator=cpu",
        "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=1",
        # In-process runs share one W&B service, where a resumed run's id would be "in use";
        # W&B offline (the default users get) runs in the command-line tests (tests/processes.py).
        "--wandb=false",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.save_last=true",
        *extra,
    ]


def run_gan_cli(args: list[str]) -> None:
    """Run ``gan fit|validate`` in this process."""
    from gan.cli import run_cli

    run_cli(args)


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``last.ckpt`` of a 3-batch ``gan fit`` on a tiny folder (EMA on), made once per session."""
    root = tmp_path_factory.mktemp("gan_trained")
    data = make_image_folder(root / "images")
    run_gan_cli(fit_args(root, data, "--model.ema_decay=0.9"))
    checkpoint = root / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    return checkpoint


def two_rank_fit_args(root: Path) -> list[str]:
    """``gan fit`` arguments of a two-epoch, two-process CPU run under ``root`` with FID (small
    random features) every epoch; everything else stays as the config has it."""
    return [
        "--model.fid_every_n_epochs=1",
        "--model.fid_features=random",
        "--model.kid_subset_size=4",
        f"--model.fid_cache_dir={root / 'fid_cache'}",
        "--trainer.max_epochs=2",
        "--trainer.accelerator=cpu",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        f"--trainer.default_root_dir={root / 'runs'}",
    ]


def check_ddp_run(result, runs: Path) -> Path:
    """What every two-rank ``fit`` with the shipped defaults must show: success without unused
    parameters, the progress bar, one run folder (returned) with a complete ``last.ckpt`` and
    one offline W&B run."""
    assert result.returncode == 0, result.output[-4000:]
    assert "find_unused_parameters" not in result.output
    assert "Epoch 1" in result.output  # the progress bar ran
    assert sorted(p.name for p in runs.iterdir()) == ["version_0"]
    run = runs / "version_0"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and not any(".tmp" in name for name in checkpoints)
    offline_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and list(offline_runs[0].glob("*.wandb"))
    return run
