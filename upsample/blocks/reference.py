"""Slow, readable reference implementations of convolution and transposed convolution.

They exist to check (and to explain) what ``F.conv2d`` and ``F.conv_transpose2d`` compute:

* convolution = im2col (``F.unfold``: every receptive-field patch becomes a column) followed by
  one matrix product with the flattened kernel;
* transposed convolution = insert ``stride - 1`` zeros between input pixels, pad by
  ``d(k - 1) - p`` on each side (plus ``output_padding`` on the bottom/right), then an ordinary
  stride-1 convolution with the kernel rotated by 180 degrees and its in/out channels swapped.

Only ``groups=1`` is supported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from upsample.blocks.geometry import conv_output_size

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv2d_im2col(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> Tensor:
    """2-D convolution as im2col + matmul.

    x: (N, Cin, H, W); weight: (Cout, Cin, kh, kw); bias: (Cout,) or None.
    Returns (N, Cout, Ho, Wo) with the sizes of ``blocks.conv_output_size``.
    """
    n, c_in, h, w = x.shape
    c_out, c_in_w, kh, kw = weight.shape
    if c_in != c_in_w:
        raise ValueError(f"input has {c_in} channels but the weight expects {c_in_w}")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    h_out = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    # columns: (N, Cin*kh*kw, Ho*Wo), ordered like weight.view(Cout, Cin*kh*kw).
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = weight.reshape(c_out, -1) @ columns
    if bias is not None:
        out = out + bias.view(1, c_out, 1)
    return out.view(n, c_out, h_out, w_out)


def conv_transpose2d_by_zero_insertion(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
) -> Tensor:
    """2-D transposed convolution as zero insertion + padding + stride-1 convolution.

    x: (N, Cin, H, W); weight: (Cin, Cout, kh, kw) (the ``nn.ConvTranspose2d`` layout).
    Returns (N, Cout, Ho, Wo), ``Ho = (H - 1)s - 2p + d(kh - 1) + output_padding + 1``.
    """
    n, c_in, h, w = x.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    (oph, opw), (dh, dw) = _pair(output_padding), _pair(dilation)
    kh, kw = weight.shape[-2:]
    if weight.shape[0] != c_in:
        raise ValueError(f"input has {c_in} channels but the weight expects {weight.shape[0]}")

    upsampled = x.new_zeros(n, c_in, (h - 1) * sh + 1, (w - 1) * sw + 1)
    upsampled[:, :, ::sh, ::sw] = x
    pad_h, pad_w = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    # F.pad order: (left, right, top, bottom); negative values crop (padding larger than d(k-1)).
    upsampled = F.pad(upsampled, (pad_w, pad_w + opw, pad_h, pad_h + oph))
    flipped = torch.flip(weight, dims=(-2, -1)).transpose(0, 1)
    return conv2d_im2col(upsampled, flipped, bias, stride=1, padding=0, dilation=(dh, dw))
