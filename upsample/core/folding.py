"""Batch norm folded into the convolution before it, for inference.

At inference a batch-norm layer is a fixed per-channel scale and shift; when it directly follows a
convolution whose output nothing else reads, the scale and shift fold into that convolution's
weight and bias (``torch.nn.utils.fusion.fuse_conv_bn_weights``), and the normalisation layer
becomes an identity (or, for timm's ``BatchNormAct2d``, its dropout and activation). This removes
a pass over every feature map: about a fifth of the EfficientNet-Lite0 FCN's forward pass on a CPU.

Which convolution feeds which normalisation is read from ``torch.fx`` graphs, never guessed from
the order of the layers: each module is traced with convolutions and normalisations as leaves;
one that cannot be traced (shape-dependent control flow, such as the FCN's padding) is skipped and
its children are traced instead. Folding works on a copy; the module given, and so a checkpoint
saved from it, is never changed.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)


class _LeafTracer(fx.Tracer):
    """A tracer that keeps every convolution and normalisation (subclasses too, such as timm's
    ``Conv2dSame`` and ``BatchNormAct2d``) as one call in the graph."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        if isinstance(module, (*_CONVOLUTIONS, _BatchNorm)):
            return True
        return super().is_leaf_module(module, qualified_name)


@dataclass(frozen=True)
class FoldablePair:
    """A convolution (qualified name) whose only reader is the batch norm after it."""

    convolution: str
    norm: str


def _traced_graphs(module: nn.Module, prefix: str = "") -> list[tuple[str, fx.Graph]]:
    """(qualified name, graph) of the largest traceable modules under ``module``."""
    if isinstance(module, (*_CONVOLUTIONS, _BatchNorm)):
        return []
    try:
        return [(prefix, _LeafTracer().trace(module))]
    except Exception:  # any tracing failure: look one level down
        pass
    graphs = []
    for name, child in module.named_children():
        graphs += _traced_graphs(child, f"{prefix}.{name}" if prefix else name)
    return graphs


def _foldable_norm(norm: nn.Module) -> bool:
    """A batch norm whose evaluation is a fixed affine map followed by nothing but (for timm's
    ``BatchNormAct2d``) its dropout and activation."""
    if not isinstance(norm, _BatchNorm) or norm.running_mean is None or norm.running_var is None:
        return False
    return type(norm) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d) or (
        isinstance(getattr(norm, "act", None), nn.Module)
        and isinstance(getattr(norm, "drop", None), nn.Module)
    )


def _foldable_convolution(conv: nn.Module) -> bool:
    if isinstance(conv, nn.ConvTranspose1d | nn.ConvTranspose2d):
        return conv.groups == 1  # the transposed weight's layout folds per output channel only then
    return isinstance(conv, _CONVOLUTIONS)


def foldable_pairs(module: nn.Module) -> list[FoldablePair]:
    """The convolution -> batch norm pairs of ``module`` (in evaluation mode) that fold: the
    convolution's output is read by the batch norm alone, and each of the two modules is called
    exactly once in the traced graphs."""
    modules = dict(module.named_modules())
    graphs = _traced_graphs(module)
    calls: Counter[int] = Counter()
    candidates: list[FoldablePair] = []
    for prefix, graph in graphs:

        def qualified(target: str, prefix: str = prefix) -> str:
            return f"{prefix}.{target}" if prefix else target

        for node in graph.nodes:
            if node.op != "call_module":
                continue
            calls[id(modules[qualified(node.target)])] += 1
            source = node.args[0] if node.args else None
            if (
                _foldable_norm(modules[qualified(node.target)])
                and isinstance(source, fx.Node)
                and source.op == "call_module"
                and len(source.users) == 1
                and _foldable_convolution(modules[qualified(source.target)])
            ):
                candidates.append(FoldablePair(qualified(source.target), qualified(node.target)))
    return [
        pair
        for pair in candidates
        if calls[id(modules[pair.convolution])] == 1 and calls[id(modules[pair.norm])] == 1
    ]


def _replacement(norm: _BatchNorm) -> nn.Module:
    """What is left of a folded batch norm: nothing, or timm's dropout and activation."""
    if type(norm) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        return nn.Identity()
    return nn.Sequential(norm.drop, norm.act)


@torch.no_grad()
def fold_batch_norms(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in evaluation mode with every foldable batch norm folded into the
    convolution before it (see the module docstring). Outputs equal the original's up to float
    rounding (the order of a multiplication changes); the original is not changed."""
    folded = copy.deepcopy(module).eval()
    for pair in foldable_pairs(folded):
        conv = folded.get_submodule(pair.convolution)
        norm = folded.get_submodule(pair.norm)
        transposed = isinstance(conv, nn.ConvTranspose1d | nn.ConvTranspose2d)
        conv.weight, conv.bias = fuse_conv_bn_weights(
            conv.weight,
            conv.bias,
            norm.running_mean,
            norm.running_var,
            norm.eps,
            norm.weight,
            norm.bias,
            transpose=transposed,
        )
        folded.set_submodule(pair.norm, _replacement(norm))
    return folded


def count_batch_norms(module: nn.Module) -> int:
    """The batch-norm layers of ``module``."""
    return sum(isinstance(layer, _BatchNorm) for layer in module.modules())
