"""The im2col convolution and the zero-insertion transposed convolution equal torch's ops."""

import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from upsample.blocks import conv2d_im2col, conv_transpose2d_by_zero_insertion, effective_kernel_size

SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def conv_case(draw: st.DrawFn) -> dict:
    return {
        "n": draw(st.integers(1, 2)),
        "c_in": draw(st.integers(1, 3)),
        "c_out": draw(st.integers(1, 3)),
        "h": draw(st.integers(1, 9)),
        "w": draw(st.integers(1, 9)),
        "kh": draw(st.integers(1, 4)),
        "kw": draw(st.integers(1, 4)),
        "stride": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "padding": (draw(st.integers(0, 3)), draw(st.integers(0, 3))),
        "dilation": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@SETTINGS
@given(case=conv_case())
def test_im2col_equals_conv2d(case: dict) -> None:
    (ph, pw), (dh, dw) = case["padding"], case["dilation"]
    assume(case["h"] + 2 * ph >= effective_kernel_size(case["kh"], dh))
    assume(case["w"] + 2 * pw >= effective_kernel_size(case["kw"], dw))
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["n"], case["c_in"], case["h"], case["w"], generator=g, dtype=torch.float64)
    weight = torch.randn(
        case["c_out"], case["c_in"], case["kh"], case["kw"], generator=g, dtype=torch.float64
    )
    bias = torch.randn(case["c_out"], generator=g, dtype=torch.float64) if case["bias"] else None
    kwargs = {"stride": case["stride"], "padding": case["padding"], "dilation": case["dilation"]}
    expected = F.conv2d(x, weight, bias, **kwargs)
    torch.testing.assert_close(conv2d_im2col(x, weight, bias, **kwargs), expected)


@SETTINGS
@given(case=conv_case(), oph=st.integers(0, 2), opw=st.integers(0, 2))
def test_zero_insertion_equals_conv_transpose2d(case: dict, oph: int, opw: int) -> None:
    (sh, sw), (ph, pw), (dh, dw) = case["stride"], case["padding"], case["dilation"]
    assume(oph < max(sh, dh) and opw < max(sw, dw))
    assume((case["h"] - 1) * sh - 2 * ph + dh * (case["kh"] - 1) + oph + 1 >= 1)
    assume((case["w"] - 1) * sw - 2 * pw + dw * (case["kw"] - 1) + opw + 1 >= 1)
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["n"], case["c_in"], case["h"], case["w"], generator=g, dtype=torch.float64)
    weight = torch.randn(
        case["c_in"], case["c_out"], case["kh"], case["kw"], generator=g, dtype=torch.float64
    )
    bias = torch.randn(case["c_out"], generator=g, dtype=torch.float64) if case["bias"] else None
    kwargs = {
        "stride": case["stride"],
        "padding": case["padding"],
        "output_padding": (oph, opw),
        "dilation": case["dilation"],
    }
    expected = F.conv_transpose2d(x, weight, bias, **kwargs)
    actual = conv_transpose2d_by_zero_insertion(x, weight, bias, **kwargs)
    torch.testing.assert_close(actual, expected)


def test_reference_ops_accept_int_arguments() -> None:
    x = torch.randn(1, 2, 7, 5)
    w = torch.randn(3, 2, 3, 3)
    torch.testing.assert_close(conv2d_im2col(x, w, None, 2, 1, 1), F.conv2d(x, w, None, 2, 1, 1))
    wt = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(
        conv_transpose2d_by_zero_insertion(x, wt, None, 2, 1, 1),
        F.conv_transpose2d(x, wt, None, 2, 1, 1),
    )
