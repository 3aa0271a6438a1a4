"""End-to-end ``gan fit`` / ``gan fid`` runs on tiny data, and an exact resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from gan.cli import main
from tests.gan.conftest import fit_args, make_image_folder, run_gan_cli
from upsample.core.datasets import fashion_mnist_dir

pytestmark = pytest.mark.slow


def _metrics(run: Path) -> dict[str, list[float]]:
    """Non-empty values of each column of a run's metrics.csv."""
    with open(run / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    return {key: [float(row[key]) for row in rows if row[key]] for key in rows[0]}


def _fashion_available() -> bool:
    try:
        fashion_mnist_dir(download=False)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.precision
@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST idx files not found locally")
def test_fit_fashion_hinge_with_fid(tmp_path: Path) -> None:
    args = fit_args(
        tmp_path,
        tmp_path,
        "--model.loss=hinge",
        "--model.fid_every_n_epochs=1",
        "--model.fid_features=random",
        "--model.kid_subset_size=4",
    )
    args = [
        a for a in args if not a.startswith(("--data.format", "--data.root", "--data.channels"))
    ]
    run_gan_cli(
        [
            *args,
            "--data.format=fashion",
            "--data.channels=1",
            "--data.max_train_images=12",
            "--data.max_val_images=7",
        ]
    )
    run = tmp_path / "runs" / "gan" / "version_0"
    metrics = _metrics(run)
    assert len(metrics["train/loss_d_step"]) == 3  # 12 images, batch 4
    assert metrics["val/fid_num_real"] == [7.0] and metrics["val/fid_num_fake"] == [7.0]
    assert metrics["val/fid"][0] > 0 and "val/kid" in metrics
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    assert len(list((run / "images" / "samples").glob("*.png"))) == 1
    cached = list((tmp_path / "fid_cache").glob("fashion-test-32px-1ch-pad-n7__random64*.pt"))
    assert len(cached) == 1 and torch.load(cached[0]).shape == (7, 64)


def test_fit_folder_bce_smoothing_bf16_with_a_broken_file(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "images")
    (data / "part1" / "truncated.png").write_bytes(
        (data / "part1" / "image_01.png").read_bytes()[:60]
    )
    with pytest.warns(UserWarning, match=r"truncated\.png"):
        run_gan_cli(
            fit_args(
                tmp_path,
                data,
                "--model.label_smoothing=0.1",
                "--model.ema_decay=0.5",
                "--model.channels_last=true",
                "--trainer.precision=bf16-mixed",
            )
        )
    checkpoint = torch.load(
        tmp_path / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False
    )
    state = checkpoint["state_dict"]
    assert int(state["ema.n_averaged"]) == 3  # one EMA update per batch: 12 images, batch 4
    key = "net.layers.project.0.weight"
    assert not torch.equal(state[f"ema.module.{key}"], state[f"generator.{key}"])
    assert checkpoint["hyper_parameters"]["label_smoothing"] == 0.1


def test_fid_command_on_checkpoint_and_folder(
    trained_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    data = make_image_folder(tmp_path / "images", count=6)
    common = [
        "--fid_features=random",
        f"--cache_dir={tmp_path / 'cache'}",
        "--kid_subset_size=4",
        "--data.format=folder",
        f"--data.root={data}",
        "--data.channels=3",
        "--split=train",
    ]
    for source in (f"--ckpt_path={trained_checkpoint}", f"--images={data}"):
        with pytest.raises(SystemExit) as status:
            main(["fid", source, "--num=5", *common])
        assert status.value.code == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("fid: ") and lines[1].startswith("kid: ")
        assert "vs 6 real images" in lines[2]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # real features computed once
    with pytest.raises(SystemExit) as status:
        main(["fid", f"--images={tmp_path / 'missing'}", *common])
    assert status.value.code == 2


@pytest.mark.precision
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "images", count=8)

    def fit(root: Path, *extra: str) -> dict:
        run_gan_cli(fit_args(root, data, *extra))
        return torch.load(
            root / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False
        )

    whole = fit(tmp_path / "whole", "--trainer.max_epochs=2")
    fit(tmp_path / "parts", "--trainer.max_epochs=1")
    resumed = fit(tmp_path / "parts", "--trainer.max_epochs=2", "--ckpt_path=last")
    assert resumed["global_step"] == whole["global_step"]
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    for mine, theirs in zip(whole["optimizer_states"], resumed["optimizer_states"], strict=True):
        for index, state in mine["state"].items():
            assert torch.equal(state["exp_avg"], theirs["state"][index]["exp_avg"])


@pytest.mark.slow
def test_gan_fit_with_compile_trains(tmp_path: Path, image_folder: Path) -> None:
    """``gan fit --model.compile true``: the generator and the critic run compiled
    (``AdversarialModule._network``), the EMA follows the generator."""
    from gan.cli import run_cli

    cli = run_cli(fit_args(tmp_path, image_folder, "--model.compile=true", "--trainer.max_steps=4"))
    assert set(cli.model._compiled) == {"generator", "discriminator"}
    assert cli.trainer.global_step == 4 and int(cli.model.ema.n_averaged) == 2
