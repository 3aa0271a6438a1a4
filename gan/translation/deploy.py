"""Deploy a translator: ``gan export`` of an OASIS checkpoint (ONNX / ``torch.export``) and its
ONNX Runtime engine.

The exported graph maps a one-hot label map (N, K + 1, H, W) float32 (K classes and void, as
``InputSpec.encode_labels`` makes it) and noise (N, noise_channels) float32, standard normal, to
photos (N, C, H, W) float32 in [-1, 1], for any batch size, height and width: the noise is an
input, so a caller chooses the seed. Its metadata (``metadata_props`` in ONNX,
``toolkit_metadata.json`` in a ``.pt2``): ``toolkit.kind`` = ``translator``, ``toolkit.version``,
``input``, ``output``, ``output_range``, ``noise_channels``, ``input_spec`` (JSON: the classes,
void values, palette and training resolution), ``weights`` and ``onnx_opset``.

pix2pix has no such export: its only noise is dropout kept on at inference, which an exported
graph would draw from its runtime's own random source, so a seed could not choose it.

Nothing here imports Lightning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan.translation.paired_data import InputSpec
from upsample.blocks.spade_generator import SPADEGenerator
from upsample.core.deploy import OPSET, DeployError, export_network, json_list, toolkit_version
from upsample.core.onnx_runtime import OnnxModel

KIND = "translator"
OUTPUT_RANGE = (-1.0, 1.0)


class LabelsToPhoto(nn.Module):
    """The generator with named inputs: ``labels`` (N, K + 1, H, W), ``noise`` (N, Z) -> photos
    (N, C, H, W) in [-1, 1]."""

    def __init__(self, generator: SPADEGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, labels: Tensor, noise: Tensor) -> Tensor:
        return self.generator(labels, noise)


def translator_metadata(
    generator: SPADEGenerator, spec: InputSpec, weights: str = "ema", source: str | None = None
) -> dict[str, str]:
    """The metadata stored with an exported translator (string values)."""
    labels, noise = generator.label_channels, generator.noise_channels
    metadata = {
        "toolkit.kind": KIND,
        "toolkit.version": toolkit_version(),
        "input": f"labels: float32 (N, {labels}, H, W), one-hot (classes, then void); "
        f"noise: float32 (N, {noise}), standard normal",
        "output": f"photos: float32 (N, {generator.out_channels}, H, W); "
        "uint8 = round((x + 1) * 127.5)",
        "output_range": json_list(OUTPUT_RANGE),
        "noise_channels": str(noise),
        "input_spec": json.dumps(spec.to_dict()),
        "weights": weights,
    }
    if source:
        metadata["source"] = source
    return metadata


def export_translator(
    generator: SPADEGenerator,
    spec: InputSpec,
    path: str | Path,
    weights: str = "ema",
    source: str | None = None,
    opset: int = OPSET,
) -> Path:
    """Export a SPADE ``generator`` to ``path`` (``*.onnx`` or ``*.pt2``) with symbolic batch
    size, height and width; raises ``DeployError`` naming the layer that cannot be exported."""
    from torch.export import Dim

    if not isinstance(generator, SPADEGenerator) or not generator.noise_channels:
        raise DeployError(
            "gan export writes OASIS translators (a SPADE generator with noise channels); "
            "pix2pix's dropout noise cannot be seeded in an exported graph"
        )
    generator = generator.eval().to(device="cpu", dtype=torch.float32)
    height, width = spec.image_size
    labels = spec.encode_labels(torch.randint(0, spec.num_classes + 1, (2, height, width)))
    example = (labels, torch.randn(2, generator.noise_channels))
    batch = Dim("batch", min=1)
    dims = ({0: batch, 2: Dim("height", min=2), 3: Dim("width", min=2)}, {0: batch})
    return export_network(
        LabelsToPhoto(generator),
        example,
        dims,
        path,
        input_names=["labels", "noise"],
        output_names=["photos"],
        metadata=translator_metadata(generator, spec, weights, source),
        dimension_names={
            "labels": ("batch", None, "height", "width"),
            "noise": ("batch", None),
            "photos": ("batch", None, "height", "width"),
        },
        opset=opset,
    )


class OnnxTranslator:
    """The ONNX Runtime engine of an exported translator: (labels (N, K + 1, H, W), noise
    (N, Z)) -> float32 photos (N, C, H, W) in [-1, 1]. Has ``noise_channels`` and ``spec``.

    Raises:
        DeployError: naming the file, when it is missing, corrupt or not a translator of this
            toolkit; when called with inputs of the wrong shape.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.model = OnnxModel(path, KIND, threads=threads, num_inputs=2)
        self.path = self.model.path
        with self.model.reading_metadata():
            self.noise_channels = int(self.model.metadata["noise_channels"])
            self.spec = InputSpec.from_dict(json.loads(self.model.metadata["input_spec"]))

    def __call__(self, labels: Tensor, noise: Tensor) -> Tensor:
        channels = self.spec.channels
        if labels.ndim != 4 or labels.shape[1] != channels:
            raise DeployError(
                f"{self.path}: the model takes labels of shape (N, {channels}, H, W), got "
                f"{tuple(labels.shape)}"
            )
        if tuple(noise.shape) != (labels.shape[0], self.noise_channels):
            raise DeployError(
                f"{self.path}: the model takes noise of shape ({labels.shape[0]}, "
                f"{self.noise_channels}), got {tuple(noise.shape)}"
            )
        return self.model.run_tensor(labels, noise)


def export_translator_checkpoint(
    checkpoint: dict[str, Any], ckpt_path: str | Path, output: str | Path, ema: bool, opset: int
) -> Path:
    """``gan export`` of a translator's checkpoint (already read and checked)."""
    from gan.translation.loading import translator_from_checkpoint

    generator, spec = translator_from_checkpoint(checkpoint, ckpt_path, ema)
    weights = "ema" if ema else "raw"
    return export_translator(generator, spec, output, weights, Path(ckpt_path).name, opset)
