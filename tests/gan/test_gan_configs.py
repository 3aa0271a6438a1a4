"""Every shipped GAN config parses with the CLI and builds its model and data module."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.gan.conftest import run_gan_cli

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "gan").glob("*.yaml"))


def test_configs_exist() -> None:
    names = {path.name for path in CONFIGS}
    assert {"dcgan_fashion.yaml", "dcgan_folder.yaml", "dcgan_rgb64.yaml"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_config_parses(config: Path, image_folder: Path, capsys: pytest.CaptureFixture) -> None:
    is_folder = yaml.safe_load(config.read_text())["data"]["format"] == "folder"
    extra = [f"--data.root={image_folder}"] if is_folder else []
    with pytest.raises(SystemExit) as status:
        run_gan_cli(["fit", f"--config={config}", *extra, "--print_config"])
    assert status.value.code == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    if resolved.get("task") == "oasis":  # the CPU recipe: OASIS with a perceptual loss
        assert "input_spec" not in resolved["model"]
        assert resolved["data"]["image_size"] == [96, 128]
        assert resolved["model"]["lr_g"] == 4e-4 and resolved["model"]["lr_d"] == 4e-4
        assert resolved["model"]["feature_loss_weight"] == 1.0
        assert resolved["model"]["betas"] == [0.0, 0.999]
        return
    if resolved.get("task") == "pix2pix":  # the input encoding comes from the data module
        assert "input_spec" not in resolved["model"] and resolved["model"]["patch_size"] == 70
        assert resolved["data"]["image_size"] == [96, 128]
        assert resolved["model"]["lr_g"] == 2e-4 and resolved["model"]["betas"] == [0.5, 0.999]
        return
    # image size and channels are set once, under data, and linked into the model
    assert "image_size" not in resolved["model"] and "channels" not in resolved["model"]
    assert resolved["data"]["image_size"] in (32, 64, 128)
    assert resolved["model"]["lr_g"] == 2e-4 and resolved["model"]["betas"] == [0.5, 0.999]
