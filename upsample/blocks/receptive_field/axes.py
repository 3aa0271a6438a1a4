"""Per-axis geometry of one layer: output size and the input span of every output index.

Each :class:`AxisOp` describes a layer along one spatial axis. Padding is treated as if the
input extended beyond its border, so spans may reach outside ``[0, n)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from upsample.blocks.geometry import conv_transpose_output_size, pool_output_size


class AxisOp:
    """Geometry of one layer along one spatial axis.

    ``first(o, n)`` / ``last(o, n)``: lowest / highest input index that output index ``o``
    depends on, for an input of length ``n``; both must be non-decreasing in ``o`` and accept
    indices outside ``[0, out_size)`` (padding of a later layer). ``scale``: how the layer
    multiplies the jump (its stride; ``1/s`` for an upsampling by ``s``).
    """

    scale: Fraction = Fraction(1)

    def out_size(self, n: int) -> int:
        raise NotImplementedError

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        raise NotImplementedError

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        raise NotImplementedError


class IdentityAxis(AxisOp):
    """Element-wise layer: same size, each output depends on the same input index."""

    def out_size(self, n: int) -> int:
        return n

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return o

    last = first


@dataclass
class ConvAxis(AxisOp):
    """Convolution or pooling window (``pad_before``/``pad_after`` may differ, as for 'same')."""

    kernel: int
    stride: int = 1
    pad_before: int = 0
    pad_after: int = 0
    dilation: int = 1
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        self.scale = Fraction(self.stride)

    def out_size(self, n: int) -> int:
        if self.pad_before == self.pad_after:
            return pool_output_size(
                n, self.kernel, self.stride, self.pad_before, self.dilation, self.ceil_mode
            )
        span = n + self.pad_before + self.pad_after - self.dilation * (self.kernel - 1) - 1
        if span < 0:
            raise ValueError(f"input of size {n} is smaller than the kernel")
        return span // self.stride + 1

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return o * self.stride - self.pad_before

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        return o * self.stride - self.pad_before + self.dilation * (self.kernel - 1)


@dataclass
class ConvTransposeAxis(AxisOp):
    """Transposed convolution: output ``o`` receives input ``i`` when ``o = i s - p + m d``.

    The span is ``[ceil((o + p - d(k-1)) / s), floor((o + p) / s)]``, exact for ``d = 1`` and
    an upper bound otherwise. The jump is divided by the stride.
    """

    kernel: int
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1

    def __post_init__(self) -> None:
        self.scale = Fraction(1, self.stride)

    def out_size(self, n: int) -> int:
        return conv_transpose_output_size(
            n, self.kernel, self.stride, self.padding, self.output_padding, self.dilation
        )

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return -((-(o + self.padding - self.dilation * (self.kernel - 1))) // self.stride)

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        return (o + self.padding) // self.stride


@dataclass
class ResizeAxis(AxisOp):
    """Interpolation (``nn.Upsample`` / ``F.interpolate``) with PyTorch's index rules.

    ``size`` is the output length, or None to use ``floor(n * scale_factor)``. With a
    ``scale_factor`` PyTorch maps indices with ``1 / scale_factor``, otherwise with ``n / size``.
    """

    size: int | None = None
    scale_factor: Fraction | None = None
    mode: str = "nearest"
    align_corners: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("nearest", "nearest-exact", "bilinear", "linear", "bicubic"):
            raise ValueError(f"receptive_field does not support interpolation mode {self.mode!r}")
        if self.scale_factor is not None:
            self.scale = 1 / Fraction(self.scale_factor)

    def out_size(self, n: int) -> int:
        if self.size is not None:
            return self.size
        assert self.scale_factor is not None
        return math.floor(n * Fraction(self.scale_factor))

    def _ratio(self, n: int) -> Fraction:
        if self.align_corners and self.mode in ("bilinear", "linear", "bicubic"):
            out = self.out_size(n)
            return Fraction(n - 1, out - 1) if out > 1 else Fraction(0)
        if self.scale_factor is not None:
            return 1 / Fraction(self.scale_factor)
        return Fraction(n, self.out_size(n))

    def _source(self, o: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """floor of the source coordinate and whether it is an exact integer."""
        r = self._ratio(n)
        num, den = r.numerator, r.denominator
        if self.mode == "nearest":
            return (o * num) // den, np.ones_like(o, dtype=bool)
        if self.mode == "nearest-exact":
            return ((2 * o + 1) * num) // (2 * den), np.ones_like(o, dtype=bool)
        if self.align_corners:
            top, bottom = o * num, den
        else:  # src = (o + 0.5) r - 0.5
            top, bottom = (2 * o + 1) * num - den, 2 * den
        floor = top // bottom
        exact = top % bottom == 0
        if self.mode != "bicubic":  # PyTorch clamps negative linear source coordinates to 0
            exact = np.where(floor < 0, True, exact)
            floor = np.maximum(floor, 0)
        return floor, exact

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        src, _ = self._source(o, n)
        return src - 1 if self.mode == "bicubic" else src

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        src, exact = self._source(o, n)
        if self.mode.startswith("nearest"):
            return np.minimum(src, n - 1)
        if self.mode == "bicubic":
            return src + 2
        return np.minimum(np.where(exact, src, src + 1), n - 1)


@dataclass
class AdaptivePoolAxis(AxisOp):
    """Adaptive pooling to ``size`` bins; bin ``o`` covers ``[floor(o n/m), ceil((o+1) n/m))``."""

    size: int | None = None  # None keeps the input size

    def out_size(self, n: int) -> int:
        return n if self.size is None else self.size

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        m = self.out_size(n)
        return (np.clip(o, 0, m - 1) * n) // m

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        m = self.out_size(n)
        return -((-(np.clip(o, 0, m - 1) + 1) * n) // m) - 1


class WholeInputAxis(AxisOp):
    """Same size, every output depends on the whole input (global pooling broadcast back)."""

    def out_size(self, n: int) -> int:
        return n

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return np.zeros_like(o)

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        return np.full_like(o, n - 1)


@dataclass
class ShuffleAxis(AxisOp):
    """``PixelShuffle(r)`` (``upscale=True``) or ``PixelUnshuffle(r)`` along one axis."""

    factor: int
    upscale: bool = True

    def __post_init__(self) -> None:
        self.scale = Fraction(1, self.factor) if self.upscale else Fraction(self.factor)

    def out_size(self, n: int) -> int:
        if self.upscale:
            return n * self.factor
        if n % self.factor:
            raise ValueError(f"PixelUnshuffle({self.factor}) needs a size divisible by it, got {n}")
        return n // self.factor

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return o // self.factor if self.upscale else o * self.factor

    def last(self, o: np.ndarray, n: int) -> np.ndarray:
        return o // self.factor if self.upscale else o * self.factor + self.factor - 1


@dataclass
class ShiftAxis(AxisOp):
    """Padding (``before``/``after`` > 0) or cropping (< 0): output o is input ``o - before``."""

    before: int = 0
    after: int = 0

    def out_size(self, n: int) -> int:
        out = n + self.before + self.after
        if out < 1:
            raise ValueError(f"cropping {-self.before}+{-self.after} from size {n} leaves nothing")
        return out

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return o - self.before

    last = first


@dataclass
class CropAxis(AxisOp):
    """Keep ``size`` outputs starting at ``offset`` (the FCN crop to the input size)."""

    size: int
    offset: int = 0

    def out_size(self, n: int) -> int:
        if self.offset + self.size > n:
            raise ValueError(f"cannot crop {self.size} (offset {self.offset}) from size {n}")
        return self.size

    def first(self, o: np.ndarray, n: int) -> np.ndarray:
        return o + self.offset

    last = first
