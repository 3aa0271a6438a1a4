"""Every shipped config, stopped inside an epoch by ``--trainer.max_steps`` or by
``--trainer.max_time``, leaves ``last.ckpt`` at the last step taken, and ``--ckpt_path last``
resumes from it (``upsample.core.callbacks.FinalCheckpoint``).

The runs use the configs as shipped (validation schedule, checkpoint callbacks, progress bar,
image logging, W&B offline as for a user without an account), with only the data, the sizes and
the step counts changed. The CamVid configs validate every
second epoch: before ``FinalCheckpoint`` a run stopped before its second epoch wrote no
checkpoint at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from tests.gan.conftest import TINY_MODEL_ARGS, make_image_folder
from tests.gan.test_gan_cifar10 import make_cifar_folder
from tests.gan.test_gan_oasis import TINY_OASIS_ARGS
from tests.gan.test_gan_pix2pix import TINY_PIX2PIX_ARGS, make_paired_folder
from tests.seg.helpers import write_voc

# each test fits a few steps in seconds; a fit that hangs (a data-loader worker, a signal) fails
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid"
QUIET = ["--trainer.enable_model_summary=false"]


def mini_camvid(root: Path) -> Path:
    """A CamVid layout of 4 train, 2 val and 2 test photos linked to the real files."""
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = (CAMVID / f"{split}.txt").read_text().splitlines()[:count]
        names = [line.split()[0].rsplit("/", 1)[-1] for line in lines]
        for name in names:
            (root / split / name).symlink_to(CAMVID / split / name)
            (root / f"{split}annot" / name).symlink_to(CAMVID / f"{split}annot" / name)
        listing = "".join(f"{split}/{name} {split}annot/{name}\n" for name in names)
        (root / f"{split}.txt").write_text(listing)
    return root


def fashion_seg_args(data: Path) -> list[str]:
    data.mkdir(parents=True, exist_ok=True)
    return [
        f"--data.root={data}",
        "--data.num_train=8",
        "--data.num_val=2",
        "--data.canvas_size=32",
        "--data.crop_size=32",
        "--data.batch_size=2",
        "--model.network.width=0.0625",
    ]


def voc_args(data: Path) -> list[str]:
    if not data.exists():
        write_voc(data)
    # the config starts from torchvision's ImageNet weights, a download unreachable offline
    return [
        f"--data.root={data}",
        "--data.crop_size=32",
        "--data.batch_size=1",
        "--model.network.encoder_weights=null",
    ]


def camvid_seg_args(data: Path) -> list[str]:
    if not data.exists():
        mini_camvid(data)
    return [
        f"--data.root={data}",
        "--data.crop_size=[64, 64]",
        "--data.batch_size=1",
        "--data.val_batch_size=2",
    ]


def dcgan_fashion_args(data: Path) -> list[str]:
    return [
        "--data.max_train_images=16",
        "--data.max_val_images=8",
        "--data.batch_size=4",
        "--model.ngf=4",
        "--model.ndf=4",
        "--model.num_sample_images=4",
    ]


def dcgan_folder_args(data: Path) -> list[str]:
    if not data.exists():
        make_image_folder(data, count=16)
    return [
        f"--data.root={data}",
        "--data.batch_size=4",
        "--model.ngf=4",
        "--model.ndf=4",
        "--model.num_sample_images=4",
        "--model.fid_features=random",
        "--model.kid_subset_size=4",
        f"--model.fid_cache_dir={data.parent / 'fid'}",
    ]


def dcgan_rgb64_args(data: Path) -> list[str]:
    return [*dcgan_folder_args(data), "--data.max_val_images=8"]


def pix2pix_args(data: Path) -> list[str]:
    if not data.exists():
        make_paired_folder(data, count=8)
    return ["--data.format=folder", f"--data.root={data}", *TINY_PIX2PIX_ARGS]


def dcgan_cifar10_args(data: Path) -> list[str]:
    if not data.exists():
        make_cifar_folder(data, per_class=4)  # 8 readable training images, mirrored: 16
    return [f"--data.root={data}", "--data.batch_size=4", *TINY_MODEL_ARGS]


def oasis_args(data: Path) -> list[str]:
    if not data.exists():
        make_paired_folder(data, count=8)
    return ["--data.format=folder", f"--data.root={data}", *TINY_OASIS_ARGS]


@dataclass(frozen=True)
class ShippedConfig:
    """A shipped config, the tool that runs it, and its tiny data (made on first use under the
    run's root) and sizes."""

    config: str
    tool: str
    data_args: Callable[[Path], list[str]]
    steps_per_epoch: int  # optimiser steps (a GAN batch takes two: critic and generator)
    needs_camvid: bool = False
    #: where max_steps stops inside the first epoch and resumes to, when the default rule
    #: (one or two steps short of an epoch, then 2 or 4 more) does not fall on a step the run
    #: takes: with two critic steps a generator step, the steps go 1, 3, 4, 6, 7, ...
    stops: tuple[int, int] | None = None

    def run(self, root: Path, *extra: str) -> Any:
        args = ["fit", "--config", str(REPO / self.config), "--data.num_workers=0"]
        args += [*self.data_args(root / "data"), *QUIET, f"--trainer.default_root_dir={root}"]
        if self.tool == "seg":
            from seg.cli import run_cli
        else:
            from gan.cli import run_cli
        try:
            return run_cli([*args, *extra])
        finally:
            # A user's command ends its process and with it the W&B run; in this process the
            # next command would otherwise log into this one's run.
            import wandb

            wandb.finish()


CONFIGS = [
    ShippedConfig("configs/seg/fcn8s_fashion.yaml", "seg", fashion_seg_args, 4),
    ShippedConfig("configs/seg/fcn16s_fashion.yaml", "seg", fashion_seg_args, 4),
    ShippedConfig("configs/seg/fcn32s_fashion.yaml", "seg", fashion_seg_args, 4),
    ShippedConfig("configs/seg/atrous_fashion.yaml", "seg", fashion_seg_args, 4),
    ShippedConfig("configs/seg/voc_fcn8s.yaml", "seg", voc_args, 4),
    ShippedConfig("configs/seg/camvid_fcn8s_lite0.yaml", "seg", camvid_seg_args, 4, True),
    ShippedConfig("configs/seg/camvid_atrous_lite0.yaml", "seg", camvid_seg_args, 4, True),
    ShippedConfig("configs/seg/camvid_fcn8s_vgg16.yaml", "seg", camvid_seg_args, 4, True),
    ShippedConfig("configs/gan/dcgan_fashion.yaml", "gan", dcgan_fashion_args, 8),
    ShippedConfig("configs/gan/dcgan_folder.yaml", "gan", dcgan_folder_args, 8),
    ShippedConfig("configs/gan/dcgan_rgb64.yaml", "gan", dcgan_rgb64_args, 8),
    ShippedConfig("configs/gan/pix2pix_camvid.yaml", "gan", pix2pix_args, 8),
    ShippedConfig("configs/gan/oasis_camvid.yaml", "gan", oasis_args, 8),
    ShippedConfig("configs/gan/dcgan_cifar10.yaml", "gan", dcgan_cifar10_args, 6, stops=(3, 7)),
]


def test_every_shipped_config_is_covered() -> None:
    shipped = {path.relative_to(REPO).as_posix() for path in REPO.glob("configs/*/*.yaml")}
    assert shipped == {config.config for config in CONFIGS}


def _last_checkpoints(root: Path) -> list[Path]:
    return sorted(root.rglob("checkpoints/last*.ckpt"))


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


@pytest.fixture(params=CONFIGS, ids=lambda config: Path(config.config).stem)
def shipped(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ShippedConfig:
    config = request.param
    if config.needs_camvid and not CAMVID.is_dir():
        pytest.skip(f"CamVid not found at {CAMVID}")
    monkeypatch.chdir(REPO)  # the configs' relative paths (../shared/data/camvid)
    wandb_offline(monkeypatch)
    return config


def wandb_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B as a user without an account has it (offline: the run written under ``wandb/``),
    not the suite's in-process default (disabled, ``tests/conftest.py``)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_max_steps_inside_an_epoch_leaves_last_and_resumes(
    shipped: ShippedConfig, tmp_path: Path
) -> None:
    stop = shipped.steps_per_epoch - 1 if shipped.tool == "seg" else shipped.steps_per_epoch - 2
    more = stop + (2 if shipped.tool == "seg" else 4)
    stop, more = shipped.stops or (stop, more)
    cli = shipped.run(tmp_path, f"--trainer.max_steps={stop}")
    assert cli.trainer.global_step == stop
    (last,) = _last_checkpoints(tmp_path)
    assert _step(last) == stop

    resumed = shipped.run(tmp_path, f"--trainer.max_steps={more}", "--ckpt_path=last")
    assert resumed.trainer.global_step == more
    (last,) = _last_checkpoints(tmp_path)  # the same run folder, continued
    assert _step(last) == more


def test_max_time_leaves_last_at_the_last_step(shipped: ShippedConfig, tmp_path: Path) -> None:
    cli = shipped.run(tmp_path, "--trainer.max_time=00:00:00:02")
    assert cli.trainer.global_step > 0
    (last,) = _last_checkpoints(tmp_path)
    assert _step(last) == cli.trainer.global_step


class StopAfterStep(Callback):
    """Stop training after optimiser step ``step`` (inside an epoch), as early stopping or a
    scheduler's stop would: the run's schedule (``max_steps``) stays that of the whole run."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


@pytest.mark.parametrize("index", [0, 9], ids=["fcn8s_fashion", "dcgan_folder"])
def test_a_run_resumed_inside_an_epoch_equals_an_uninterrupted_one(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped inside an epoch and resumed, training continues with the batches the epoch had
    not trained (``upsample.core.sampling.ResumableDataLoader``), in the epoch's order and then the
    next epoch's: the weights equal those of one run of the same length. With loader worker
    processes, as the configs have them (a multi-process loader draws its first indices early).
    """
    shipped = CONFIGS[index]
    monkeypatch.chdir(REPO)
    wandb_offline(monkeypatch)
    per_epoch = shipped.steps_per_epoch
    stop, end = per_epoch // 2 + (1 if shipped.tool == "seg" else 0), per_epoch + per_epoch // 2
    schedule = [f"--trainer.max_steps={end}", "--data.num_workers=2"]
    whole = shipped.run(tmp_path / "whole", *schedule)
    stopper = [f"--trainer.callbacks+={__name__}.StopAfterStep", f"--trainer.callbacks.step={stop}"]
    parts = shipped.run(tmp_path / "parts", *schedule, *stopper)
    assert parts.trainer.global_step == stop
    resumed = shipped.run(tmp_path / "parts", *schedule, "--ckpt_path=last")
    assert whole.trainer.global_step == resumed.trainer.global_step == end
    expected, found = whole.model.state_dict(), resumed.model.state_dict()
    for key, value in expected.items():
        assert torch.equal(value, found[key]), key
