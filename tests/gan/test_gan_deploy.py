"""Deploying a generator: ONNX and torch.export round trips for every image size and upsampler,
``gan export`` and ``gan sample --engine onnxruntime`` against the PyTorch engine, errors.

Tolerance: for the same noise, max |images_onnx - images_torch| <= 1e-4 (images in [-1, 1],
float32 on both sides); written 8-bit images differ by at most one level (a value at a rounding
boundary) on at most 0.1% of the pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan.console import main
from gan.dcgan.deploy import OnnxGenerator, export_generator
from gan.dcgan.models import Generator
from tests.without_lightning import run_without_lightning
from upsample.core.deploy import DeployError, load_pt2

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOLERANCE = 1e-4


def tiny_generator(image_size: int = 32, upsampler: str = "transposed", channels: int = 1):
    """A small generator with random weights and batch-norm statistics, in eval mode."""
    torch.manual_seed(0)
    generator = Generator(
        nz=8, ngf=4, channels=channels, image_size=image_size, upsampler=upsampler
    ).eval()
    for module in generator.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return generator


def check_round_trip(generator: Generator, path: Path) -> None:
    """The exported file against PyTorch for the same noise, batch sizes 1 and 5 (capture: 2)."""
    run = OnnxGenerator(path) if path.suffix == ".onnx" else load_pt2(path)[0]
    noise = torch.randn(5, generator.nz, generator=torch.Generator().manual_seed(3))
    for batch in (noise[:1], noise):
        with torch.no_grad():
            expected = generator(batch)
            actual = run(batch)
        assert actual.shape == expected.shape
        assert float((actual - expected).abs().max()) <= TOLERANCE


def test_generator_onnx_round_trip_and_metadata(tmp_path: Path) -> None:
    import onnx

    generator = tiny_generator(32, channels=3)
    path = export_generator(generator, tmp_path / "generator.onnx", source="last.ckpt")
    check_round_trip(generator, path)
    metadata = {e.key: e.value for e in onnx.load(path).metadata_props}
    assert metadata["toolkit.kind"] == "generator"
    assert (metadata["nz"], metadata["channels"], metadata["image_size"]) == ("8", "3", "32")
    assert json.loads(metadata["output_range"]) == [-1.0, 1.0]
    assert metadata["weights"] == "ema" and metadata["source"] == "last.ckpt"
    engine = OnnxGenerator(path)
    assert (engine.nz, engine.channels, engine.image_size) == (8, 3, 32)
    with pytest.raises(
        DeployError, match=r"generator\.onnx: the model takes noise of shape \(N, 8"
    ):
        engine(torch.randn(2, 9))


@pytest.mark.slow
@pytest.mark.parametrize("upsampler", ["transposed", "resize_conv", "pixel_shuffle"])
@pytest.mark.parametrize("image_size", [32, 64, 128])
def test_every_generator_exports(image_size: int, upsampler: str, tmp_path: Path) -> None:
    generator = tiny_generator(image_size, upsampler)
    check_round_trip(generator, export_generator(generator, tmp_path / "generator.onnx"))


def test_generator_pt2_round_trip(tmp_path: Path) -> None:
    generator = tiny_generator(64, "resize_conv")
    path = export_generator(generator, tmp_path / "generator.pt2", weights="raw")
    check_round_trip(generator, path)
    assert load_pt2(path)[1]["weights"] == "raw"


def run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def read_pixels(folder: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(folder).as_posix(): np.asarray(Image.open(p), dtype=np.int16)
        for p in sorted(folder.rglob("*.png"))
    }


@pytest.mark.slow
def test_gan_export_and_sample_with_both_engines(
    trained_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for name in ("generator.onnx", "generator.pt2"):
        output = tmp_path / name
        args = ["export", "--ckpt_path", str(trained_checkpoint), "--output", str(output)]
        assert run_main(args) == 0
        assert output.is_file()
    raw = tmp_path / "raw.onnx"
    args = ["export", "--ckpt_path", str(trained_checkpoint), "--output", str(raw), "--no_ema"]
    assert run_main(args) == 0
    assert OnnxGenerator(raw).model.metadata["weights"] == "raw"
    sample = ["sample", "--num", "9", "--seed", "5", "--interpolate", "4", "--pairs", "2"]
    assert (
        run_main([*sample, "--ckpt_path", str(trained_checkpoint), "--output", str(tmp_path / "t")])
        == 0
    )
    ort = ["--engine", "onnxruntime", "--model", str(tmp_path / "generator.onnx")]
    assert run_main([*sample, *ort, "--output", str(tmp_path / "o")]) == 0
    assert "13 file(s) written" in capsys.readouterr().err
    torch_files, ort_files = read_pixels(tmp_path / "t"), read_pixels(tmp_path / "o")
    assert sorted(torch_files) == sorted(ort_files) and len(torch_files) == 13
    for name, pixels in torch_files.items():
        difference = np.abs(pixels - ort_files[name])
        assert difference.max() <= 1 and (difference > 0).mean() <= 1e-3, name


def test_sample_errors_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    generator_file = export_generator(tiny_generator(), tmp_path / "g.onnx")
    out = tmp_path / "out"
    cases = [
        (["--engine", "onnxruntime"], "--engine onnxruntime needs --model"),
        (["--engine", "onnxruntime", "--model", str(generator_file), "--no_ema"], "--no_ema"),
        (["--model", str(generator_file)], "--model is for onnxruntime"),
        (
            ["--engine", "onnxruntime", "--model", str(tmp_path / "none.onnx")],
            "none.onnx: file not",
        ),
        (
            ["--engine", "onnxruntime", "--model", str(generator_file), "--interpolate", "1"],
            "at least 2",
        ),
    ]
    for extra, message in cases:
        assert run_main(["sample", *extra, "--output", str(out), "--num", "4"]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists() or not list(out.rglob("*"))
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    ort = ["--engine", "onnxruntime", "--model", str(generator_file)]
    assert run_main(["sample", *ort, "--output", str(blocker / "x")]) == 2
    assert f"{blocker / 'x'}: cannot write into this output folder" in capsys.readouterr().err


def test_gan_export_rejects_a_checkpoint_that_is_not_a_gan(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    not_ours = tmp_path / "seg.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"num_classes": 3}}, not_ours)
    output = tmp_path / "out" / "generator.onnx"
    assert run_main(["export", "--ckpt_path", str(not_ours), "--output", str(output)]) == 2
    assert f"{not_ours}: hyper_parameters lack" in capsys.readouterr().err
    assert not output.exists()


def test_a_segmentation_model_is_not_a_generator(tmp_path: Path) -> None:
    import onnx

    path = export_generator(tiny_generator(), tmp_path / "g.onnx")
    model = onnx.load(path)
    for entry in model.metadata_props:
        if entry.key == "toolkit.kind":
            entry.value = "segmentation"
    onnx.save(model, tmp_path / "seg.onnx")
    with pytest.raises(DeployError, match=r"seg\.onnx: a segmentation model; expected a generator"):
        OnnxGenerator(tmp_path / "seg.onnx")


def test_onnxruntime_sampling_runs_without_lightning(tmp_path: Path) -> None:
    path = export_generator(tiny_generator(), tmp_path / "g.onnx")
    args = ["sample", "--engine", "onnxruntime", "--model", str(path), "--num", "4"]
    args += ["--output", str(tmp_path / "out")]
    result = run_without_lightning("gan.console", args)
    assert "exit 0" in result.stdout, result.stderr
    assert len(list((tmp_path / "out" / "samples").glob("*.png"))) == 4
