"""``gan export``: the generator of a ``gan fit`` checkpoint to ONNX or a ``torch.export``
program, whichever model it holds: a DCGAN's (noise -> image, ``gan.dcgan.deploy``) or an OASIS
translator's (label map and noise -> photo, ``gan.translation.deploy``). The checkpoint is read
once, without running code from it unless ``--trust_checkpoint``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from upsample.core.checkpoint import load_checkpoint
from upsample.core.commands import export_parser as common_export_parser
from upsample.core.commands import run_export_command
from upsample.core.deploy import OPSET


def export_checkpoint(
    ckpt_path: str | Path,
    output: str | Path,
    ema: bool = True,
    opset: int = OPSET,
    trust: bool = False,
) -> Path:
    """The (EMA) generator of a ``gan fit`` checkpoint to ``output`` (``*.onnx`` or ``*.pt2``).

    Raises:
        UntrustedCheckpointError / CheckpointError: as the loaders raise them.
        DeployError: naming the layer that cannot be exported, or a pix2pix checkpoint.
    """
    from gan.translation.loading import is_translator

    checkpoint = load_checkpoint(ckpt_path, trust=trust)
    if is_translator(checkpoint):
        from gan.translation.deploy import export_translator_checkpoint

        return export_translator_checkpoint(checkpoint, ckpt_path, output, ema, opset)
    from gan.dcgan.deploy import export_generator
    from gan.dcgan.network_io import generator_from_checkpoint

    generator = generator_from_checkpoint(checkpoint, ckpt_path, ema)
    weights = "ema" if ema else "raw"
    return export_generator(generator, output, weights, source=Path(ckpt_path).name, opset=opset)


def export_parser() -> argparse.ArgumentParser:
    """The flags of ``gan export``."""
    parser = common_export_parser(
        "gan",
        "the generator of a `gan fit` checkpoint (EMA weights unless --no_ema): a DCGAN's or "
        "an OASIS translator's",
        "generator.onnx",
        "DCGAN: noise (N, nz) in, images (N, C, S, S) in [-1, 1] out. OASIS: a one-hot label "
        "map (N, K + 1, H, W) and noise (N, Z) in, photos (N, C, H, W) out. Batch size (and a "
        "translator's height and width) are dynamic.",
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
