"""Encoders: strides, channels and sizes for output strides 8/16/32, odd inputs, gradients."""

import math

import pytest
import torch
from torch import nn

from upsample.blocks import (
    ENCODER_NAMES,
    ConvNormAct,
    ResNetEncoder,
    TorchvisionResNetEncoder,
    TorchvisionVGG16Encoder,
    VGGEncoder,
    build_encoder,
    receptive_field,
)

TINY_VGG = {"widths": (4, 4, 8, 8, 8), "depths": (1, 1, 2, 2, 2)}
EXPECTED_STRIDES = {32: (4, 8, 16, 32), 16: (4, 8, 16, 16), 8: (4, 8, 8, 8)}


def expected_sizes(
    size: tuple[int, int], strides: tuple[int, ...], rounding: str
) -> list[tuple[int, int]]:
    div = (lambda a, b: a // b) if rounding == "floor" else (lambda a, b: math.ceil(a / b))
    return [(div(size[0], s), div(size[1], s)) for s in strides]


def check_features(encoder: nn.Module, size: tuple[int, int], rounding: str, channels: int = 3):
    features = encoder(torch.randn(2, channels, *size))
    assert len(features) == 4
    assert [f.shape[1] for f in features] == list(encoder.out_channels)
    assert [tuple(f.shape[-2:]) for f in features] == expected_sizes(
        size, encoder.strides, rounding
    )
    return features


def check_gradients(module: nn.Module, outputs: list[torch.Tensor]) -> None:
    sum(o.float().mean() for o in outputs).backward()
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient for {name}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"


@pytest.mark.parametrize("output_stride", [32, 16, 8])
@pytest.mark.parametrize("size", [(64, 64), (97, 131)])
def test_vgg_encoder(output_stride: int, size: tuple[int, int]) -> None:
    encoder = VGGEncoder(output_stride=output_stride, norm="batch", **TINY_VGG)
    assert encoder.strides == EXPECTED_STRIDES[output_stride]
    assert encoder.out_channels == (4, 8, 8, 8)
    check_gradients(encoder, check_features(encoder, size, "floor"))


@pytest.mark.parametrize("output_stride", [32, 16, 8])
@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_resnet_encoder(output_stride: int, block: str) -> None:
    encoder = ResNetEncoder(
        block=block, layers=(1, 2, 2, 2), base_width=4, output_stride=output_stride
    )
    assert encoder.strides == EXPECTED_STRIDES[output_stride]
    expansion = 1 if block == "basic" else 4
    assert encoder.out_channels == tuple(4 * m * expansion for m in (1, 2, 4, 8))
    check_gradients(encoder, check_features(encoder, (97, 131), "ceil"))


def test_resnet_dilation_follows_torchvision() -> None:
    encoder = ResNetEncoder(base_width=4, output_stride=8)
    layer3, layer4 = encoder.stages[2], encoder.stages[3]
    # first block of a dilated stage keeps the previous dilation, the others use the new one
    assert layer3[0].conv1.conv.dilation == (1, 1) and layer3[1].conv1.conv.dilation == (2, 2)
    assert layer4[0].conv1.conv.dilation == (2, 2) and layer4[1].conv2.conv.dilation == (4, 4)
    assert all(m.conv.stride == (1, 1) for m in layer4.modules() if isinstance(m, ConvNormAct))
    params = sum(p.numel() for p in encoder.parameters())
    assert params == sum(p.numel() for p in ResNetEncoder(base_width=4).parameters())


def test_vgg_dilation_and_pools() -> None:
    encoder = VGGEncoder(output_stride=8, **TINY_VGG)
    stage5 = encoder.stages[3]
    assert stage5.conv5_1.conv.dilation == (2, 2)
    assert stage5.pool5.stride == 1 and encoder.stages[2].pool4.stride == 1


def test_vgg_rejects_too_small_inputs() -> None:
    encoder = VGGEncoder(**TINY_VGG)
    encoder(torch.randn(2, 3, 32, 33))  # the smallest accepted size
    with pytest.raises(ValueError, match=">= 32"):
        encoder(torch.randn(2, 3, 31, 64))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        encoder(torch.randn(2, 1, 64, 64))


@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_torchvision_resnet18(output_stride: int) -> None:
    encoder = TorchvisionResNetEncoder("resnet18", weights=None, output_stride=output_stride)
    assert encoder.out_channels == (64, 128, 256, 512)
    assert encoder.strides == EXPECTED_STRIDES[output_stride]
    if output_stride == 8:  # the stride-for-dilation surgery: gradients still reach everything
        check_gradients(encoder, check_features(encoder, (64, 64), "ceil"))
    else:
        with torch.no_grad():
            check_features(encoder, (64, 64), "ceil")


def test_torchvision_resnet18_odd_input_and_dilation() -> None:
    encoder = TorchvisionResNetEncoder("resnet18", output_stride=16)
    with torch.no_grad():
        check_features(encoder, (97, 131), "ceil")
    layer4 = encoder.stages[3]
    assert layer4[0].conv1.dilation == (1, 1) and layer4[1].conv1.dilation == (2, 2)


@pytest.mark.parametrize(("name", "output_stride"), [("resnet34", 32), ("resnet50", 8)])
def test_torchvision_deeper_resnets(name: str, output_stride: int) -> None:
    encoder = TorchvisionResNetEncoder(name, output_stride=output_stride, in_channels=1)
    expansion = 4 if name == "resnet50" else 1
    assert encoder.out_channels == tuple(c * expansion for c in (64, 128, 256, 512))
    with torch.no_grad():
        check_features(encoder, (33, 40), "ceil", channels=1)


@pytest.mark.parametrize("output_stride", [32, 8])
def test_torchvision_vgg16(output_stride: int) -> None:
    encoder = TorchvisionVGG16Encoder(weights=None, output_stride=output_stride)
    assert encoder.out_channels == (128, 256, 512, 512)
    with torch.no_grad():
        check_features(encoder, (33, 47), "floor")
    # the adapter keeps torchvision's layer names; its receptive field is VGG16's
    if output_stride == 32:
        assert receptive_field(encoder, 224)["stages.3.30"].receptive_field == 212


def test_torchvision_first_conv_for_grayscale_sums_rgb_weights() -> None:
    # Same seed: the same torchvision weights; the 1-channel conv is derived from the RGB one,
    # so the gray network equals the RGB network on the gray image repeated three times.
    torch.manual_seed(0)
    rgb = TorchvisionResNetEncoder("resnet18").eval()
    torch.manual_seed(0)
    gray = TorchvisionResNetEncoder("resnet18", in_channels=1).eval()
    with torch.no_grad():
        x = torch.randn(1, 1, 32, 32)
        torch.testing.assert_close(gray(x)[-1], rgb(x.expand(-1, 3, -1, -1))[-1])


@pytest.mark.parametrize("name", [n for n in ENCODER_NAMES if not n.startswith("tv_")])
def test_build_encoder_own_names(name: str) -> None:
    encoder = build_encoder(name, in_channels=1, output_stride=16, width=1 / 16)
    assert encoder.strides == (4, 8, 16, 16)
    with torch.no_grad():
        features = encoder(torch.randn(2, 1, 32, 32))
    assert [f.shape[1] for f in features] == list(encoder.out_channels)


def test_build_encoder_errors() -> None:
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("resnet101")
    with pytest.raises(ValueError, match="width"):
        build_encoder("tv_resnet18", width=0.5)
    with pytest.raises(ValueError, match="weights"):
        build_encoder("vgg", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="output_stride"):
        build_encoder("resnet18s", output_stride=4)
