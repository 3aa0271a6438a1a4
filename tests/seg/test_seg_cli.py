"""End to end through the ``seg`` command: fit on every data format, checkpoint -> folder
inference on awkward files, LightningCLI prediction, bare-network loading, bad checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from seg.cli import run_cli
from seg.console import main  # the console script: folder inference and the LightningCLI
from seg.module import SegmentationModule
from seg.network_io import load_network
from tests.seg.helpers import random_pair, write_folder_split, write_voc

pytestmark = pytest.mark.slow

CONFIG = "configs/seg/fcn8s_fashion.yaml"
LEGACY_CHECKPOINT = Path(__file__).parent / "checkpoints" / "flat_hparams_atrous.ckpt"
TINY_MODEL = ["--model.network.width", "0.0625", "--model.channels_last", "false"]
# The progress bar stays on, as users run the CLI; only the model summary table is left out.
QUIET = ["--trainer.enable_model_summary", "false"]


def data_args(format: str, root: Path) -> list[str]:
    args = ["--data.format", format, "--data.root", str(root), "--data.num_workers", "0"]
    if format == "fashion":
        args += ["--data.num_train", "4", "--data.num_val", "3", "--data.canvas_size", "48"]
        args += ["--data.crop_size", "48"]
    elif format == "folder":
        args += ["--data.num_classes", "3", "--data.crop_size", "32"]
    else:
        args += ["--data.crop_size", "32"]
    return [*args, "--data.batch_size", "2"]


CONFIGS = {
    "fashion": "configs/seg/atrous_fashion.yaml",
    "folder": "configs/seg/fcn8s_fashion.yaml",
    "voc": "configs/seg/voc_fcn8s.yaml",
}


@pytest.mark.parametrize("format", ["fashion", "folder", "voc"])
def test_fit_fast_dev_run(format: str, tmp_path: Path) -> None:
    """One training and one validation step through the CLI, one config per data format."""
    if format == "folder":
        write_folder_split(tmp_path / "data" / "train", 4)
        write_folder_split(tmp_path / "data" / "val", 2, seed=1, ignore_border=True)
    elif format == "voc":
        write_voc(tmp_path / "data")
    cli = run_cli(
        [
            "fit",
            "--config",
            CONFIG,
            *data_args(format, tmp_path / "data"),
            *TINY_MODEL,
            *QUIET,
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert cli.trainer.state.finished
    expected_classes = {"fashion": 11, "folder": 3, "voc": 21}[format]
    assert cli.model.hparams.num_classes == expected_classes
    assert "train/loss" in cli.trainer.callback_metrics
    assert "val/miou" in cli.trainer.callback_metrics


def fit_with_network(tmp_path: Path, network: str, *trainer_args: str) -> Any:
    """``seg fit`` of the shipped config on a tiny folder dataset with ``--model.network``."""
    write_folder_split(tmp_path / "data" / "train", 2)
    write_folder_split(tmp_path / "data" / "val", 2, seed=1)
    data = data_args("folder", tmp_path / "data")
    root = ["--trainer.default_root_dir", str(tmp_path / "runs")]
    args = ["fit", "--config", CONFIG, *data, "--model.network", network, *QUIET, *root]
    return run_cli([*args, *trainer_args])


def test_fit_a_network_given_by_class_path(tmp_path: Path) -> None:
    """A network module named in the config (``class_path`` + ``init_args``) trains through
    the same module; its hyperparameters keep both, so the config can build it again."""
    network = '{"class_path": "torch.nn.Conv2d", "init_args": '
    network += '{"in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1}}'
    cli = fit_with_network(tmp_path, network, "--trainer.fast_dev_run", "true")
    assert isinstance(cli.model.network, torch.nn.Conv2d)
    assert "val/miou" in cli.trainer.callback_metrics
    stored = cli.model.hparams.network
    assert stored["class_path"] == "torch.nn.Conv2d" and stored["init_args"]["padding"] == 1


def test_a_peer_network_fits_and_predicts_from_its_checkpoint(tmp_path: Path) -> None:
    """A ``seg.peers`` network named as the README shows trains through ``seg fit``; its
    checkpoint alone rebuilds it for ``seg predict`` (odd sizes: the peer pads inside)."""
    pytest.importorskip("segmentation_models_pytorch")
    pytest.importorskip("timm")
    network = '{"class_path": "seg.peers.SmpNetwork", "init_args": {"num_classes": 3, '
    network += '"architecture": "FPN", "encoder_weights": null}}'
    cli = fit_with_network(tmp_path, network, "--trainer.max_epochs", "1")
    assert cli.model.network.init_args["architecture"] == "FPN"
    (checkpoint,) = (tmp_path / "runs").rglob("last.ckpt")
    (tmp_path / "in").mkdir()
    image = random_pair(np.random.default_rng(0), 45, 37, 3)[0]
    Image.fromarray(image).save(tmp_path / "in" / "a.png")
    argv = ["predict", "--ckpt_path", str(checkpoint), "--input", str(tmp_path / "in")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--output", str(tmp_path / "out"), "--no_progress"])
    assert exit_info.value.code == 0
    assert Image.open(tmp_path / "out" / "masks" / "a.png").size == (37, 45)


@pytest.mark.parametrize("prefix", ["--model.network.", "--model."])
def test_architecture_options_in_either_spelling(
    prefix: str, capsys: pytest.CaptureFixture
) -> None:
    """``--model.network.encoder`` and the other architecture options set the network's config;
    so does their spelling of earlier versions (``--model.encoder`` ...)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            [
                "fit",
                "--config",
                CONFIG,
                f"{prefix}encoder",
                "resnet18s",
                f"{prefix}upsampler=resize_conv",
                f"{prefix}width",
                "0.5",
                "--print_config",
            ]
        )
    assert exit_info.value.code == 0
    network = yaml.safe_load(capsys.readouterr().out)["model"]["network"]
    assert (network["encoder"], network["upsampler"], network["width"]) == (
        "resnet18s",
        "resize_conv",
        0.5,
    )


def test_config_file_with_the_architecture_spelled_flat(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A config file of earlier versions (``model.encoder`` beside ``model.lr``) is read as if
    its architecture options were under ``model.network``, with a warning naming the file;
    later command-line options still override it."""
    shipped = yaml.safe_load(Path(CONFIG).read_text())
    network = shipped["model"].pop("network")
    shipped["model"].update(network, encoder="resnet18s", width=0.5)
    flat = tmp_path / "flat.yaml"
    flat.write_text(yaml.safe_dump(shipped))
    warning = r"flat\.yaml: model\.variant, model\.encoder"
    with pytest.warns(FutureWarning, match=warning), pytest.raises(SystemExit) as exit_info:
        run_cli(["fit", f"--config={flat}", "--model.network.width", "0.25", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["model"]
    assert {**network, "encoder": "resnet18s", "width": 0.25}.items() <= printed["network"].items()
    assert printed["lr"] == shipped["model"]["lr"] and "encoder" not in printed


def test_validate_a_checkpoint_of_an_earlier_version(tmp_path: Path) -> None:
    """``seg validate --ckpt_path`` with a checkpoint whose architecture is in flat
    hyperparameters (written before the network had its own config) rebuilds that network."""
    write_folder_split(tmp_path / "data" / "train", 2)
    write_folder_split(tmp_path / "data" / "val", 2, seed=1)
    cli = run_cli(
        [
            "validate",
            "--config",
            CONFIG,
            *data_args("folder", tmp_path / "data"),
            *QUIET,
            "--ckpt_path",
            str(LEGACY_CHECKPOINT),
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
            "--wandb",
            "false",
        ]
    )
    assert cli.model.hparams.network["variant"] == "atrous"
    assert cli.model.network.output_stride == 16
    assert "val/miou" in cli.trainer.callback_metrics


@pytest.mark.parametrize("config", ["fcn32s_fashion", "fcn16s_fashion"])
def test_other_configs_parse(config: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["fit", "--config", f"configs/seg/{config}.yaml", "--print_config"])
    assert exit_info.value.code == 0
    assert f"variant: {config.split('_')[0]}" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpoint of a few training steps on a tiny folder dataset, with the config file."""
    tmp = tmp_path_factory.mktemp("trained")
    write_folder_split(tmp / "data" / "train", 4)
    write_folder_split(tmp / "data" / "val", 2, seed=1)
    run_cli(
        [
            "fit",
            "--config",
            CONFIG,
            *data_args("folder", tmp / "data"),
            *TINY_MODEL,
            *QUIET,
            "--trainer.max_epochs",
            "2",
            "--trainer.default_root_dir",
            str(tmp / "runs"),
            "--wandb",
            "false",
        ]
    )
    run = tmp / "runs" / "seg" / "version_0"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints
    assert any(name.startswith("best-epoch") for name in checkpoints)
    return {
        "checkpoint": run / "checkpoints" / "last.ckpt",
        "config": run / "config.yaml",
        "data": tmp / "data",
        "tmp": tmp,
    }


def write_awkward_folder(folder: Path) -> dict[str, tuple[int, int]]:
    """Images of every awkward kind; returns relative output stem -> expected (width, height)."""
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    rgb, _ = random_pair(rng, 37, 53)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb).convert("L").save(folder / "sub" / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display: 50x30 stored -> 30x50 shown
    Image.fromarray(rgb[:30, :50]).save(folder / "rotated.jpg", exif=exif)
    big, _ = random_pair(rng, 300, 280)
    Image.fromarray(big).save(folder / "big.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    return {
        "rgb": (53, 37),
        "sub/gray": (53, 37),
        "rgba": (53, 37),
        "deep": (53, 37),
        "rotated": (30, 50),
        "big": (280, 300),
    }


@pytest.mark.precision
def test_predict_round_trip_on_awkward_folder(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    expected = write_awkward_folder(tmp_path / "in")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "predict",
                "--ckpt_path",
                str(trained["checkpoint"]),
                "--input",
                str(tmp_path / "in"),
                "--output",
                str(tmp_path / "out"),
                "--tile_size",
                "128",
                "--overlap",
                "16",
                "--batch_size",
                "4",
                "--tta",
                "--save_probabilities",
                "--num_workers",
                "1",
                "--no_progress",
            ]
        )
    assert exit_info.value.code == 1  # something was skipped
    err = capsys.readouterr().err
    assert "corrupt.jpg" in err and "6 image(s) written, 1 skipped" in err
    for stem, size in expected.items():
        mask = Image.open(tmp_path / "out" / "masks" / f"{stem}.png")
        assert mask.mode == "P" and mask.size == size, stem
        assert int(np.asarray(mask).max()) < 3
        assert Image.open(tmp_path / "out" / "overlays" / f"{stem}.jpg").size == size
        probabilities = np.load(tmp_path / "out" / "probabilities" / f"{stem}.npy")
        assert probabilities.shape == (3, size[1], size[0])
    assert not list((tmp_path / "out").rglob("corrupt*"))
    assert not list((tmp_path / "out").rglob(".*tmp*"))  # no temporary files left


def test_onnxruntime_engine_writes_the_same_masks_on_the_awkward_folder(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``seg export`` of the trained checkpoint, then ``seg predict`` with each engine at the
    same numerics (float32) over the awkward folder: the same files, the same masks (>= 99.9% of
    the pixels of every image; a pixel may only differ where two classes tie)."""
    pytest.importorskip("onnxruntime")
    expected = write_awkward_folder(tmp_path / "in")
    model = tmp_path / "model.onnx"
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt_path", str(trained["checkpoint"]), "--output", str(model)])
    assert exit_info.value.code == 0
    common = ["--input", str(tmp_path / "in"), "--tile_size", "128", "--overlap", "16"]
    common += ["--batch_size", "4", "--tta", "--num_workers", "1", "--no_progress"]
    engines = {
        "torch": ["--ckpt_path", str(trained["checkpoint"]), "--precision", "32"],
        "onnxruntime": ["--engine", "onnxruntime", "--model", str(model)],
    }
    for name, engine in engines.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["predict", *engine, *common, "--output", str(tmp_path / name)])
        assert exit_info.value.code == 1  # corrupt.jpg skipped by both
        assert "6 image(s) written, 1 skipped" in capsys.readouterr().err
    for stem, size in expected.items():
        masks = [Image.open(tmp_path / name / "masks" / f"{stem}.png") for name in engines]
        assert masks[0].size == masks[1].size == size
        assert masks[0].getpalette() == masks[1].getpalette()
        agreement = (np.asarray(masks[0]) == np.asarray(masks[1])).mean()
        assert agreement >= 0.999, (stem, agreement)
    for name in engines:
        assert not list((tmp_path / name).rglob("corrupt*"))
        assert not list((tmp_path / name).rglob(".*tmp*"))


def test_lightning_cli_predict_with_config(trained: dict[str, Path], tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for name, size in (("a", (40, 41)), ("b", (33, 64))):
        Image.fromarray(random_pair(rng, *size)[0]).save(images / f"{name}.png")
    run_cli(
        [
            "predict",
            "--config",
            str(trained["config"]),
            "--ckpt_path",
            str(trained["checkpoint"]),
            "--data.predict_dir",
            str(images),
            "--predict_output",
            str(tmp_path / "out"),
            "--trainer.logger",
            "false",
        ]
    )
    assert Image.open(tmp_path / "out" / "masks" / "b.png").size == (64, 33)
    assert (tmp_path / "out" / "overlays" / "a.jpg").is_file()


def test_load_network_matches_lightning_module(trained: dict[str, Path]) -> None:
    network = load_network(trained["checkpoint"])
    module = SegmentationModule.load_from_checkpoint(trained["checkpoint"]).eval()
    images = torch.rand(2, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(network(images), module(images), rtol=0, atol=0)
    assert not isinstance(network, SegmentationModule)
    assert all(not key.startswith("network.") for key in network.state_dict())


def test_corrupt_and_mismatched_checkpoints(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(trained["checkpoint"].read_bytes()[:5000])
    (tmp_path / "in").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "predict",
                "--ckpt_path",
                str(corrupt),
                "--input",
                str(tmp_path / "in"),
                "--output",
                str(tmp_path / "out"),
            ]
        )
    assert exit_info.value.code == 2
    assert f"{corrupt}: not a readable PyTorch checkpoint" in capsys.readouterr().err

    checkpoint = torch.load(trained["checkpoint"], weights_only=False)
    checkpoint["hyper_parameters"]["num_classes"] = 5
    mismatched = tmp_path / "mismatched.ckpt"
    torch.save(checkpoint, mismatched)
    from upsample.core.checkpoint import CheckpointError

    with pytest.raises(
        CheckpointError, match=r"mismatched\.ckpt: checkpoint does not match.*shape"
    ):
        load_network(mismatched)
