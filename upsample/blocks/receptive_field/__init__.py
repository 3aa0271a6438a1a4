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

A module is described by the rule registered for its type (:func:`register_receptive_field`,
the nearest type in its class hierarchy): rules for ``torch.nn`` layers and torchvision's ResNet
blocks live in :mod:`~upsample.blocks.receptive_field.torch_rules`, those for the toolkit's layers
in :mod:`~upsample.blocks.receptive_field.toolkit_rules`. A rule returns a graph node: a module, a
:class:`Layer` (one :class:`AxisOp` per axis), a :class:`Chain` or a :class:`Branches`.
"""

from upsample.blocks.receptive_field import (  # noqa: F401 (registers the rules)
    toolkit_rules,
    torch_rules,
)
from upsample.blocks.receptive_field.axes import (
    AdaptivePoolAxis,
    AxisOp,
    ConvAxis,
    ConvTransposeAxis,
    CropAxis,
    IdentityAxis,
    ResizeAxis,
    ShiftAxis,
    ShuffleAxis,
    WholeInputAxis,
)
from upsample.blocks.receptive_field.graph import (
    Branches,
    Chain,
    Layer,
    Node,
    Rule,
    register_receptive_field,
)
from upsample.blocks.receptive_field.table import (
    ReceptiveFieldRow,
    ReceptiveFieldTable,
    receptive_field,
)
from upsample.blocks.receptive_field.toolkit_rules import (
    encoder_feature_graphs,
    encoder_graph,
    fcn_decoder_graph,
)
from upsample.blocks.receptive_field.torch_rules import residual_block_graph

__all__ = [
    "AdaptivePoolAxis",
    "AxisOp",
    "Branches",
    "Chain",
    "ConvAxis",
    "ConvTransposeAxis",
    "CropAxis",
    "IdentityAxis",
    "Layer",
    "Node",
    "ReceptiveFieldRow",
    "ReceptiveFieldTable",
    "ResizeAxis",
    "Rule",
    "ShiftAxis",
    "ShuffleAxis",
    "WholeInputAxis",
    "encoder_feature_graphs",
    "encoder_graph",
    "fcn_decoder_graph",
    "receptive_field",
    "register_receptive_field",
    "residual_block_graph",
]
