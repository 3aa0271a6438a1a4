"""``seg predict --input DIR --output DIR``: folder inference from the command line, with a
``seg fit`` checkpoint in PyTorch (``--engine torch``) or a ``seg export`` model in ONNX Runtime
(``--engine onnxruntime``, no Lightning needed).

The work is ``seg.inference.predictor.FolderPredictor`` (output layout there); this module reads
the flags, picks the engine and turns the outcome into the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from torch import nn

from seg.inference.engines import Engine
from seg.inference.predictor import FolderPredictor
from upsample.core.commands import (
    EXIT_SKIPPED,
    add_max_image_pixels_argument,
    check_engine_sources,
    engine_command_parser,
    run_command,
)
from upsample.core.deploy import DeployError
from upsample.core.io import set_max_image_pixels

#: the flags of ``seg predict`` that are ``FolderPredictor`` arguments of the same name.
PREDICTOR_FLAGS = (
    "batch_size",
    "tile_size",
    "overlap",
    "tta",
    "save_probabilities",
    "device",
    "precision",
    "num_workers",
    "writer_threads",
)


def folder_predict_parser() -> argparse.ArgumentParser:
    """The flags of ``seg predict --input DIR``."""
    parser = engine_command_parser(
        "seg predict",
        (
            "Segment every image under a folder with a trained checkpoint (--engine torch) or "
            "an exported ONNX model (--engine onnxruntime, no Lightning needed). Writes "
            "masks/<rel>.png (palette PNG of class indices), overlays/<rel>.jpg and, with "
            "--save_probabilities, probabilities/<rel>.npy (float16, K x H x W). Exit status 1 "
            "when a file was skipped, 2 for a bad checkpoint, model, input or output folder."
        ),
        "seg",
        "model.onnx",
    )
    parser.add_argument("--input", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--batch_size", type=int, default=8, help="tiles per forward pass")
    parser.add_argument(
        "--tile_size", type=int, default=512, help="images larger than this are tiled"
    )
    parser.add_argument("--overlap", type=int, default=64, help="overlap of tiles in pixels")
    parser.add_argument("--tta", action="store_true", help="average with the flipped image")
    parser.add_argument("--save_probabilities", action="store_true")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (torch)")
    parser.add_argument(
        "--precision",
        choices=("auto", "32", "bf16"),
        default="auto",
        help="torch: bf16 autocast, float32, or auto: bf16 where the device computes it "
        "natively; onnxruntime runs the model's float32",
    )
    parser.add_argument("--num_workers", type=int, default=1, help="decoding processes")
    parser.add_argument("--writer_threads", type=int, default=1, help="output-writing threads")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    add_max_image_pixels_argument(parser)
    return parser


def _engine(options: argparse.Namespace) -> tuple[nn.Module | Engine, bool]:
    """The network or engine that ``options`` ask for, and whether to run it channels-last."""
    check_engine_sources(options, "seg", "model.onnx")
    if options.engine == "onnxruntime":
        if options.precision == "bf16" or options.device not in ("auto", "cpu"):
            raise DeployError("--engine onnxruntime runs float32 on the CPU")
        from seg.deploy import OnnxSegmenter

        return OnnxSegmenter(options.model), False
    from seg.network_io import load_network_and_hparams

    network, hparams = load_network_and_hparams(options.ckpt_path, trust=options.trust_checkpoint)
    return network, bool(hparams.get("channels_last", True))


def folder_predict(argv: Sequence[str]) -> int:
    """``seg predict --input DIR --output DIR ...``; returns the exit status."""
    return run_command(argv, folder_predict_parser(), _predict_folder)


def _predict_folder(options: argparse.Namespace) -> int:
    set_max_image_pixels(options.max_image_pixels)
    network, channels_last = _engine(options)
    predictor = FolderPredictor(
        network,
        channels_last=channels_last,
        progress=not options.no_progress,
        **{flag: getattr(options, flag) for flag in PREDICTOR_FLAGS},
    )
    summary = predictor.predict_folder(options.input, options.output)
    print(summary.report(), file=sys.stderr)
    return 0 if summary.ok else EXIT_SKIPPED
