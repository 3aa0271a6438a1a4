"""OASIS through the commands users run: ``gan fit`` with the shipped config (progress bar, W&B
offline, sample grids, checkpoints) at tiny sizes, ``--ckpt_path last`` resuming exactly,
``gan translate --seed``, ``gan export`` to ONNX with the noise as an input (parity with PyTorch
at two sizes), and loading that runs no code from the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.tasks import task_of
from gan.translation.loading import load_translator, translator_kind
from gan.translation.oasis import OASISModule
from gan.translation.paired_data import InputSpec
from tests import processes
from tests.gan.conftest import run_gan_cli
from tests.gan.test_gan_pix2pix import make_paired_folder, translator_fit_args
from upsample.core.checkpoint import UntrustedCheckpointError
from upsample.core.seeding import seeded

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs/gan/oasis_camvid.yaml"
#: the shipped config at a tiny size, on a ``make_paired_folder`` folder (3 classes + void)
TINY_OASIS_ARGS = [
    "--data.num_classes=3",
    "--data.image_size=[16, 24]",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--model.ngf=2",
    "--model.num_blocks=3",
    "--model.noise_channels=2",
    "--model.spade_hidden=4",
    "--model.ndf=2",
    "--model.discriminator_widths=[1, 2]",
    "--model.discriminator_decoder=4",
    "--model.num_sample_images=3",
]


def fit_args(root: Path, data: Path, *extra: str) -> list[str]:
    return translator_fit_args(CONFIG, TINY_OASIS_ARGS, root, data, *extra)


def last(root: Path) -> Path:
    return root / "runs" / "oasis" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``last.ckpt`` of one epoch of ``gan fit`` run as the console script runs it, in a process
    of its own with the shipped config's defaults (progress bar, W&B offline without a key)."""
    root = tmp_path_factory.mktemp("oasis")
    data = make_paired_folder(root / "data", count=4)
    command = processes.python_command(
        "upsample_app.console", "gan", *fit_args(root, data, "--trainer.max_epochs=1")
    )
    result = processes.run(command, root, timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "Epoch 0" in result.output  # the progress bar ran
    return last(root)


def test_the_config_names_the_oasis_task() -> None:
    assert task_of(["fit", "--config", str(CONFIG)]) == "oasis"


@pytest.mark.slow
def test_fit_writes_grids_checkpoints_and_an_offline_wandb_run(trained: Path) -> None:
    run = trained.parent.parent
    assert len(list((run / "images" / "samples").glob("*.png"))) == 1
    assert list(run.rglob("wandb/offline-run-*"))
    assert "task: oasis" in (run / "config.yaml").read_text()
    checkpoint = torch.load(trained, weights_only=True)
    assert translator_kind(checkpoint["hyper_parameters"]) == "oasis"
    assert any(key.startswith("ema.module.") for key in checkpoint["state_dict"])
    generator, spec = load_translator(trained)
    assert spec.num_classes == 3 and generator.noise_channels == 2


@pytest.mark.slow
def test_resume_from_last_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    data = make_paired_folder(tmp_path / "data", count=4)
    off = ["--wandb=false"]
    run_gan_cli(fit_args(tmp_path / "whole", data, "--trainer.max_epochs=2", *off))
    run_gan_cli(fit_args(tmp_path / "parts", data, "--trainer.max_epochs=1", *off))
    run_gan_cli(
        fit_args(tmp_path / "parts", data, "--trainer.max_epochs=2", "--ckpt_path=last", *off)
    )
    whole = torch.load(last(tmp_path / "whole"), weights_only=True)
    resumed = torch.load(last(tmp_path / "parts"), weights_only=True)
    assert resumed["global_step"] == whole["global_step"] == 8  # 2 batches x 2 epochs x (D, G)
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


@pytest.mark.slow
def test_translate_with_a_seed(trained: Path, tmp_path: Path) -> None:
    from gan.cli import main

    labels = tmp_path / "labels"
    labels.mkdir()
    Image.fromarray(np.array([[0, 1, 2, 255] * 6] * 16, np.uint8)).save(labels / "a.png")

    def translate(output: str, seed: int) -> bytes:
        args = ["translate", "--ckpt_path", str(trained), "--input", str(labels)]
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--output", str(tmp_path / output), "--seed", str(seed)])
        assert exit_info.value.code == 0
        return (tmp_path / output / "a.png").read_bytes()

    first = translate("one", 1)
    assert Image.open(tmp_path / "one" / "a.png").size == (24, 16)
    assert translate("again", 1) == first
    assert translate("other", 2) != first, "the seed drives the 3D noise"


@pytest.mark.slow
def test_export_to_onnx_matches_pytorch_at_two_sizes(trained: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from gan.console import main
    from gan.translation.deploy import OnnxTranslator

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt_path", str(trained), "--output", str(tmp_path / "t.onnx")])
    assert exit_info.value.code == 0
    engine = OnnxTranslator(tmp_path / "t.onnx")
    generator, spec = load_translator(trained)
    assert engine.spec == spec and engine.noise_channels == 2
    for size in ((16, 24), (37, 45)):
        labels = spec.encode_labels(torch.randint(0, 4, (3, *size)))
        noise = torch.randn(3, 2)
        with torch.no_grad():
            expected = generator(labels, noise)
        torch.testing.assert_close(engine(labels, noise), expected, rtol=1e-4, atol=1e-5)


def test_pix2pix_has_no_onnx_export(tmp_path: Path) -> None:
    from gan.translation.deploy import export_translator
    from upsample.blocks import UNetGenerator
    from upsample.core.deploy import DeployError

    spec = InputSpec("labels", (16, 16), num_classes=3)
    with pytest.raises(DeployError, match="pix2pix's dropout noise"):
        export_translator(UNetGenerator(4, ngf=2, depth=2), spec, tmp_path / "p.onnx")


class Marker:
    """Unpickling it would create a file (what a hostile checkpoint could do instead)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.path),))


def test_loading_runs_no_code_from_the_file(tmp_path: Path) -> None:
    from upsample.core.checkpoint import save_module_checkpoint

    spec = InputSpec("labels", (8, 8), num_classes=2).to_dict()
    module = OASISModule(spec, ngf=1, num_blocks=2, noise_channels=1, spade_hidden=2, ndf=1)
    path = save_module_checkpoint(module, tmp_path / "oasis.ckpt")
    load_translator(path)  # a plain checkpoint loads
    checkpoint = torch.load(path, weights_only=True)
    marker = tmp_path / "ran.txt"
    checkpoint["hyper_parameters"]["note"] = Marker(str(marker))
    torch.save(checkpoint, tmp_path / "hostile.ckpt")
    for load in (load_translator, OASISModule.load_from_checkpoint):
        with pytest.raises(UntrustedCheckpointError, match="hostile.ckpt: refused"):
            load(tmp_path / "hostile.ckpt")
    assert not marker.exists()


def test_translate_module_and_loaded_generator_agree(tmp_path: Path) -> None:
    """The module's ``translate`` (EMA generator, seeded noise) is what ``load_translator``'s
    generator gives under the same seed: ``gan translate`` and the app see the trained model."""
    from upsample.core.checkpoint import save_module_checkpoint

    spec = InputSpec("labels", (8, 12), num_classes=2)
    module = OASISModule(spec.to_dict(), ngf=1, num_blocks=2, noise_channels=2, spade_hidden=2)
    path = save_module_checkpoint(module, tmp_path / "oasis.ckpt")
    inputs = spec.encode_labels(torch.randint(0, 3, (2, 8, 12)))
    generator, _ = load_translator(path)
    with torch.no_grad(), seeded(7):
        expected = generator(inputs)
    torch.testing.assert_close(module.translate(inputs, seed=7), expected)


@pytest.mark.slow
def test_an_encoder_discriminator_and_a_feature_loss_train(tmp_path: Path) -> None:
    """The options for short budgets: an FCN discriminator on an encoder and the generator's
    perceptual loss on a frozen encoder (random weights here; ImageNet's in the CPU recipe)."""
    data = make_paired_folder(tmp_path / "data", count=4)
    options = [
        "--model.discriminator_encoder=resnet18s",
        "--model.discriminator_weights=null",
        "--model.feature_loss_weight=1.0",
        "--model.labelmix_weight=5",
        "--model.lr_g=0.0001",
        "--model.feature_encoder=resnet18s",
        "--model.feature_weights=null",
        "--trainer.max_epochs=1",
        "--wandb=false",
    ]
    run_gan_cli(fit_args(tmp_path, data, *options))
    checkpoint = torch.load(last(tmp_path), weights_only=True)
    keys = checkpoint["state_dict"]
    assert any(key.startswith("discriminator.encoder.") for key in keys)
    assert not any("feature" in key for key in keys), "the frozen encoder is not saved"
    metrics = (last(tmp_path).parent.parent / "metrics.csv").read_text()
    assert "train/feature_epoch" in metrics


@pytest.mark.slow
def test_validate_a_checkpoint(trained: Path, tmp_path: Path) -> None:
    """``gan validate`` with the shipped config scores the EMA generator's photos (L1, FID)."""
    from gan.cli import run_cli

    data = trained.parents[4] / "data"
    args = fit_args(tmp_path, data, f"--ckpt_path={trained}", "--wandb=false")
    args[0] = "validate"
    fid = ["--model.fid_features=random", "--model.kid_subset_size=2"]
    cli = run_cli([*args, *fid, f"--model.fid_cache_dir={tmp_path / 'fid'}"])
    metrics = cli.trainer.callback_metrics
    assert "val/l1" in metrics and "val/fid" in metrics
