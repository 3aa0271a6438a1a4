"""Graph nodes that describe a network's geometry, and the registry of rules that make them.

A node is an ``nn.Module`` (described in turn by its rule), a :class:`Layer` (one
:class:`~upsample.blocks.receptive_field.axes.AxisOp` per axis), a :class:`Chain` (named nodes
applied in order) or a :class:`Branches` (named nodes applied to the same input, outputs summed or
concatenated). A rule, registered for a module type with :func:`register_receptive_field`,
turns a module into a node; the rule of the nearest type in the module's class hierarchy wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

from torch import nn

from upsample.blocks.receptive_field.axes import AxisOp


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
Rule = Callable[[nn.Module], Node]

_RULES: dict[type, Rule] = {}


def register_receptive_field(module_type: type, rule: Rule) -> None:
    """Describe modules of ``module_type`` (and of its subclasses without a rule of their own)
    by the node ``rule(module)``; a later rule for the same type replaces the earlier one."""
    _RULES[module_type] = rule


def describe(module: nn.Module) -> Node:
    """The node of ``module``: the rule of the nearest registered type in its class hierarchy.

    Raises:
        TypeError: no rule covers the module's type.
    """
    for module_type in type(module).__mro__:
        rule = _RULES.get(module_type)
        if rule is not None:
            return rule(module)
    raise TypeError(
        f"receptive_field does not know how {type(module).__name__} changes the geometry; "
        "describe its type with register_receptive_field()"
    )
