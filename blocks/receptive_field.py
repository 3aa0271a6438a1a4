"""Receptive field, jump and output size of a composed network, layer by layer.

The computation is analytical: every layer is described, per spatial axis, by its output size
and by the first and last input index that each output index depends on. Composing these maps
through the network gives, for every output pixel of every layer, the span of network-input
pixels it depends on; the receptive field of a layer is the largest such span (for ordinary
convolutions all output pixels have the same span; after a transposed convolution or an
upsampling the span depends on the pixel's phase, and the table reports the largest).

Padding is treated as if the input extended beyond its border, so the reported receptive field
is the usual theoretical one and may exceed the input size. Adaptive and global pooling depend on
their whole input map. Branches whose outputs are summed or concatenated (residual blocks, ASPP,
FCN skip fusion) depend on the union of their branches' spans: the widest branch.

How a module is described, in order of precedence:

1. a method ``receptive_field_graph()`` returning a graph node (see below);
2. a handler registered with :func:`register_receptive_field` for its type;
3. ``nn.Sequential``: its children in order;
4. known layers: ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``, ``AvgPool2d``,
   ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``, ``Upsample``, ``PixelShuffle``,
   ``PixelUnshuffle``, padding layers; element-wise layers (activations, normalisation, dropout,
   ``Identity``) leave geometry unchanged and get no row.

A graph node is an ``nn.Module``, a :class:`Layer` (one :class:`AxisOp` per axis), a
:class:`Chain` (named nodes applied in order) or a :class:`Branches` (named nodes applied to the
same input, outputs summed or concatenated).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

import numpy as np
from torch import nn

from blocks.geometry import conv_transpose_output_size, pool_output_size

IndexMap = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- one axis, one layer
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


# --------------------------------------------------------------------------------- graph nodes
@dataclass
class Layer:
    """A layer with one :class:`AxisOp` per axis; ``pointwise`` layers get no table row."""

    h: AxisOp
    w: AxisOp
    kind: str = ""
    pointwise: bool = False


@dataclass
class Chain:
    """Named nodes applied one after the other."""

    items: Sequence[tuple[str, Node]]


@dataclass
class Branches:
    """Named nodes applied to the same input; their outputs are summed or concatenated.

    Their output sizes must agree unless ``crop``: then every output is cropped (top-left) to
    the smallest, as the FCN skip fusion does.
    """

    items: Sequence[tuple[str, Node]]
    kind: str = "branches"
    crop: bool = False


Node = Union[nn.Module, Layer, Chain, Branches]  # noqa: UP007 (a runtime alias)

_HANDLERS: dict[type, Callable[[nn.Module], Node]] = {}


def register_receptive_field(module_type: type, to_graph: Callable[[nn.Module], Node]) -> None:
    """Describe modules of ``module_type`` (and subclasses) by ``to_graph(module)``."""
    _HANDLERS[module_type] = to_graph


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def conv_layer(module: nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d) -> Layer:
    """Layer for a convolution or a max/average pooling module."""
    k = _pair(module.kernel_size)
    s = _pair(module.stride if module.stride is not None else module.kernel_size)
    d = _pair(getattr(module, "dilation", 1))
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    padding = module.padding
    if padding == "valid":
        pads = [(0, 0), (0, 0)]
    elif padding == "same":
        totals = [d[i] * (k[i] - 1) for i in range(2)]
        pads = [(t // 2, t - t // 2) for t in totals]
    else:
        p = _pair(padding)
        pads = [(p[0], p[0]), (p[1], p[1])]
    axes = [ConvAxis(k[i], s[i], pads[i][0], pads[i][1], d[i], ceil_mode) for i in range(2)]
    return Layer(axes[0], axes[1], type(module).__name__)


def _conv_transpose_layer(module: nn.ConvTranspose2d) -> Layer:
    k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
    op, d = _pair(module.output_padding), _pair(module.dilation)
    axes = [ConvTransposeAxis(k[i], s[i], p[i], op[i], d[i]) for i in range(2)]
    return Layer(axes[0], axes[1], "ConvTranspose2d")


def _upsample_layer(module: nn.Upsample) -> Layer:
    size = None if module.size is None else _pair(module.size)
    factor = None
    if module.scale_factor is not None:
        sf = module.scale_factor
        sf = (sf, sf) if isinstance(sf, (int, float)) else sf
        factor = tuple(Fraction(f).limit_denominator(1000) for f in sf)
    if module.recompute_scale_factor and factor is not None:
        raise ValueError("receptive_field does not support recompute_scale_factor=True")
    align = bool(module.align_corners)
    axes = [
        ResizeAxis(
            None if size is None else size[i],
            None if factor is None else factor[i],
            module.mode,
            align,
        )
        for i in range(2)
    ]
    return Layer(axes[0], axes[1], type(module).__name__)


def _adaptive_layer(module: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) -> Layer:
    size = module.output_size
    size = (size, size) if isinstance(size, int) or size is None else size
    return Layer(AdaptivePoolAxis(size[0]), AdaptivePoolAxis(size[1]), type(module).__name__)


def _pad_layer(module: nn.Module) -> Layer:
    left, right, top, bottom = module.padding
    return Layer(ShiftAxis(top, bottom), ShiftAxis(left, right), type(module).__name__)


_POINTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Identity,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd,
)


def _resolve(module: nn.Module) -> Node:
    """The graph node describing ``module`` (not itself a module unless it is a leaf)."""
    graph_method = getattr(module, "receptive_field_graph", None)
    if callable(graph_method):
        return graph_method()
    for module_type, handler in _HANDLERS.items():
        if isinstance(module, module_type):
            return handler(module)
    if isinstance(module, nn.Sequential):
        return Chain(list(module.named_children()))
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return conv_layer(module)
    if isinstance(module, nn.ConvTranspose2d):
        return _conv_transpose_layer(module)
    if isinstance(module, nn.Upsample):
        return _upsample_layer(module)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return _adaptive_layer(module)
    if isinstance(module, (nn.PixelShuffle, nn.PixelUnshuffle)):
        up = isinstance(module, nn.PixelShuffle)
        r = module.upscale_factor if up else module.downscale_factor
        return Layer(ShuffleAxis(r, up), ShuffleAxis(r, up), type(module).__name__)
    if isinstance(
        module, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)
    ):
        return _pad_layer(module)
    if isinstance(module, _POINTWISE):
        return Layer(IdentityAxis(), IdentityAxis(), type(module).__name__, pointwise=True)
    raise TypeError(
        f"receptive_field does not know how {type(module).__name__} changes the geometry; give it "
        "a receptive_field_graph() method or register_receptive_field() a handler for its type"
    )


# ------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class ReceptiveFieldRow:
    """One layer: output size (H, W), jump (input pixels between adjacent outputs) and
    receptive field (input pixels one output depends on), per axis ``(height, width)``."""

    name: str
    kind: str
    output_size: tuple[int, int]
    jump_hw: tuple[Fraction, Fraction]
    receptive_field_hw: tuple[int, int]

    @property
    def receptive_field(self) -> int:
        """The receptive field (the larger axis when height and width differ)."""
        return max(self.receptive_field_hw)

    @property
    def jump(self) -> float:
        """The jump (the larger axis when height and width differ)."""
        return float(max(self.jump_hw))


def _format_pair(values: tuple) -> str:
    def one(v: object) -> str:
        return f"{float(v):g}" if isinstance(v, Fraction) else str(v)

    return one(values[0]) if values[0] == values[1] else f"{one(values[0])}x{one(values[1])}"


@dataclass
class ReceptiveFieldTable:
    """Rows of :func:`receptive_field`; ``rows[0]`` is the input, ``rows[-1]`` the network."""

    input_size: tuple[int, int]
    rows: list[ReceptiveFieldRow] = field(default_factory=list)

    @property
    def total(self) -> ReceptiveFieldRow:
        return self.rows[-1]

    def __getitem__(self, key: str | int) -> ReceptiveFieldRow:
        """The row at index ``key``, or of the layer called ``key`` (dotted module path)."""
        if isinstance(key, int):
            return self.rows[key]
        name = key
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no layer named {name!r}; layers: {[r.name for r in self.rows]}")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[ReceptiveFieldRow]:
        return iter(self.rows)

    def __str__(self) -> str:
        header = ("layer", "type", "output", "jump", "receptive field")
        lines = [
            (
                r.name,
                r.kind,
                f"{r.output_size[0]}x{r.output_size[1]}",
                _format_pair(r.jump_hw),
                _format_pair(r.receptive_field_hw),
            )
            for r in self.rows
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        rule = "  ".join("-" * w for w in widths)
        return "\n".join([fmt.format(*header), rule, *(fmt.format(*line) for line in lines)])


@dataclass
class _Map:
    """Span of network-input indices each output index of a sub-network depends on."""

    first: IndexMap
    last: IndexMap
    scale: Fraction


_IDENTITY = _Map(lambda o: o, lambda o: o, Fraction(1))


def _then(before: _Map, after: _Map) -> _Map:
    return _Map(
        lambda o: before.first(after.first(o)),
        lambda o: before.last(after.last(o)),
        before.scale * after.scale,
    )


def _union(maps: list[_Map], name: str) -> _Map:
    if len({m.scale for m in maps}) != 1:
        raise ValueError(f"branches of {name!r} have different jumps: {[m.scale for m in maps]}")
    return _Map(
        lambda o: np.minimum.reduce([m.first(o) for m in maps]),
        lambda o: np.maximum.reduce([m.last(o) for m in maps]),
        maps[0].scale,
    )


def _axis_map(op: AxisOp, n: int) -> _Map:
    return _Map(lambda o: op.first(o, n), lambda o: op.last(o, n), op.scale)


class _Walker:
    def __init__(self) -> None:
        self.rows: list[ReceptiveFieldRow] = []

    def add_row(self, name: str, kind: str, size: tuple[int, int], maps: tuple[_Map, _Map]) -> None:
        rf = []
        for n, m in zip(size, maps, strict=True):
            o = np.arange(n, dtype=np.int64)
            rf.append(int((m.last(o) - m.first(o) + 1).max()))
        jump = (maps[0].scale, maps[1].scale)
        self.rows.append(ReceptiveFieldRow(name or kind, kind, size, jump, (rf[0], rf[1])))

    def walk(
        self,
        node: Node,
        name: str,
        size: tuple[int, int],
        prefix: tuple[_Map, _Map],
        record: bool,
        kind: str = "",
    ) -> tuple[tuple[int, int], tuple[_Map, _Map]]:
        if isinstance(node, nn.Module):
            kind = type(node).__name__
            node = _resolve(node)
        if isinstance(node, nn.Module):  # a receptive_field_graph() returning a (child) module
            return self.walk(node, name, size, prefix, record)
        if isinstance(node, Layer):
            try:
                out = (node.h.out_size(size[0]), node.w.out_size(size[1]))
            except ValueError as error:
                raise ValueError(
                    f"layer {name!r} ({node.kind}) on a {size} input: {error}"
                ) from None
            maps = (
                _then(prefix[0], _axis_map(node.h, size[0])),
                _then(prefix[1], _axis_map(node.w, size[1])),
            )
            if record and not node.pointwise:
                self.add_row(name, kind or node.kind, out, maps)
            return out, maps
        if isinstance(node, Chain):
            for child_name, child in node.items:
                full = f"{name}.{child_name}" if name else str(child_name)
                size, prefix = self.walk(child, full, size, prefix, record)
            return size, prefix
        if isinstance(node, Branches):
            outputs = [
                self.walk(branch, f"{name}.{b}", size, (_IDENTITY, _IDENTITY), False)
                for b, branch in node.items
            ]
            sizes = {out for out, _ in outputs}
            if len(sizes) != 1 and not node.crop:
                raise ValueError(f"branches of {name!r} give different output sizes: {sizes}")
            out = (min(s[0] for s in sizes), min(s[1] for s in sizes))
            maps = tuple(
                _then(prefix[axis], _union([m[axis] for _, m in outputs], name))
                for axis in range(2)
            )
            if record:
                self.add_row(name, kind or node.kind, out, maps)
            return out, maps
        raise TypeError(f"{name!r}: not a receptive-field graph node: {type(node).__name__}")


def receptive_field(module: Node, input_size: int | tuple[int, int]) -> ReceptiveFieldTable:
    """Per-layer output size, jump and receptive field of ``module`` for an input of size
    ``input_size`` (an int for square inputs, or (H, W)). No forward pass is run.

    ``str(table)`` prints the table; ``table.total`` (= ``table.rows[-1]``) describes the whole
    network and ``table[name]`` finds a layer by its dotted module path.
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"input_size must be a positive int or (H, W), got {input_size!r}")
    walker = _Walker()
    walker.add_row("input", "", size, (_IDENTITY, _IDENTITY))
    walker.walk(module, "", size, (_IDENTITY, _IDENTITY), True)
    return ReceptiveFieldTable(size, walker.rows)
