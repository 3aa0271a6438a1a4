"""``seg predict --input DIR --output DIR``: folder inference from the command line, with a
``seg fit`` checkpoint in PyTorch (``--engine torch``) or a ``seg export`` model in ONNX Runtime
(``--engine onnxruntime``, no Lightning needed).

The work is ``seg.inference.predictor.FolderPredictor`` (output layout there); the flags are read
in ``seg.predict_options``. This module runs one process's share (all of the inputs, or
``--shard K/N`` of them) and turns the outcome into ``summary.json`` and the exit status. With
``--trainer.*`` options (or a ``--config`` with a ``trainer:`` section) the run goes across
devices and machines through Lightning's launcher instead (``seg.predict_lightning``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seg.inference.inputs import InputFiles
from seg.inference.stopping import StopRequest, handling_signals
from seg.inference.summary import PredictionSummary
from seg.predict_options import (
    PREDICTOR_FLAGS,
    exit_status,
    folder_predict_parser,
    make_predictor,
    summary_path,
    trainer_options,
)
from upsample.core.commands import run_command
from upsample.core.io import check_output_folder, set_max_image_pixels

__all__ = ["PREDICTOR_FLAGS", "folder_predict", "folder_predict_parser"]


def folder_predict(argv: Sequence[str]) -> int:
    """``seg predict --input DIR --output DIR ...``; returns the exit status."""
    return run_command(argv, folder_predict_parser(), _predict_folder)


def _predict_folder(options: argparse.Namespace) -> int:
    set_max_image_pixels(options.max_image_pixels)
    trainer = trainer_options(options)
    if trainer is not None:
        from seg.predict_lightning import predict_on_devices

        return predict_on_devices(options, trainer)
    predictor = make_predictor(options)
    inputs = InputFiles.from_source(options.input, exclude=options.output)
    check_output_folder(options.output)
    if not inputs.files:
        summary = PredictionSummary(skipped=[(str(options.input), "no image files found")])
        print(summary.report(), file=sys.stderr)
        return exit_status(summary, StopRequest())
    stop = StopRequest()
    with handling_signals(stop):
        summary = predictor.predict_files(
            inputs.share(options.shard), options.output, options.overwrite, stop
        )
    summary.write_json(summary_path(options.output, options.shard), shard=str(options.shard))
    print(summary.report(), file=sys.stderr)
    return exit_status(summary, stop)
