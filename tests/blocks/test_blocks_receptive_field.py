"""Receptive field: known values and agreement with an empirical (gradient) measurement."""

import pytest
import torch
from torch import nn

from upsample.blocks import (
    ASPP,
    DilatedStack,
    FCNDecoder,
    MultiScaleEncoder,
    ResNetEncoder,
    UpConv,
    VGGEncoder,
    receptive_field,
)
from upsample.blocks.receptive_field import (
    encoder_feature_graphs,
    fcn_decoder_graph,
    register_receptive_field,
)


def dilated_convs(dilations: tuple[int, ...]) -> nn.Sequential:
    return nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=d, dilation=d) for d in dilations))


def test_three_dilated_convs_give_15() -> None:
    table = receptive_field(dilated_convs((1, 2, 4)), 32)
    assert [row.receptive_field for row in table.rows] == [1, 3, 7, 15]
    assert table.total.output_size == (32, 32)
    assert table.total.jump == 1
    assert receptive_field(DilatedStack(4, dilations=(1, 2, 4)), 32).total.receptive_field == 15


def test_vgg16_known_values() -> None:
    table = receptive_field(VGGEncoder(), 224)  # full VGG16 widths; no forward pass
    assert table["stages.3.conv5_3"].receptive_field == 196
    assert table["stages.3.pool5"].receptive_field == 212
    assert table.total.name == "stages.3.pool5" and table[-1] is table.total
    assert [row.name for row in table][:2] == ["input", "stages.0.conv1_1"]
    assert table.total.output_size == (7, 7)
    assert table.total.jump == 32
    text = str(table)
    assert "conv5_3" in text and "212" in text and "7x7" in text


def test_resnet_known_values() -> None:
    # Published receptive fields of ResNet-18 and ResNet-50 (final feature map).
    assert receptive_field(ResNetEncoder(base_width=4), 224).total.receptive_field == 435
    resnet50 = ResNetEncoder(block="bottleneck", layers=(3, 4, 6, 3), base_width=2)
    assert receptive_field(resnet50, 224).total.receptive_field == 427


def test_stride_two_transposed_conv() -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.ConvTranspose2d(1, 1, 4, 2, 1))
    table = receptive_field(net, 17)
    up = table.total
    assert up.output_size == (18, 18)
    assert up.jump == 1.0  # stride 2 then divided by 2
    # Each output of the k=4, s=2 transposed conv reads 2 inputs, 2 pixels apart: 3 + 2 = 5.
    assert up.receptive_field == 5
    single = receptive_field(nn.ConvTranspose2d(1, 1, 4, 2, 1), 8).total
    assert single.jump == 0.5 and single.receptive_field == 2


def test_aspp_receptive_field_is_its_widest_branch() -> None:
    aspp = ASPP(4, 4, rates=(2, 5), image_pooling=False)
    table = receptive_field(aspp, 40)
    assert table.total.receptive_field == 1 + 2 * 5
    assert table.total.output_size == (40, 40)
    # With image pooling one branch depends on the whole input.
    pooled = receptive_field(ASPP(4, 4, rates=(2,)), (30, 40)).total
    assert pooled.receptive_field_hw[0] >= 30 and pooled.receptive_field_hw[1] >= 40


def test_global_pooling_covers_the_whole_input() -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.AdaptiveAvgPool2d(1))
    total = receptive_field(net, (13, 21)).total
    assert total.output_size == (1, 1)
    assert total.receptive_field_hw == (13, 21)


def test_unknown_module_and_bad_sizes_raise() -> None:
    with pytest.raises(TypeError, match="register_receptive_field"):
        receptive_field(nn.Sequential(nn.Linear(3, 3)), 8)
    with pytest.raises(ValueError, match="layer '1'"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 5)), 6)


class Downsampled(nn.Sequential):
    """A Sequential whose second child is skipped in forward (a rule must say so)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[0](x)


def test_the_rule_of_the_nearest_registered_type_wins() -> None:
    net = Downsampled(nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 5))
    assert receptive_field(net, 16).total.receptive_field == 3 + 4 * 2  # Sequential: both convs
    register_receptive_field(Downsampled, lambda module: module[0])
    assert receptive_field(net, 16).total.receptive_field == 3
    assert receptive_field(nn.Sequential(net, nn.Conv2d(1, 1, 3)), 16).total.receptive_field == 7


# --------------------------------------------------------------------------- empirical check
def empirical_receptive_field(net: nn.Module, size: int, period: int = 8) -> tuple[int, int]:
    """Largest extent (rows, cols) of the non-zero input gradient of output pixels near the
    centre, over ``period`` consecutive pixels along each axis (covers every phase)."""
    net = net.double().eval()
    with torch.no_grad():
        for name, p in net.named_parameters():  # positive weights: no cancellation
            p.fill_(0.0 if name.endswith("bias") else 1.0)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = net(x)
    h, w = out.shape[-2:]
    extents = [0, 0]
    for axis in range(2):
        for k in range(period):
            shift = k - period // 2
            oy, ox = (h // 2 + shift, w // 2) if axis == 0 else (h // 2, w // 2 + shift)
            (grad,) = torch.autograd.grad(out[0, 0, oy, ox], x, retain_graph=True)
            nonzero = grad[0, 0].abs().sum(dim=1 - axis).nonzero()
            assert nonzero.min() > 0 and nonzero.max() < size - 1, "input too small for the test"
            extents[axis] = max(extents[axis], int(nonzero.max() - nonzero.min() + 1))
    return extents[0], extents[1]


class TinyEncoder(MultiScaleEncoder):
    """Four strided-conv stages (strides 4, 8, 16, 32), one channel, no max pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.in_channels = 1
        self.stages = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.ReLU(), nn.Conv2d(1, 1, 3, 2, 1)),
                nn.Conv2d(1, 1, 3, 2, 1),
                nn.Conv2d(1, 1, 3, 2, 1),
                nn.Conv2d(1, 1, 3, 2, 1),
            ]
        )
        self.out_channels = (1, 1, 1, 1)
        self.strides = (4, 8, 16, 32)


class TinyFCN(nn.Module):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.encoder = TinyEncoder()
        self.decoder = FCNDecoder((1, 1, 1), 1, variant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)[1:], x.shape[-2:])


register_receptive_field(
    TinyFCN, lambda net: fcn_decoder_graph(net.decoder, encoder_feature_graphs(net.encoder)[1:])
)


EMPIRICAL_CASES = {
    "strided_and_dilated": (
        nn.Sequential(
            nn.Conv2d(1, 1, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(1, 1, 3, padding=2, dilation=2),
            nn.AvgPool2d(2),
            nn.Conv2d(1, 1, (3, 5), padding=(1, 2)),
        ),
        96,
    ),
    "transposed_conv": (
        nn.Sequential(
            nn.Conv2d(1, 1, 3, 2, 1), nn.ConvTranspose2d(1, 1, 4, 2, 1), nn.Conv2d(1, 1, 3)
        ),
        40,
    ),
    "upconv_x4_and_bilinear": (
        nn.Sequential(
            nn.Conv2d(1, 1, 3, 4, 1),
            UpConv(1, 1, 4),
            nn.Upsample(scale_factor=2, mode="bilinear"),
        ),
        48,
    ),
    "dilated_stack": (DilatedStack(1, dilations=(1, 2, 4), norm="none"), 40),
    "aspp": (ASPP(1, 1, rates=(2, 3), image_pooling=False), 24),
    "fcn_8s": (TinyFCN("8s"), 160),
    "fcn_32s": (TinyFCN("32s"), 160),
}


@pytest.mark.parametrize("case", sorted(EMPIRICAL_CASES))
def test_analytic_receptive_field_matches_gradient_extent(case: str) -> None:
    net, size = EMPIRICAL_CASES[case]
    analytic = receptive_field(net, size).total.receptive_field_hw
    assert analytic == empirical_receptive_field(net, size)


# ------------------------------------------------------- table sizes agree with forward shapes
def forward_shapes(net: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    shapes: dict[str, tuple[int, int]] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[-2:]))
        )
        for name, module in net.named_modules()
        if name
    ]
    with torch.no_grad():
        net.eval()(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize(
    "case", ["vgg_os8", "resnet_os16", "tv_resnet18_os8", "generator", "aspp", "resize_conv"]
)
def test_table_output_sizes_match_forward_shapes(case: str) -> None:
    from upsample.blocks import GeneratorUpStack, ResizeConv, TorchvisionResNetEncoder

    size: tuple[int, ...] = (97, 131)
    net: nn.Module
    if case == "vgg_os8":
        net = VGGEncoder(1, (2, 2, 2, 2, 2), (1, 1, 1, 1, 2), output_stride=8)
    elif case == "resnet_os16":
        net = ResNetEncoder(1, "bottleneck", (1, 1, 2, 2), base_width=2, output_stride=16)
    elif case == "tv_resnet18_os8":
        net = TorchvisionResNetEncoder("resnet18", output_stride=8, in_channels=1)
    elif case == "generator":
        net, size = GeneratorUpStack(4, 2, 1, 32, upsampler="pixel_shuffle"), (1, 1)
    elif case == "aspp":
        net = ASPP(1, 2, rates=(2, 3))
    else:
        net = nn.Sequential(nn.Conv2d(1, 1, 3, 2), ResizeConv(1, 1, 3, mode="bilinear"))
    x = torch.randn(1, 4 if case == "generator" else 1, *size)
    shapes = forward_shapes(net, x)
    table = receptive_field(net, size)
    checked = [row for row in table.rows if row.name in shapes]
    assert len(checked) >= len(table.rows) // 2
    for row in checked:
        assert row.output_size == shapes[row.name], row.name
    final = net(x)[-1] if isinstance(net, MultiScaleEncoder) else net(x)
    assert table.total.output_size == tuple(final.shape[-2:])
