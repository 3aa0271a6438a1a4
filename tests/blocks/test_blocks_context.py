"""Context modules keep the spatial size; gradients reach every parameter."""

import pytest
import torch
from torch import nn

from upsample.blocks import ASPP, ConvNormAct, DilatedStack


def check_gradients(module: nn.Module, out: torch.Tensor) -> None:
    out.float().square().mean().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_dilated_stack_keeps_size(norm: str) -> None:
    stack = DilatedStack(8, norm=norm)
    assert stack.out_channels == 8
    assert [m.conv.dilation[0] for m in stack] == [1, 1, 2, 1, 1, 2]
    out = stack(torch.randn(2, 8, 17, 23))
    assert out.shape == (2, 8, 17, 23)
    check_gradients(stack, out)


@pytest.mark.parametrize("image_pooling", [True, False])
def test_aspp_keeps_size(image_pooling: bool) -> None:
    aspp = ASPP(6, 4, rates=(2, 3, 5), image_pooling=image_pooling)
    assert aspp.out_channels == 4
    assert len(aspp.branches) == 4 + image_pooling
    out = aspp(torch.randn(2, 6, 9, 13))
    assert out.shape == (2, 4, 9, 13)
    check_gradients(aspp, out)


def test_aspp_with_batch_of_one_in_training() -> None:
    # the pooling branch has no batch norm, so a batch of one trains
    assert ASPP(3, 2, rates=(2,))(torch.randn(1, 3, 5, 5)).shape == (1, 2, 5, 5)


def test_aspp_pooling_branch_is_constant_over_space() -> None:
    aspp = ASPP(3, 2, rates=(2,)).eval()
    with torch.no_grad():
        pooled = aspp.branches[-1](torch.randn(1, 3, 7, 11))
    assert pooled.shape == (1, 2, 7, 11)
    torch.testing.assert_close(pooled, pooled[..., :1, :1].expand_as(pooled))


def test_conv_norm_act_options() -> None:
    unit = ConvNormAct(3, 8, 3, stride=2, dilation=2, norm="group", activation="leaky_relu")
    assert unit.conv.bias is None and isinstance(unit.norm, nn.GroupNorm)
    assert unit.act.negative_slope == 0.2
    assert unit(torch.randn(1, 3, 9, 10)).shape == (1, 8, 5, 5)  # "same" padding: ceil(H / 2)
    plain = ConvNormAct(3, 4, norm="none", activation="none")
    assert plain.conv.bias is not None and len(plain) == 1
    with pytest.raises(ValueError, match="odd kernel_size"):
        ConvNormAct(3, 4, kernel_size=4)
    with pytest.raises(ValueError, match="norm"):
        ConvNormAct(3, 4, norm="layer")  # type: ignore[arg-type]
