"""Output-size formulas of convolution, transposed convolution and pooling (one spatial axis)."""

from __future__ import annotations


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def effective_kernel_size(kernel_size: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``K' = K + (K - 1)(D - 1)`` (equal to ``D(K - 1) + 1``)."""
    _check_positive("kernel_size", kernel_size)
    _check_positive("dilation", dilation)
    return kernel_size + (kernel_size - 1) * (dilation - 1)


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution: ``o = floor((i + 2p - d(k - 1) - 1) / s) + 1``.

    Raises ``ValueError`` when the (padded) input is shorter than the dilated kernel.
    """
    _check_positive("size", size)
    _check_positive("stride", stride)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if span < 0:
        raise ValueError(
            f"input of size {size} with padding {padding} is smaller than the dilated kernel "
            f"({effective_kernel_size(kernel_size, dilation)})"
        )
    return span // stride + 1


def pool_output_size(
    size: int,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of ``nn.MaxPool2d`` / ``nn.AvgPool2d`` (stride defaults to the kernel size).

    With ``ceil_mode`` the division rounds up, but (as in PyTorch) the last window must start
    inside the input or the left padding.
    """
    stride = kernel_size if stride is None else stride
    if not ceil_mode:
        return conv_output_size(size, kernel_size, stride, padding, dilation)
    _check_positive("size", size)
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if span < 0:
        raise ValueError(f"input of size {size} is smaller than the pooling window")
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_transpose_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution: ``o = (i - 1)s - 2p + d(k - 1) + op + 1``."""
    _check_positive("size", size)
    _check_positive("stride", stride)
    if output_padding >= max(stride, dilation) or output_padding < 0:
        raise ValueError(
            f"output_padding must be in [0, max(stride, dilation)) = [0, {max(stride, dilation)}),"
            f" got {output_padding}"
        )
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"transposed convolution of an input of size {size} gives size {out}")
    return out
