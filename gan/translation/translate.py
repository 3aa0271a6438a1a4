"""``gan translate``: a photo per label map (or input image) of a folder, from a translator's
checkpoint (pix2pix or OASIS).

Every file under the input folder (recursive) is read as the checkpoint's training data was
(label maps: single-channel class indices, void as declared; resized to the training resolution
with nearest-neighbour) and translated by the EMA generator; the photo is written as
``OUTPUT/<relative path>.png`` at the training resolution, atomically. The noise of each file
(pix2pix's dropout, OASIS's noise channels) is seeded by ``--seed`` and the file's relative path,
so the same checkpoint, seed and file give the same photo whatever else the folder holds. An
unreadable file, or a label map with values that are neither a class nor void, is reported by name
and skipped; the rest is still written and the exit status is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from gan.fid import to_uint8
from gan.translation.loading import load_translator
from gan.translation.paired_data import InputSpec, LabelMapError
from upsample.core.commands import EXIT_SKIPPED, add_max_image_pixels_argument, add_trust_argument
from upsample.core.io import ImageReadError, list_images, save_image_atomic, set_max_image_pixels
from upsample.core.seeding import seeded


@dataclass
class TranslateSummary:
    """What ``translate_folder`` did: files written and (file, reason) pairs skipped."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def file_seed(seed: int, relative: Path) -> int:
    """The noise seed of one file: depends on ``seed`` and its relative path only."""
    digest = hashlib.sha256(f"{seed}\n{relative.as_posix()}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


@torch.no_grad()
def translate_folder(
    generator: torch.nn.Module,
    spec: InputSpec,
    input_dir: str | Path,
    output_dir: str | Path,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> TranslateSummary:
    """Translate every image file under ``input_dir`` into ``output_dir`` (see module docstring).

    Raises:
        FileNotFoundError: ``input_dir`` is missing or holds no image files.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found")
    files = list_images(input_dir)
    if not files:
        raise FileNotFoundError(f"{input_dir}: no image files found (recursive)")
    output_dir.mkdir(parents=True, exist_ok=True)
    generator = generator.eval().to(device)
    summary = TranslateSummary()
    targets: dict[Path, Path] = {}
    disable = None if progress is None else not progress  # None: a bar on terminals only
    for path in tqdm(files, desc="translate", unit="file", disable=disable):
        relative = path.relative_to(input_dir)
        target = output_dir / relative.with_suffix(".png")
        if target in targets:
            reason = f"{targets[target]} already writes {target}"
            summary.skipped.append((path, reason))
            print(f"skipped {path}: {reason}", file=sys.stderr)
            continue
        try:
            inputs = spec.load(path)
        except (ImageReadError, LabelMapError) as error:
            summary.skipped.append((path, str(error)))
            print(f"skipped {error}", file=sys.stderr)
            continue
        targets[target] = path
        with seeded(file_seed(seed, relative), torch.device(device)):
            photo = generator(inputs[None].to(device))
        array = to_uint8(photo.float())[0].permute(1, 2, 0).cpu().numpy()
        summary.written.append(save_image_atomic(Image.fromarray(array), target))
    return summary


def translate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan translate",
        description=(
            "Translate every label map (or input image) under a folder with a pix2pix or OASIS "
            "checkpoint into OUTPUT/<relative path>.png at the training resolution. The same "
            "checkpoint, seed and file give the same photo. Exit status 1 when a file was skipped "
            "(named on stderr), 2 for a bad checkpoint or input folder."
        ),
    )
    parser.add_argument(
        "--ckpt_path", required=True, help="checkpoint of a pix2pix or OASIS `gan fit`"
    )
    parser.add_argument("--input", required=True, help="folder of label maps (recursive)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout noise")
    parser.add_argument(
        "--no_ema", "--no-ema", action="store_true", help="use the raw, not the EMA, generator"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    add_max_image_pixels_argument(parser)
    add_trust_argument(parser)
    return parser


def translate_command(argv: Sequence[str]) -> int:
    """``gan translate``; returns the exit status (errors of the checkpoint or folder raise)."""
    options = translate_parser().parse_args(list(argv))
    set_max_image_pixels(options.max_image_pixels)
    generator, spec = load_translator(
        options.ckpt_path, ema=not options.no_ema, trust=options.trust_checkpoint
    )
    summary = translate_folder(
        generator, spec, options.input, options.output, options.seed, options.device
    )
    print(
        f"{len(summary.written)} photo(s) written to {options.output}"
        + (f", {len(summary.skipped)} file(s) skipped" if summary.skipped else ""),
        file=sys.stderr,
    )
    return EXIT_SKIPPED if summary.skipped else 0
