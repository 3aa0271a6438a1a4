"""Write images from a trained generator: a grid, single PNGs and latent interpolations.

The noise depends only on the seed, generation runs in evaluation mode on a fixed batch size, so
the same checkpoint and seed give byte-identical files on the same machine and library versions.
Every file is written atomically. The generator is a PyTorch module or an engine of the same
contract, such as the ONNX Runtime engine ``gan.dcgan.deploy.OnnxGenerator`` (``gan sample --engine
onnxruntime``, which imports no Lightning).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.utils import make_grid

from gan.fid import to_uint8
from upsample.core.commands import check_engine_sources, engine_command_parser, run_command
from upsample.core.deploy import DeployError
from upsample.core.io import check_output_folder, save_image_atomic
from upsample.core.onnx_runtime import torch_on_one_thread
from upsample.core.seeding import noise_for_indices

Interpolation = Literal["slerp", "lerp"]
INTERPOLATION_SEED_OFFSET = 7919  # a second, independent noise stream for the endpoints


def lerp(start: Tensor, end: Tensor, weights: Tensor) -> Tensor:
    """Linear interpolation: ``start, end`` ``(P, nz)``, ``weights`` ``(K,)`` -> ``(P, K, nz)``."""
    weights = weights.view(1, -1, 1)
    return start[:, None] * (1 - weights) + end[:, None] * weights


def slerp(start: Tensor, end: Tensor, weights: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation (Shoemake 1985) along the great circle between ``start`` and
    ``end`` ``(P, nz)``, for ``weights`` ``(K,)`` in [0, 1] -> ``(P, K, nz)``.

    Gaussian noise lives near a sphere; slerp keeps intermediate points at a typical norm where
    lerp passes through low-norm points the generator rarely saw. Falls back to lerp for
    (nearly) parallel endpoints.
    """
    unit_start = start / start.norm(dim=1, keepdim=True).clamp_min(eps)
    unit_end = end / end.norm(dim=1, keepdim=True).clamp_min(eps)
    omega = torch.acos((unit_start * unit_end).sum(1).clamp(-1 + eps, 1 - eps))[:, None, None]
    w = weights.view(1, -1, 1)
    sin_omega = torch.sin(omega)
    spherical = (
        torch.sin((1 - w) * omega) / sin_omega * start[:, None]
        + torch.sin(w * omega) / sin_omega * end[:, None]
    )
    nearly_parallel = sin_omega.abs() < 1e-4
    return torch.where(nearly_parallel, lerp(start, end, weights), spherical)


def sample_noise(num: int, nz: int, seed: int) -> Tensor:
    """Standard normal noise ``(num, nz)`` (CPU) whose row ``i`` depends only on ``(seed, i)``
    (``upsample.core.seeding.noise_for_indices``): image ``i`` of a seed is the same whatever
    ``--num`` is (one tensor drawn at once would fill its last rows differently by size)."""
    return noise_for_indices(list(range(num)), nz, seed)


def interpolation_noise(
    pairs: int, steps: int, nz: int, seed: int, mode: Interpolation = "slerp"
) -> Tensor:
    """Noise ``(pairs * steps, nz)``: ``pairs`` random endpoint pairs, ``steps`` points each
    (endpoints included), row-major by pair."""
    if steps < 2:
        raise ValueError(f"interpolation needs at least 2 steps, got {steps}")
    endpoints = sample_noise(2 * pairs, nz, seed + INTERPOLATION_SEED_OFFSET)
    weights = torch.linspace(0, 1, steps)
    interpolate: Callable[[Tensor, Tensor, Tensor], Tensor]
    if mode == "slerp":
        interpolate = slerp
    elif mode == "lerp":
        interpolate = lerp
    else:
        raise ValueError(f"interpolation must be 'slerp' or 'lerp', got {mode!r}")
    return interpolate(endpoints[:pairs], endpoints[pairs:], weights).reshape(-1, nz)


@torch.no_grad()
def generate_images(
    generator: Callable[[Tensor], Tensor], noise: Tensor, batch_size: int = 64, device: str = "cpu"
) -> Tensor:
    """uint8 images ``(N, C, S, S)`` from noise ``(N, nz)``, generated in fixed-size batches by a
    module (in evaluation mode on ``device``) or an engine such as ``OnnxGenerator``."""
    if isinstance(generator, nn.Module):
        generator = generator.eval().to(device)
        chunks = [to_uint8(generator(chunk.to(device))).cpu() for chunk in noise.split(batch_size)]
        return torch.cat(chunks)
    with torch_on_one_thread():  # an engine with its own thread pool (ONNX Runtime)
        return torch.cat([to_uint8(generator(chunk)) for chunk in noise.split(batch_size)])


def to_pil(image: Tensor) -> Image.Image:
    """uint8 ``(1|3, H, W)`` -> PIL image (mode L or RGB)."""
    array = image.numpy()
    if array.shape[0] == 1:
        return Image.fromarray(array[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)), mode="RGB")


def grid_image(images: Tensor, nrow: int) -> Image.Image:
    """uint8 images ``(N, C, S, S)`` tiled into one PIL image, ``nrow`` per row, 2-pixel gaps."""
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=255)
    return to_pil(grid[:1] if images.shape[1] == 1 else grid)


def write_samples(
    generator: Callable[[Tensor], Tensor],
    output: str | Path,
    num: int = 64,
    seed: int = 0,
    interpolate: int = 0,
    interpolation: Interpolation = "slerp",
    pairs: int = 8,
    batch_size: int = 64,
    device: str = "cpu",
) -> list[Path]:
    """Write ``grid.png``, ``samples/sample_00000.png ...`` and, if ``interpolate`` K > 0,
    ``interpolation.png`` (one row of K images per pair) and ``interpolation/pair_00.png ...``.

    Args:
        generator: maps ``(N, nz)`` noise to ``(N, C, S, S)`` images in [-1, 1]; must have ``nz``.
        output: folder for the files (created).
        num: number of single samples (and grid cells).
        seed: seeds all noise.
        interpolate: K, points per interpolation (0: none).
        interpolation: ``slerp`` or ``lerp``.
        pairs: number of interpolated endpoint pairs.

    Returns:
        The paths written.
    """
    output = check_output_folder(output)
    nz = int(generator.nz)
    # Everything is generated before the first file is written: a failure (bad arguments, an
    # engine error) leaves no partial set of files behind.
    samples = between = None
    if num > 0:
        samples = generate_images(generator, sample_noise(num, nz, seed), batch_size, device)
    if interpolate > 0:
        noise = interpolation_noise(pairs, interpolate, nz, seed, interpolation)
        between = generate_images(generator, noise, batch_size, device)
    written: list[Path] = []
    if samples is not None:
        nrow = max(1, math.ceil(math.sqrt(num)))
        written.append(save_image_atomic(grid_image(samples, nrow), output / "grid.png"))
        for index, image in enumerate(samples):
            path = output / "samples" / f"sample_{index:05d}.png"
            written.append(save_image_atomic(to_pil(image), path))
    if between is not None:
        written.append(
            save_image_atomic(grid_image(between, interpolate), output / "interpolation.png")
        )
        for pair, strip in enumerate(between.split(interpolate)):
            path = output / "interpolation" / f"pair_{pair:02d}.png"
            written.append(save_image_atomic(grid_image(strip, interpolate), path))
    return written


# -- command line (``gan sample``) ---------------------------------------------------------------
def sample_parser() -> argparse.ArgumentParser:
    """The flags of ``gan sample``."""
    parser = engine_command_parser(
        "gan sample",
        (
            "Write images from a trained generator (--ckpt_path, PyTorch) or an exported one "
            "(--engine onnxruntime --model generator.onnx, no Lightning needed): "
            "OUTPUT/grid.png, OUTPUT/samples/*.png and, with --interpolate K, "
            "OUTPUT/interpolation.png plus OUTPUT/interpolation/pair_*.png. The same checkpoint "
            "(or model) and seed give byte-identical files."
        ),
        "gan",
        "generator.onnx",
    )
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--num", type=int, default=64, help="number of single samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of all noise")
    parser.add_argument(
        "--interpolate", type=int, default=0, help="K: images per latent interpolation (0: none)"
    )
    parser.add_argument("--interpolation", choices=("slerp", "lerp"), default="slerp")
    parser.add_argument("--pairs", type=int, default=8, help="number of interpolated pairs")
    parser.add_argument(
        "--no_ema", "--no-ema", action="store_true", help="use the raw, not the EMA, generator"
    )
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (torch)")
    return parser


def _generator(options: argparse.Namespace) -> Callable[[Tensor], Tensor]:
    """The generator that ``options`` ask for: a checkpoint's or an exported model's."""
    check_engine_sources(options, "gan", "generator.onnx")
    if options.engine == "onnxruntime":
        if options.no_ema:
            raise DeployError(
                "--engine onnxruntime runs --model (exported with or without EMA by gan "
                "export); --no_ema is for --engine torch"
            )
        if options.device != "cpu":
            raise DeployError("--engine onnxruntime runs on the CPU")
        from gan.dcgan.deploy import OnnxGenerator

        return OnnxGenerator(options.model)
    from gan.dcgan.network_io import load_generator

    return load_generator(options.ckpt_path, ema=not options.no_ema, trust=options.trust_checkpoint)


def sample_command(argv: Sequence[str]) -> int:
    """``gan sample``; returns the exit status (0, or 2 with the reason on stderr)."""
    return run_command(argv, sample_parser(), _sample)


def _sample(options: argparse.Namespace) -> int:
    written = write_samples(
        _generator(options),
        options.output,
        num=options.num,
        seed=options.seed,
        interpolate=options.interpolate,
        interpolation=options.interpolation,
        pairs=options.pairs,
        batch_size=options.batch_size,
        device=options.device,
    )
    print(f"{len(written)} file(s) written to {options.output}", file=sys.stderr)
    return 0
