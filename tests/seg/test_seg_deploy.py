"""Deploying a segmenter: ONNX and torch.export round trips for every variant on odd sizes, the
ONNX Runtime engine behind folder inference, metadata, and errors that name the file or layer.

Tolerance of every round trip: max |logits_onnx - logits_torch| <= 1e-4 * max(1, max |logits|)
(float32 on both sides; measured differences are about 1e-6 relative), and the argmax masks agree
on at least 99.9% of the pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from seg.console import main
from seg.deploy import OnnxSegmenter, export_segmenter
from seg.inference.predictor import FolderPredictor
from seg.models import FCN, build_fcn
from seg.visualize import PALETTE
from tests.without_lightning import run_without_lightning
from upsample.core.deploy import OPSET, DeployError, load_pt2, toolkit_version

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ODD_SIZES = ((97, 131), (360, 480))  # one file serves both, a multiple of 32 and the minimum
RELATIVE_TOLERANCE = 1e-4
MIN_AGREEMENT = 0.999


def tiny_fcn(variant: str = "fcn8s", num_classes: int = 3, seed: int = 0, **kwargs) -> FCN:
    """A small FCN with random weights and random batch-norm statistics (so that every layer
    matters), in eval mode."""
    torch.manual_seed(seed)
    kwargs.setdefault("width", 0.0625)
    network = build_fcn(variant, num_classes, **kwargs).eval()
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return network


def assert_logits_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    scale = max(1.0, float(expected.abs().max()))
    difference = float((actual - expected).abs().max())
    assert difference <= RELATIVE_TOLERANCE * scale, (difference, scale)
    agreement = float((actual.argmax(1) == expected.argmax(1)).float().mean())
    assert agreement >= MIN_AGREEMENT, agreement


def check_round_trip(network: FCN, path: Path) -> None:
    """``path`` exported once; ONNX Runtime (or the loaded .pt2 program) against PyTorch on odd
    sizes, batch sizes 1 and 2 (the capture used 2)."""
    if path.suffix == ".onnx":
        run = OnnxSegmenter(path)
    else:
        run, _ = load_pt2(path)
    generator = torch.Generator().manual_seed(1)
    smallest = (network.min_input_size, network.min_input_size + 1)
    for index, (height, width) in enumerate((*ODD_SIZES, (128, 160), smallest)):
        images = torch.rand(1 + index % 2, 3, height, width, generator=generator)
        with torch.no_grad():
            expected = network(images)
            actual = run(images)
        assert_logits_close(actual, expected)


VARIANTS = {
    "fcn32s": ("fcn32s", {}),
    "fcn16s": ("fcn16s", {}),
    "fcn8s": ("fcn8s", {}),
    "fcn8s-vgg_bn": ("fcn8s", {"encoder": "vgg_bn"}),
    "fcn8s-resize_conv": ("fcn8s", {"upsampler": "resize_conv"}),
    "fcn8s-pixel_shuffle": ("fcn8s", {"upsampler": "pixel_shuffle"}),
    "fcn8s-resnet18s": ("fcn8s", {"encoder": "resnet18s"}),
    "fcn8s-resnet50s": ("fcn8s", {"encoder": "resnet50s"}),
    "fcn8s-tv_resnet18": ("fcn8s", {"encoder": "tv_resnet18", "width": 1.0}),
    "atrous-aspp-os8": ("atrous", {}),
    "atrous-aspp-os16": ("atrous", {"output_stride": 16}),
    "atrous-dilated": ("atrous", {"context": "dilated"}),
    "atrous-8s-pixel_shuffle": ("atrous", {"decoder_variant": "8s", "upsampler": "pixel_shuffle"}),
    "fcn8s-grey": ("fcn8s", {"encoder": "vgg_bn", "in_channels": 1}),
}


def test_fcn8s_onnx_round_trip_on_odd_sizes(tmp_path: Path) -> None:
    network = tiny_fcn("fcn8s", encoder="vgg_bn")
    path = export_segmenter(network, tmp_path / "model.onnx")
    check_round_trip(network, path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_exports_to_onnx(name: str, tmp_path: Path) -> None:
    variant, kwargs = VARIANTS[name]
    network = tiny_fcn(variant, **kwargs)
    path = export_segmenter(network, tmp_path / "model.onnx")
    if network.in_channels == 3:
        check_round_trip(network, path)
    else:  # the engine takes the model's channel count
        engine = OnnxSegmenter(path)
        assert engine.in_channels == 1
        images = torch.rand(1, 1, 97, 131)
        with torch.no_grad():
            assert_logits_close(engine(images), network(images))


TIMM_ENCODERS = ("timm-resnet18", "timm-tf_efficientnet_lite0")


@pytest.mark.slow
@pytest.mark.parametrize("encoder", TIMM_ENCODERS)
def test_timm_encoder_exports_to_onnx(encoder: str, tmp_path: Path) -> None:
    pytest.importorskip("timm")
    from upsample import blocks

    if not hasattr(blocks, "TIMM_PREFIX"):
        pytest.skip("no timm encoders in this tree")
    network = tiny_fcn("fcn8s", encoder=encoder, width=1.0)
    check_round_trip(network, export_segmenter(network, tmp_path / "model.onnx"))


@pytest.mark.parametrize("variant", ["fcn8s", pytest.param("atrous", marks=pytest.mark.slow)])
def test_pt2_round_trip_and_metadata(variant: str, tmp_path: Path) -> None:
    network = tiny_fcn(variant)
    hparams = {"class_names": list("abc"), "network": {"variant": variant, "encoder": "vgg"}}
    path = export_segmenter(network, tmp_path / "model.pt2", hparams=hparams)
    check_round_trip(network, path)
    _, metadata = load_pt2(path)
    assert metadata["toolkit.kind"] == "segmentation"
    assert json.loads(metadata["class_names"]) == ["a", "b", "c"]
    # SegmentationModule's layout: the architecture under "network"
    assert metadata["hparams.variant"] == variant and metadata["hparams.encoder"] == "vgg"


def test_onnx_metadata_and_signature(tmp_path: Path) -> None:
    import onnx

    network = tiny_fcn("fcn16s", num_classes=4)
    hparams = {"class_names": ["bg", "shirt", "shoe", "bag"], "variant": "fcn16s"}
    path = export_segmenter(network, tmp_path / "model.onnx", hparams=hparams, source="x.ckpt")
    model = onnx.load(path)
    assert {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}[
        "ai.onnx"
    ] == OPSET
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    assert metadata["toolkit.kind"] == "segmentation"
    assert metadata["toolkit.version"] == toolkit_version()
    assert json.loads(metadata["class_names"]) == hparams["class_names"]
    assert json.loads(metadata["palette"]) == PALETTE[:4].tolist()
    assert json.loads(metadata["input_range"]) == [0.0, 1.0]
    assert metadata["onnx_opset"] == str(OPSET) and metadata["source"] == "x.ckpt"
    assert metadata["hparams.variant"] == "fcn16s"  # a flat mapping (earlier checkpoints)
    (images,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert images.name == "images" and dims == ["batch", 3, "height", "width"]
    assert [output.name for output in model.graph.output] == ["logits"]
    engine = OnnxSegmenter(path)
    assert (engine.num_classes, engine.class_names) == (4, hparams["class_names"])
    assert engine.palette[1] == tuple(PALETTE[1].tolist())


# ------------------------------------------------------------------------ layers that cannot go
@torch.library.custom_op("toolkit_tests::no_onnx", mutates_args=())
def _no_onnx(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@_no_onnx.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class NoOnnxContext(nn.Module):
    """A context module built on an operator without an ONNX translation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _no_onnx(x)


class DataDependentContext(nn.Module):
    """A context module whose control flow depends on the data: torch.export cannot capture it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if float(x.mean()) > 0 else x


def test_a_layer_without_onnx_translation_is_named(tmp_path: Path) -> None:
    network = tiny_fcn("fcn32s")
    network.context = NoOnnxContext()
    with pytest.raises(DeployError, match=r"layer context \(NoOnnxContext\).*no_onnx") as error:
        export_segmenter(network, tmp_path / "model.onnx")
    assert "opset" in str(error.value)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary file


def test_a_layer_torch_export_cannot_capture_is_named(tmp_path: Path) -> None:
    network = tiny_fcn("fcn32s")
    network.context = DataDependentContext()
    with pytest.raises(DeployError, match=r"layer context \(DataDependentContext\)"):
        export_segmenter(network, tmp_path / "model.pt2")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny FCN-8s as a checkpoint of this toolkit and as ONNX; a generator-kind ONNX file."""
    tmp = tmp_path_factory.mktemp("exported")
    network = tiny_fcn("fcn8s", encoder="vgg_bn")
    hparams = {
        "num_classes": 3,
        "variant": "fcn8s",
        "encoder": "vgg_bn",
        "width": 0.0625,
        "channels_last": True,
        "class_names": ["background", "red", "green"],
    }
    state = {f"network.{key}": value for key, value in network.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, tmp / "seg.ckpt")
    return {"checkpoint": tmp / "seg.ckpt", "onnx": export_segmenter(network, tmp / "m.onnx")}


def run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def test_seg_export_command_writes_onnx_and_pt2(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from seg.network_io import load_network

    network = load_network(exported["checkpoint"])
    for name in ("model.onnx", "model.pt2"):
        output = tmp_path / "deploy" / name
        args = ["export", "--ckpt_path", str(exported["checkpoint"]), "--output", str(output)]
        assert run_main(args) == 0
        assert f"wrote {output}" in capsys.readouterr().err
        check_round_trip(network, output)
    engine = OnnxSegmenter(tmp_path / "deploy" / "model.onnx")
    assert engine.class_names == ["background", "red", "green"]
    assert sorted(p.name for p in (tmp_path / "deploy").iterdir()) == ["model.onnx", "model.pt2"]


def test_seg_export_rejects_what_is_not_ours(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    not_ours = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": {"lr": 1}}, not_ours)
    output = tmp_path / "out" / "model.onnx"
    assert run_main(["export", "--ckpt_path", str(not_ours), "--output", str(output)]) == 2
    assert f"{not_ours}: hyperparameters have no 'num_classes'" in capsys.readouterr().err
    wrong_suffix = tmp_path / "model.tflite"
    args = ["export", "--ckpt_path", str(exported["checkpoint"]), "--output", str(wrong_suffix)]
    assert run_main(args) == 2
    assert "unknown export format '.tflite'" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    args = ["export", "--ckpt_path", str(exported["checkpoint"]), "--output"]
    assert run_main([*args, str(blocker / "model.onnx")]) == 2
    assert f"{blocker / 'model.onnx'}: cannot write the exported model here" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert not wrong_suffix.exists()


def test_corrupt_foreign_and_wrong_kind_onnx_files_are_named(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    import onnx
    from onnx import TensorProto, helper

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(exported["onnx"].read_bytes()[:3000])
    with pytest.raises(DeployError, match=r"corrupt\.onnx: not a readable ONNX model"):
        OnnxSegmenter(corrupt)
    with pytest.raises(DeployError, match=r"missing\.onnx: file not found"):
        OnnxSegmenter(tmp_path / "missing.onnx")
    identity = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    foreign = tmp_path / "foreign.onnx"
    foreign_model = helper.make_model(identity, opset_imports=[helper.make_opsetid("", 18)])
    foreign_model.ir_version = 8
    onnx.save(foreign_model, foreign)
    with pytest.raises(DeployError, match=r"foreign\.onnx: an ONNX model without this toolkit"):
        OnnxSegmenter(foreign)
    model = onnx.load(exported["onnx"])
    for entry in model.metadata_props:
        if entry.key == "toolkit.kind":
            entry.value = "generator"
    generator_kind = tmp_path / "generator.onnx"
    onnx.save(model, generator_kind)
    with pytest.raises(DeployError, match=r"generator\.onnx: a generator model; expected a seg"):
        OnnxSegmenter(generator_kind)


def test_wrong_channel_count_is_named(exported: dict[str, Path], tmp_path: Path) -> None:
    engine = OnnxSegmenter(exported["onnx"])
    with pytest.raises(DeployError, match=r"m\.onnx: the model takes images of shape \(N, 3"):
        engine(torch.rand(1, 1, 64, 64))
    with pytest.raises(DeployError, match="too small"):
        engine(torch.rand(1, 3, 16, 64))
    grey = export_segmenter(tiny_fcn("fcn32s", in_channels=1), tmp_path / "grey.onnx")
    with pytest.raises(ValueError, match=r"grey\.onnx: the model takes 1-channel images"):
        FolderPredictor(OnnxSegmenter(grey), progress=False)


def write_images(folder: Path) -> None:
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    for name, (height, width) in {"a.png": (97, 131), "sub/b.png": (360, 480)}.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            folder / name
        )
    (folder / "broken.png").write_bytes(b"not an image")


def test_predict_engines_agree_and_onnxruntime_flags(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_images(tmp_path / "in")
    common = ["--input", str(tmp_path / "in"), "--tile_size", "256", "--overlap", "32"]
    common += ["--tta", "--save_probabilities", "--num_workers", "0", "--no_progress"]
    torch_args = ["predict", "--ckpt_path", str(exported["checkpoint"]), "--precision", "32"]
    assert run_main([*torch_args, *common, "--output", str(tmp_path / "torch")]) == 1
    ort_args = ["predict", "--engine", "onnxruntime", "--model", str(exported["onnx"])]
    assert run_main([*ort_args, *common, "--output", str(tmp_path / "ort")]) == 1
    err = capsys.readouterr().err
    assert err.count("2 image(s) written, 1 skipped") == 2 and "broken.png" in err
    for stem in ("a", "sub/b"):
        masks = [
            np.asarray(Image.open(tmp_path / d / "masks" / f"{stem}.png")) for d in ("torch", "ort")
        ]
        assert masks[0].shape == masks[1].shape and (masks[0] == masks[1]).mean() >= MIN_AGREEMENT
        probabilities = [
            np.load(tmp_path / d / "probabilities" / f"{stem}.npy") for d in ("torch", "ort")
        ]
        np.testing.assert_allclose(probabilities[0], probabilities[1], atol=2e-3)


def test_onnxruntime_folder_inference_leaves_torch_threads_as_they_were(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    """The predictor's own tensor work runs on one torch thread while ONNX Runtime computes (so
    that idle torch threads do not spin on its cores); the caller's setting comes back."""
    write_images(tmp_path / "in")
    predictor = FolderPredictor(OnnxSegmenter(exported["onnx"]), num_workers=0, progress=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        summary = predictor.predict_folder(tmp_path / "in", tmp_path / "out")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert len(summary.written) == 2 and len(summary.skipped) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "onnxruntime"], "--engine onnxruntime needs --model"),
        (
            ["--engine", "onnxruntime", "--model", "{onnx}", "--ckpt_path", "x"],
            "--ckpt_path is for",
        ),
        (["--engine", "onnxruntime", "--model", "{onnx}", "--precision", "bf16"], "float32"),
        (["--model", "{onnx}"], "--model is for onnxruntime"),
        (["--engine", "onnxruntime", "--model", "{ckpt}"], "not a readable ONNX model"),
    ],
)
def test_engine_flag_mistakes_exit_2(
    extra: list[str],
    message: str,
    exported: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    write_images(tmp_path / "in")
    extra = [a.format(onnx=exported["onnx"], ckpt=exported["checkpoint"]) for a in extra]
    args = ["predict", *extra, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    assert run_main([*args, "--no_progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder_is_named(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_images(tmp_path / "in")
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    args = ["predict", "--engine", "onnxruntime", "--model", str(exported["onnx"])]
    args += ["--input", str(tmp_path / "in"), "--output", str(blocker / "x"), "--no_progress"]
    assert run_main(args) == 2
    assert f"{blocker / 'x'}: cannot write into this output folder" in capsys.readouterr().err
    assert blocker.read_text().startswith("a file")


def test_onnxruntime_predict_runs_without_lightning(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    write_images(tmp_path / "in")
    args = ["predict", "--engine", "onnxruntime", "--model", str(exported["onnx"])]
    args += ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--no_progress"]
    result = run_without_lightning("seg.console", args)
    assert "exit 1" in result.stdout, result.stderr  # 1: the broken file was skipped
    assert "2 image(s) written, 1 skipped" in result.stderr
    assert (tmp_path / "out" / "masks" / "sub" / "b.png").is_file()
