"""Receptive-field rules for the toolkit's own layers, and graphs of the FCN skip decoder.

Each rule says which children a layer applies in which order (or in parallel), so that the
analysis sees through the layer's ``forward``. The FCN decoder reads several encoder features:
its graph is built on top of the encoder's with :func:`fcn_decoder_graph`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from upsample.blocks.context import ASPP, ASPPPooling
from upsample.blocks.conv import ConvNormAct
from upsample.blocks.encoders import BasicBlock, Bottleneck, MultiScaleEncoder, TimmEncoder
from upsample.blocks.fcn_decoder import FEATURE_STRIDES, FCNDecoder
from upsample.blocks.generator import GeneratorUpStack
from upsample.blocks.receptive_field.axes import CropAxis, WholeInputAxis
from upsample.blocks.receptive_field.graph import (
    Branches,
    Chain,
    Layer,
    Node,
    register_receptive_field,
)
from upsample.blocks.receptive_field.torch_rules import residual_block_graph
from upsample.blocks.unet import UNetGenerator, UNetLevel
from upsample.blocks.upsample import UpConv


def encoder_graph(encoder: MultiScaleEncoder) -> Chain:
    """The encoder's stages in order (rows named ``stages.<i>.<layer>``)."""
    return Chain([(f"stages.{i}", stage) for i, stage in enumerate(encoder.stages)])


def encoder_feature_graphs(encoder: MultiScaleEncoder) -> list[Chain]:
    """Graphs of the input -> feature i paths, one per stage (for skip decoders)."""
    items = encoder_graph(encoder).items
    return [Chain(items[: i + 1]) for i in range(len(items))]


def fcn_decoder_graph(
    decoder: FCNDecoder, feature_graphs: Sequence[Node], output_size: Sequence[int] | None = None
) -> Chain:
    """Graph of ``decoder`` on top of ``feature_graphs`` (graphs from the network input to the
    stride-8, 16 and 32 features, e.g. ``encoder_feature_graphs(encoder)[1:]`` plus any context
    module), optionally cropped to ``output_size`` (H, W)."""

    def scored(i: int) -> Chain:
        """Network input -> feature i -> its 1x1 score layer."""
        feature, score = f"feature{FEATURE_STRIDES[i]}", f"score{FEATURE_STRIDES[i]}"
        return Chain([(feature, feature_graphs[i]), (score, decoder.score[score])])

    graph: Node = scored(decoder.used[-1])
    for i in decoder.used[-2::-1]:
        key = f"to{FEATURE_STRIDES[i]}"
        if key in decoder.fuse_up:
            graph = Chain([("fused", graph), (key, decoder.fuse_up[key])])
        graph = Branches([("coarse", graph), ("skip", scored(i))], kind="FCN fusion", crop=True)
    items: list[tuple[str, Node]] = [("fused", graph), ("final_up", decoder.final_up)]
    if output_size is not None:
        crop = Layer(CropAxis(output_size[0]), CropAxis(output_size[1]), "crop")
        items.append(("crop", crop))
    return Chain(items)


def _unet_level_graph(level: UNetLevel) -> Node:
    # Exact for sizes divisible by 2**depth (no padding of odd sizes).
    items: list[tuple[str, Node]] = [("down", level.down)]
    if level.inner is not None:
        items.append(("inner", level.inner))
    path = Chain([*items, ("up", level.up)])
    if not level.skip:
        return path
    return Branches([("skip", nn.Identity()), ("path", path)], kind="concat")


def _aspp_graph(aspp: ASPP) -> Chain:
    branches = Branches([(str(i), b) for i, b in enumerate(aspp.branches)], "ASPP")
    return Chain([("branches", branches), ("project", aspp.project)])


def _timm_encoder_graph(encoder: TimmEncoder) -> Node:
    raise TypeError(
        f"the receptive field of timm model {encoder.model_name!r} is not described (the rules "
        "cover the toolkit's own and the torchvision encoders)"
    )


# A unit is one row, named after the unit: its convolution stands for it.
register_receptive_field(ConvNormAct, lambda unit: unit.conv)
register_receptive_field(UpConv, lambda up: up.conv)
register_receptive_field(
    ASPPPooling, lambda _: Layer(WholeInputAxis(), WholeInputAxis(), "ASPPPooling")
)
register_receptive_field(ASPP, _aspp_graph)
for _block in (BasicBlock, Bottleneck):
    register_receptive_field(_block, lambda block: residual_block_graph(block, block.shortcut))
register_receptive_field(MultiScaleEncoder, encoder_graph)
register_receptive_field(TimmEncoder, _timm_encoder_graph)
register_receptive_field(UNetLevel, _unet_level_graph)
register_receptive_field(UNetGenerator, lambda generator: generator.net)
register_receptive_field(GeneratorUpStack, lambda stack: Chain([("layers", stack.layers)]))
