"""The console scripts' documented exit statuses (``upsample.core.cli.exit_on_user_errors``): a loss
that becomes NaN ends ``seg fit`` and ``gan fit`` with status 3 and a message naming the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from upsample.core.cli import EXIT_NON_FINITE_LOSS

REPO = Path(__file__).resolve().parents[1]
EXPLODE = "1e30"  # Adam/AdamW steps of this size overflow the weights within two steps


def test_seg_fit_non_finite_loss_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from seg.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "fit", "--config", str(REPO / "configs/seg/fcn8s_fashion.yaml"),
                "--data.root", str(tmp_path / "data"), "--data.num_train", "8",
                "--data.num_val", "2", "--data.canvas_size", "48", "--data.crop_size", "48",
                "--data.batch_size", "4", "--data.num_workers", "0", "--model.width", "0.0625",
                "--model.lr", EXPLODE, "--trainer.max_epochs", "3", "--wandb", "false",
                "--trainer.default_root_dir", str(tmp_path / "runs"),
            ]
        )  # fmt: skip
    assert stopped.value.code == EXIT_NON_FINITE_LOSS
    error = capsys.readouterr().err
    assert "training loss is not finite" in error and "optimizer step" in error


def test_gan_fit_non_finite_loss_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from gan.cli import main
    from tests.gan.conftest import fit_args, make_image_folder

    images = make_image_folder(tmp_path / "images", count=8)
    args = fit_args(tmp_path, images, f"--model.lr_d={EXPLODE}", f"--model.lr_g={EXPLODE}")
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--trainer.max_epochs=4"])
    assert stopped.value.code == EXIT_NON_FINITE_LOSS
    assert "training loss is not finite" in capsys.readouterr().err
