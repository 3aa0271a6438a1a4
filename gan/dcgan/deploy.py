"""Deploy a generator: ``gan export`` (ONNX / ``torch.export``) and the ONNX Runtime engine of
``gan sample --engine onnxruntime``.

The exported graph maps noise (N, nz) float32, standard normal, to images (N, C, S, S) float32
in [-1, 1] (tanh), for any batch size N. Its metadata (``metadata_props`` in ONNX,
``toolkit_metadata.json`` in a ``.pt2``): ``toolkit.kind`` = ``generator``, ``toolkit.version``,
``input``, ``input_range`` (the noise's distribution), ``output``, ``output_range`` [-1, 1],
``nz``, ``channels``, ``image_size``, ``weights`` (ema or raw) and ``onnx_opset``.

Nothing here imports Lightning; only ``export_checkpoint`` reads a Lightning checkpoint.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from upsample.core.commands import export_parser as common_export_parser
from upsample.core.commands import run_export_command
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


def export_checkpoint(
    ckpt_path: str | Path,
    output: str | Path,
    ema: bool = True,
    opset: int = OPSET,
    trust: bool = False,
) -> Path:
    """``gan export``: the (EMA) generator of a ``gan fit`` checkpoint to ``output`` (``trust``:
    see ``gan.dcgan.network_io.load_generator``)."""
    from gan.dcgan.network_io import load_generator

    generator = load_generator(ckpt_path, ema=ema, trust=trust)
    return export_generator(
        generator, output, "ema" if ema else "raw", source=Path(ckpt_path).name, opset=opset
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


def export_parser() -> argparse.ArgumentParser:
    """The flags of ``gan export``."""
    parser = common_export_parser(
        "gan",
        "the generator of a `gan fit` checkpoint (EMA weights unless --no_ema)",
        "generator.onnx",
        "Noise (N, nz) in, images (N, C, S, S) in [-1, 1] out; the batch size is dynamic.",
    )
    parser.add_argument(
        "--no_ema", "--no-ema", action="store_true", help="export the raw, not the EMA, generator"
    )
    return parser


def export_command(argv: Sequence[str]) -> int:
    """``gan export``; returns the exit status (0, or 2 with the reason on stderr)."""
    return run_export_command(
        argv,
        export_parser(),
        lambda options: export_checkpoint(
            options.ckpt_path,
            options.output,
            ema=not options.no_ema,
            trust=options.trust_checkpoint,
        ),
    )
