"""Size formulas against the shapes torch produces."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from upsample.blocks import (
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel_size,
    pool_output_size,
)

SETTINGS = settings(max_examples=80, deadline=None)
sizes = st.integers(1, 40)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)
paddings = st.integers(0, 3)
dilations = st.integers(1, 3)


@SETTINGS
@given(h=sizes, w=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_conv_output_size_matches_conv2d(h: int, w: int, k: int, s: int, p: int, d: int) -> None:
    assume(min(h, w) + 2 * p >= effective_kernel_size(k, d))
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    with torch.no_grad():
        out = conv(torch.zeros(1, 1, h, w))
    assert out.shape[-2:] == (conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d))


@SETTINGS
@given(h=sizes, k=kernels, s=strides, p=paddings, d=dilations, op=st.integers(0, 3), data=st.data())
def test_conv_transpose_output_size_matches(
    h: int, k: int, s: int, p: int, d: int, op: int, data: st.DataObject
) -> None:
    assume(op < max(s, d))
    expected = (h - 1) * s - 2 * p + d * (k - 1) + op + 1
    assume(expected >= 1)
    w = data.draw(sizes)
    assume((w - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
    conv = nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d, bias=False)
    with torch.no_grad():
        out = conv(torch.zeros(1, 1, h, w))
    assert out.shape[-2] == conv_transpose_output_size(h, k, s, p, op, d) == expected
    assert out.shape[-1] == conv_transpose_output_size(w, k, s, p, op, d)


@SETTINGS
@given(h=sizes, k=st.integers(1, 5), s=strides, d=dilations, ceil=st.booleans(), data=st.data())
def test_pool_output_size_matches_maxpool2d(
    h: int, k: int, s: int, d: int, ceil: bool, data: st.DataObject
) -> None:
    p = data.draw(st.integers(0, k // 2))
    assume(h + 2 * p >= effective_kernel_size(k, d))
    pool = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
    out = pool(torch.zeros(1, 1, h, h))
    assert out.shape[-1] == pool_output_size(h, k, s, p, d, ceil)
    if not ceil:
        assert out.shape[-1] == conv_output_size(h, k, s, p, d)


def test_effective_kernel_size_formula() -> None:
    assert effective_kernel_size(3, 1) == 3
    assert effective_kernel_size(3, 2) == 5
    assert effective_kernel_size(3, 4) == 9
    assert effective_kernel_size(7, 3) == 7 + 6 * 2


def test_invalid_sizes_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        conv_output_size(4, 3, dilation=3)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose_output_size(4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(4, 3, stride=0)
