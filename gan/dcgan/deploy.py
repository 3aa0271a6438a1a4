"""Deploy a DCGAN generator: its export (ONNX / ``torch.export``, run by ``gan export``) and the
ONNX Runtime engine of ``gan sample --engine onnxruntime``.

The exported graph maps noise (N, nz) float32, standard normal, to images (N, C, S, S) float32
in [-1, 1] (tanh), for any batch size N. Its metadata (``metadata_props`` in ONNX,
``toolkit_metadata.json`` in a ``.pt2``): ``toolkit.kind`` = ``generator``, ``toolkit.version``,
``input``, ``input_range`` (the noise's distribution), ``output``, ``output_range`` [-1, 1],
``nz``, ``channels``, ``image_size``, ``weights`` (ema or raw) and ``onnx_opset``.

Nothing here imports Lightning; ``gan.export`` reads the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from upsample.core.deploy import OPSET, DeployError, export_network, json_list, toolkit_version
from upsample.core.onnx_runtime import OnnxModel

KIND = "generator"
OUTPUT_RANGE = (-1.0, 1.0)


class NoiseToImage(nn.Module):
    """The generator with a named input: ``noise`` (N, nz) -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, noise: Tensor) -> Tensor:
        return self.generator(noise)


def generator_metadata(
    generator: nn.Module, weights: str = "ema", source: str | None = None
) -> dict[str, str]:
    """The metadata stored with an exported generator (string values)."""
    nz, channels, size = int(generator.nz), int(generator.channels), int(generator.image_size)
    metadata = {
        "toolkit.kind": KIND,
        "toolkit.version": toolkit_version(),
        "input": f"noise: float32 (N, {nz}), standard normal",
        "input_range": "standard normal N(0, 1)",
        "output": f"images: float32 (N, {channels}, {size}, {size}); "
        "uint8 = round((x + 1) * 127.5)",
        "output_range": json_list(OUTPUT_RANGE),
        "nz": str(nz),
        "channels": str(channels),
        "image_size": str(size),
        "weights": weights,
    }
    if source:
        metadata["source"] = source
    return metadata


def export_generator(
    generator: nn.Module,
    path: str | Path,
    weights: str = "ema",
    source: str | None = None,
    opset: int = OPSET,
) -> Path:
    """Export ``generator`` (with ``nz``, ``channels``, ``image_size`` attributes) to ``path``
    (``*.onnx`` or ``*.pt2``) with a symbolic batch size; raises ``DeployError`` naming the layer
    that cannot be exported."""
    from torch.export import Dim

    generator = generator.eval().to(device="cpu", dtype=torch.float32)
    example = (torch.randn(2, int(generator.nz)),)
    return export_network(
        NoiseToImage(generator),
        example,
        ({0: Dim("batch", min=1)},),
        path,
        input_names=["noise"],
        output_names=["images"],
        metadata=generator_metadata(generator, weights, source),
        dimension_names={"noise": ("batch", None), "images": ("batch", None, None, None)},
        opset=opset,
    )


class OnnxGenerator:
    """The ONNX Runtime engine of ``gan sample``: noise (N, nz) -> float32 images (N, C, S, S)
    in [-1, 1], for a model written by ``gan export``. Has ``nz``, ``channels`` and
    ``image_size`` like ``gan.dcgan.models.Generator``.

    Raises:
        DeployError: naming the file, when it is missing, corrupt or not a generator of this
            toolkit; when called with noise of the wrong shape.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.model = OnnxModel(path, KIND, threads=threads)
        self.path = self.model.path
        metadata = self.model.metadata
        with self.model.reading_metadata():
            self.nz = int(metadata["nz"])
            self.channels = int(metadata["channels"])
            self.image_size = int(metadata["image_size"])

    def __call__(self, noise: Tensor) -> Tensor:
        if noise.ndim == 4 and noise.shape[2:] == (1, 1):
            noise = noise.flatten(1)
        if noise.ndim != 2 or noise.shape[1] != self.nz:
            raise DeployError(
                f"{self.path}: the model takes noise of shape (N, {self.nz}), got "
                f"{tuple(noise.shape)}"
            )
        return self.model.run_tensor(noise)
