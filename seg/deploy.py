"""Deploy a segmentation network: ``seg export`` (ONNX / ``torch.export``) and the ONNX Runtime
engine of ``seg predict --engine onnxruntime``.

The exported graph is the whole ``FCN.forward``: float images (N, C, H, W) in [0, 1], normalised
inside the graph, zero-padded to a multiple of the output stride and the logits cropped back, so
one file serves every batch size and every height and width >= ``min_input_size``. Its metadata
(``metadata_props`` in ONNX, ``toolkit_metadata.json`` in a ``.pt2``):

===================  ===================================================================
``toolkit.kind``     ``segmentation``
``toolkit.version``  the toolkit's version
``input``            ``images``: float32 (N, C, H, W), RGB in [0, 1] (``input_range``)
``output``           ``logits``: float32 (N, K, H, W); argmax over K gives the class index
``class_names``      JSON list of K names; ``palette``: JSON list of K [r, g, b]
``num_classes``...   ``in_channels``, ``min_input_size``, ``output_stride``, ``onnx_opset``
===================  ===================================================================

Nothing here imports Lightning; only ``export_checkpoint`` reads a Lightning checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seg.models import FCN, check_images
from seg.visualize import PALETTE
from upsample.core.commands import export_parser as common_export_parser
from upsample.core.commands import run_export_command
from upsample.core.deploy import OPSET, DeployError, export_network, json_list, toolkit_version
from upsample.core.onnx_runtime import OnnxModel

KIND = "segmentation"
INPUT_RANGE = (0.0, 1.0)


def segmentation_metadata(
    network: FCN, hparams: Mapping[str, Any] | None = None, source: str | None = None
) -> dict[str, str]:
    """The metadata stored with an exported segmenter (string values)."""
    hparams = dict(hparams or {})
    num_classes = int(network.num_classes or hparams.get("num_classes") or 0)
    # The dataset's names and colours: the checkpoint's hyperparameters, or what load_network
    # attached to the network; else class_<i> and the VOC colour map.
    names = hparams.get("class_names") or getattr(network, "class_names", None)
    names = names or [f"class_{i}" for i in range(num_classes)]
    palette = hparams.get("palette") or getattr(network, "palette", None)
    palette = palette or PALETTE[:num_classes].tolist()
    colour = "RGB" if network.in_channels == 3 else f"{network.in_channels}-channel"
    metadata = {
        "toolkit.kind": KIND,
        "toolkit.version": toolkit_version(),
        "input": f"images: float32 (N, {network.in_channels}, H, W), {colour} in [0, 1]; "
        "normalisation, padding to the output stride and the crop back are in the graph",
        "input_range": json_list(INPUT_RANGE),
        "output": "logits: float32 (N, num_classes, H, W); argmax over dimension 1 = class index",
        "num_classes": str(num_classes),
        "class_names": json_list(names),
        "palette": json.dumps([list(map(int, colour)) for colour in palette]),
        "in_channels": str(network.in_channels),
        "min_input_size": str(network.min_input_size),
        "output_stride": str(network.output_stride),
        "mean": json_list(network.mean.flatten().tolist()),
        "std": json_list(network.std.flatten().tolist()),
    }
    # The architecture sits under "network" (SegmentationModule's layout; load_network_and_hparams
    # nests older flat checkpoints the same way); a flat mapping is read as it is.
    architecture = hparams.get("network")
    architecture = architecture if isinstance(architecture, Mapping) else hparams
    for key in ("variant", "encoder", "upsampler", "context", "output_stride"):
        if architecture.get(key) is not None:
            metadata[f"hparams.{key}"] = str(architecture[key])
    if source:
        metadata["source"] = source
    return metadata


class _StaticSame(nn.Module):
    """A TF-style "SAME" convolution or pooling (timm's ``Conv2dSame``, ``MaxPool2dSame``,
    ``AvgPool2dSame``) with constant padding.

    "SAME" pads ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` pixels, which depends on
    the size ``n``; where ``n`` is a multiple of the stride ``s`` it is the constant
    ``max((k - 1) * d + 1 - s, 0)``. Inside an ``FCN`` every encoder layer sees a multiple of its
    stride (the input is padded to a multiple of the output stride), so the constant is exact, and
    the exported graph avoids size arithmetic that makes ``torch.export`` take minutes.
    """

    def __init__(self, same: nn.Module) -> None:
        super().__init__()
        self.same = same
        kernel, stride, dilation = (
            _pair(getattr(same, name, 1)) for name in ("kernel_size", "stride", "dilation")
        )
        pad_h, pad_w = (
            max((k - 1) * d + 1 - s, 0) for k, s, d in zip(kernel, stride, dilation, strict=True)
        )
        self.pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        self.kind = type(same).__name__

    def forward(self, x: Tensor) -> Tensor:
        same = self.same
        if self.kind == "MaxPool2dSame":
            x = F.pad(x, self.pads, value=-float("inf"))
            return F.max_pool2d(x, same.kernel_size, same.stride, 0, same.dilation, same.ceil_mode)
        x = F.pad(x, self.pads)
        if self.kind == "AvgPool2dSame":
            return F.avg_pool2d(
                x, same.kernel_size, same.stride, 0, same.ceil_mode, same.count_include_pad
            )
        return F.conv2d(x, same.weight, same.bias, same.stride, 0, same.dilation, same.groups)


_DYNAMIC_SAME = ("Conv2dSame", "MaxPool2dSame", "AvgPool2dSame")


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (value, value)


def static_same_padding(network: FCN) -> FCN:
    """``network`` itself, or a copy whose timm "SAME" layers pad by constants
    (``_StaticSame``): the same function for every input the FCN accepts."""
    targets = [
        name
        for name, module in network.encoder.named_modules()
        if type(module).__name__ in _DYNAMIC_SAME and type(module).__module__.startswith("timm.")
    ]
    if not targets:
        return network
    network = copy.deepcopy(network)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = network.encoder.get_submodule(parent_name) if parent_name else network.encoder
        setattr(parent, child, _StaticSame(getattr(parent, child)))
    return network


def example_size(network: FCN) -> tuple[int, int]:
    """An example (height, width) for the capture: above the minimum and not a multiple of the
    output stride, so that the padding is part of the traced code."""
    base = max(network.min_input_size, network.output_stride)
    return 3 * base + 1, 4 * base + 3


def export_segmenter(
    network: FCN,
    path: str | Path,
    hparams: Mapping[str, Any] | None = None,
    source: str | None = None,
    opset: int = OPSET,
) -> Path:
    """Export ``network`` to ``path`` (``*.onnx`` or ``*.pt2``) with symbolic batch, height and
    width; raises ``DeployError`` naming the layer that cannot be exported."""
    from torch.export import Dim

    network = network.eval().to(device="cpu", dtype=torch.float32)
    network = static_same_padding(network.to(memory_format=torch.contiguous_format))
    height, width = example_size(network)
    example = (torch.rand(2, network.in_channels, height, width),)
    minimum = int(network.min_input_size)
    dims = {
        0: Dim("batch", min=1),
        2: Dim("height", min=minimum),
        3: Dim("width", min=minimum),
    }
    return export_network(
        network,
        example,
        (dims,),
        path,
        input_names=["images"],
        output_names=["logits"],
        metadata=segmentation_metadata(network, hparams, source),
        dimension_names={
            "images": ("batch", None, "height", "width"),
            "logits": ("batch", None, "height", "width"),
        },
        opset=opset,
    )


def export_checkpoint(
    ckpt_path: str | Path, output: str | Path, opset: int = OPSET, trust: bool = False
) -> Path:
    """``seg export``: the network of a ``seg fit`` checkpoint to ``output``."""
    from seg.network_io import load_network_and_hparams

    network, hparams = load_network_and_hparams(ckpt_path, trust=trust)
    if not isinstance(network, FCN):
        raise DeployError(
            f"{ckpt_path}: seg export writes the toolkit's FCNs; this checkpoint's network is "
            f"a {type(network).__module__}.{type(network).__qualname__}"
        )
    return export_segmenter(network, output, hparams, source=Path(ckpt_path).name, opset=opset)


class OnnxSegmenter:
    """The ONNX Runtime engine of folder inference: float images (N, C, H, W) in [0, 1] ->
    float32 logits (N, K, H, W), on the CPU, for a model written by ``seg export``.

    Attributes from the model's metadata: ``in_channels``, ``num_classes``, ``class_names``,
    ``palette``, ``min_input_size``; ``device`` (cpu) and ``precision`` ("32") for
    ``FolderPredictor``.

    Raises:
        DeployError: naming the file, when it is missing, corrupt or not a segmentation model of
            this toolkit; when called with images of the wrong shape.
    """

    device = torch.device("cpu")
    precision = "32"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.model = OnnxModel(path, KIND, threads=threads)
        self.path = self.model.path
        metadata = self.model.metadata
        with self.model.reading_metadata():
            self.num_classes = int(metadata["num_classes"])
            self.min_input_size = int(metadata.get("min_input_size", 1))
            self.class_names = list(json.loads(metadata["class_names"]))
            self.palette = [tuple(colour) for colour in json.loads(metadata["palette"])]
        self.in_channels = self.model.fixed_dimension(1) or int(metadata.get("in_channels", 3))

    def __call__(self, images: Tensor) -> Tensor:
        check_images(images, self.in_channels, self.min_input_size, str(self.path), DeployError)
        return self.model.run_tensor(images)


def export_parser() -> argparse.ArgumentParser:
    """The flags of ``seg export``."""
    return common_export_parser(
        "seg",
        "the network of a `seg fit` checkpoint",
        "model.onnx",
        "Batch, height and width are dynamic; input float32 RGB in [0, 1] (normalised in the "
        "graph), output logits.",
    )


def export_command(argv: Sequence[str]) -> int:
    """``seg export``; returns the exit status (0, or 2 with the reason on stderr)."""
    return run_export_command(
        argv,
        export_parser(),
        lambda options: export_checkpoint(
            options.ckpt_path, options.output, trust=options.trust_checkpoint
        ),
    )
