"""The receptive-field table: compose the per-axis spans of a graph, layer by layer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from torch import nn

from upsample.blocks.receptive_field.axes import AxisOp
from upsample.blocks.receptive_field.graph import Branches, Chain, Layer, Node, describe

IndexMap = Callable[[np.ndarray], np.ndarray]


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
        """The last row: the whole network."""
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


_Maps = tuple[_Map, _Map]
_Walked = tuple[tuple[int, int], _Maps]


class _Walker:
    """Walks a graph from the network input, composing spans and recording table rows."""

    def __init__(self) -> None:
        self.rows: list[ReceptiveFieldRow] = []

    def add_row(self, name: str, kind: str, size: tuple[int, int], maps: _Maps) -> None:
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
        prefix: _Maps,
        record: bool,
        kind: str = "",
    ) -> _Walked:
        """Output size and spans after ``node`` applied to a ``size`` input whose spans (from
        the network input) are ``prefix``; rows are recorded only when ``record``."""
        if isinstance(node, nn.Module):
            kind = type(node).__name__
            node = describe(node)
            if isinstance(node, nn.Module):  # a rule letting a child module stand for it
                return self.walk(node, name, size, prefix, record)
        if isinstance(node, Layer):
            return self._layer(node, name, size, prefix, record, kind)
        if isinstance(node, Chain):
            for child_name, child in node.items:
                full = f"{name}.{child_name}" if name else str(child_name)
                size, prefix = self.walk(child, full, size, prefix, record)
            return size, prefix
        if isinstance(node, Branches):
            return self._branches(node, name, size, prefix, record, kind)
        raise TypeError(f"{name!r}: not a receptive-field graph node: {type(node).__name__}")

    def _layer(
        self, node: Layer, name: str, size: tuple[int, int], prefix: _Maps, record: bool, kind: str
    ) -> _Walked:
        try:
            out = (node.h.out_size(size[0]), node.w.out_size(size[1]))
        except ValueError as error:
            raise ValueError(f"layer {name!r} ({node.kind}) on a {size} input: {error}") from None
        maps = (
            _then(prefix[0], _axis_map(node.h, size[0])),
            _then(prefix[1], _axis_map(node.w, size[1])),
        )
        if record and not node.pointwise:
            self.add_row(name, kind or node.kind, out, maps)
        return out, maps

    def _branches(
        self,
        node: Branches,
        name: str,
        size: tuple[int, int],
        prefix: _Maps,
        record: bool,
        kind: str,
    ) -> _Walked:
        outputs = [
            self.walk(branch, f"{name}.{b}", size, (_IDENTITY, _IDENTITY), False)
            for b, branch in node.items
        ]
        sizes = {out for out, _ in outputs}
        if len(sizes) != 1 and not node.crop:
            raise ValueError(f"branches of {name!r} give different output sizes: {sizes}")
        out = (min(s[0] for s in sizes), min(s[1] for s in sizes))
        maps = (
            _then(prefix[0], _union([m[0] for _, m in outputs], name)),
            _then(prefix[1], _union([m[1] for _, m in outputs], name)),
        )
        if record:
            self.add_row(name, kind or node.kind, out, maps)
        return out, maps


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
