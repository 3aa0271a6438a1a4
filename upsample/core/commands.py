"""What the commands that run without Lightning share (``seg predict --input``, ``seg export``,
``gan sample``, ``gan export``): exit statuses, the report of a bad input, the engine flags.

Nothing here imports Lightning, so that these commands also run where it is not installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from upsample.core.deploy import OPSET, DeployError
from upsample.core.io import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV
from upsample.core.trust import TRUST_FLAG, TRUST_HELP

#: exit status of a command that skipped some files and wrote the others.
EXIT_SKIPPED = 1
#: exit status for a bad checkpoint, model, input or output (the reason is on stderr).
EXIT_BAD_INPUT = 2
#: where a command runs the network: a checkpoint in PyTorch, or an exported model.
ENGINES = ("torch", "onnxruntime")


def run_command(
    argv: Sequence[str],
    parser: argparse.ArgumentParser,
    work: Callable[[argparse.Namespace], int],
) -> int:
    """The exit status of ``work`` on the options that ``parser`` reads from ``argv``; a
    ValueError or OSError (``CheckpointError`` and ``DeployError`` are ValueErrors) prints
    ``error: <reason>`` on stderr and gives ``EXIT_BAD_INPUT``."""
    options = parser.parse_args(list(argv))
    try:
        return work(options)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def run_export_command(
    argv: Sequence[str],
    parser: argparse.ArgumentParser,
    export: Callable[[argparse.Namespace], Path],
) -> int:
    """An ``export`` command: ``export`` the parsed options and name the file written with its
    size; the exit status (0, or ``EXIT_BAD_INPUT`` with the reason on stderr)."""

    def work(options: argparse.Namespace) -> int:
        path = export(options)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
        return 0

    return run_command(argv, parser, work)


def export_parser(
    tool: str, source: str, model_file: str, model_io: str
) -> argparse.ArgumentParser:
    """The flags of ``<tool> export``: ``--ckpt_path`` and ``--output`` (``*.onnx`` or ``*.pt2``,
    named like ``model_file``); ``source`` says what is exported, ``model_io`` what the exported
    model takes and gives."""
    stem = Path(model_file).stem
    parser = argparse.ArgumentParser(
        prog=f"{tool} export",
        description=(
            f"Export {source}: OUTPUT.onnx (ONNX opset {OPSET}, for ONNX Runtime) or OUTPUT.pt2 "
            f"(a torch.export program). {model_io} Exit status 2 for a bad checkpoint or output, "
            "or a layer that cannot be exported."
        ),
    )
    parser.add_argument("--ckpt_path", required=True, help=f"checkpoint written by `{tool} fit`")
    parser.add_argument("--output", required=True, help=f"{stem}.onnx or {stem}.pt2")
    add_trust_argument(parser)
    return parser


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_max_image_pixels_argument(parser: argparse.ArgumentParser) -> None:
    """``--max_image_pixels``: the largest image (width x height) a command decodes; a larger one
    (a decompression bomb) is reported by name and skipped (``upsample.core.io.open_image``)."""
    parser.add_argument(
        "--max_image_pixels",
        type=positive_int,
        default=None,
        help=f"largest image decoded, in pixels (default ${MAX_IMAGE_PIXELS_ENV} or "
        f"{DEFAULT_MAX_IMAGE_PIXELS}); larger files are skipped",
    )


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust_checkpoint``: load the checkpoint in full, running any code it holds (without
    it, a file that needs more than tensors, containers, numbers, strings and paths, or names a
    class outside the trusted packages, is refused: ``upsample.core.trust``)."""
    parser.add_argument(
        TRUST_FLAG,
        action="store_true",
        help=TRUST_HELP,
    )


def engine_command_parser(
    prog: str, description: str, tool: str, model_file: str
) -> argparse.ArgumentParser:
    """A parser for a command that runs a ``<tool> fit`` checkpoint in PyTorch or a
    ``<tool> export`` model (such as ``model_file``) in ONNX Runtime, with the flags of
    ``add_engine_arguments``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_engine_arguments(parser, tool, model_file)
    return parser


def add_engine_arguments(parser: argparse.ArgumentParser, tool: str, model_file: str) -> None:
    """``--ckpt_path`` (a ``<tool> fit`` checkpoint, run in PyTorch), ``--engine`` and ``--model``
    (a ``<tool> export`` file such as ``model_file``, run in ONNX Runtime)."""
    parser.add_argument("--ckpt_path", help=f"checkpoint written by `{tool} fit` (--engine torch)")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="torch",
        help=f"torch: a checkpoint in PyTorch; onnxruntime: a `{tool} export` {model_file}",
    )
    parser.add_argument(
        "--model", help=f"{model_file} written by `{tool} export` (--engine onnxruntime)"
    )
    add_trust_argument(parser)


def check_engine_sources(options: argparse.Namespace, tool: str, model_file: str) -> None:
    """Raise ``DeployError`` when the flags of ``add_engine_arguments`` mix the engines:
    onnxruntime runs ``--model`` and no checkpoint, torch runs ``--ckpt_path`` and no model."""
    if options.engine == "onnxruntime":
        if not options.model:
            placeholder = Path(model_file).stem.upper() + Path(model_file).suffix
            raise DeployError(
                f"--engine onnxruntime needs --model {placeholder} (from {tool} export)"
            )
        if options.ckpt_path:
            raise DeployError("--engine onnxruntime runs --model; --ckpt_path is for torch")
    elif options.model or not options.ckpt_path:
        raise DeployError(
            f"--engine torch reads --ckpt_path CKPT (from {tool} fit); --model is for onnxruntime"
        )
