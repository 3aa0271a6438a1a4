"""The options of ``seg predict --input``: its flags, the engine and ``FolderPredictor`` they
make, and where the summary goes; shared by the one-process run (``seg.predict``) and the run
across devices (``seg.predict_lightning``). Read without importing Lightning.

The flags that spread a run over devices and machines are the Lightning ``Trainer``'s
``--trainer.accelerator``, ``--trainer.devices``, ``--trainer.num_nodes`` and
``--trainer.strategy``, on the command line or in the ``trainer:`` section of a ``--config`` file
(the training configs' ``trainer:`` works as it is; its other options, and the file's other
sections, do not apply to folder inference and are ignored).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from seg.inference.engines import Engine
from seg.inference.inputs import Shard
from seg.inference.predictor import FolderPredictor
from seg.inference.stopping import StopRequest
from seg.inference.summary import PredictionSummary
from seg.inference.workers import parse_count
from upsample.core.commands import (
    EXIT_SKIPPED,
    add_max_image_pixels_argument,
    check_engine_sources,
    engine_command_parser,
    positive_int,
)
from upsample.core.deploy import DeployError

#: the ``Trainer`` arguments that folder inference takes.
TRAINER_KEYS = ("accelerator", "devices", "num_nodes", "strategy")


def add_trainer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--trainer.<key>`` for each of ``TRAINER_KEYS``."""
    group = parser.add_argument_group(
        "several devices and machines (Lightning's launcher; any of these runs through it)"
    )
    group.add_argument(
        "--config",
        help="a YAML file whose trainer: section sets the options below (the command line wins)",
    )
    group.add_argument(
        "--trainer.accelerator", dest="trainer_accelerator", help="cpu, gpu, cuda, auto"
    )
    group.add_argument(
        "--trainer.devices", dest="trainer_devices", help="devices per machine: N, auto, or 0,2"
    )
    group.add_argument(
        "--trainer.num_nodes", dest="trainer_num_nodes", type=positive_int, help="machines"
    )
    group.add_argument(
        "--trainer.strategy", dest="trainer_strategy", help="ddp (default), ddp_spawn, ..."
    )


def _devices(value: Any) -> Any:
    """``"2"`` -> 2 (Lightning reads a number of devices as an int); other values unchanged."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def config_trainer_section(path: str | Path) -> dict[str, Any]:
    """The ``TRAINER_KEYS`` of ``path``'s ``trainer:`` section.

    Raises:
        ValueError: naming the file, when it is not a YAML mapping or its trainer: section is
            not one.
    """
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not a YAML file ({error})") from error
    if config is None:
        config = {}
    trainer = config.get("trainer", {}) if isinstance(config, dict) else None
    if not isinstance(trainer, dict | None):
        raise ValueError(f"{path}: expected a YAML mapping with a trainer: mapping")
    return {key: value for key, value in (trainer or {}).items() if key in TRAINER_KEYS}


def trainer_options(options: argparse.Namespace) -> dict[str, Any] | None:
    """The ``Trainer`` arguments given (the ``--config`` file's, then the command line's), or
    None when there are none: the run is then one process without Lightning.

    Raises:
        ValueError: ``--device`` together with trainer options (they choose the devices).
    """
    chosen = config_trainer_section(options.config) if options.config else {}
    for key in TRAINER_KEYS:
        value = getattr(options, f"trainer_{key}")
        if value is not None:
            chosen[key] = value
    if options.config is None and not chosen:
        return None
    if options.device != "auto":
        raise ValueError(
            f"--device {options.device} with Lightning's options: choose the devices with "
            "--trainer.accelerator and --trainer.devices instead"
        )
    if "devices" in chosen:
        chosen["devices"] = _devices(chosen["devices"])
    return chosen


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
            "Segment every image under a folder (or listed in a text file) with a trained "
            "checkpoint (--engine torch) or an exported ONNX model (--engine onnxruntime, no "
            "Lightning needed). Writes masks/<rel>.png (palette PNG of class indices), "
            "overlays/<rel>.jpg, with --save_probabilities probabilities/<rel>.npy (float16, "
            "K x H x W), and summary.json. Images whose outputs are complete are left as they "
            "are (--overwrite redoes them). Exit status 1 when a file was skipped, 2 for a bad "
            "checkpoint, model, input or output folder, 128 + signal when stopped by one."
        ),
        "seg",
        "model.onnx",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="folder of images (searched recursively), or a text file of image paths, one per "
        "line (relative to the file's folder)",
    )
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
    add_run_arguments(parser)
    add_max_image_pixels_argument(parser)
    add_trainer_arguments(parser)
    return parser


def _shard(text: str) -> Shard:
    """An argparse type: ``K/N`` (``Shard.parse``), its error shown by argparse."""
    try:
        return Shard.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a run over a large folder: outputs, resuming, shards, workers, progress."""
    parser.add_argument("--no_overlays", action="store_true", help="write the masks only")
    parser.add_argument(
        "--overwrite", action="store_true", help="redo images whose outputs are complete"
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=Shard(),
        help="K/N: only share K of N (from 0) of the sorted inputs, for N independent "
        "processes such as a job array",
    )
    parser.add_argument(
        "--num_workers",
        type=parse_count,
        default="auto",
        help="decoding processes (auto: from the cores the network leaves)",
    )
    parser.add_argument(
        "--writer_threads",
        type=parse_count,
        default="auto",
        help="mask-making, encoding and writing threads (auto: from the cores left)",
    )
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")


def load_engine(options: argparse.Namespace) -> tuple[nn.Module | Engine, bool]:
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


def make_predictor(options: argparse.Namespace, **overrides: Any) -> FolderPredictor:
    """The ``FolderPredictor`` of the flags (``overrides`` replace some of its arguments)."""
    network, channels_last = load_engine(options)
    arguments = {flag: getattr(options, flag) for flag in PREDICTOR_FLAGS}
    arguments.update(
        channels_last=channels_last,
        progress=not options.no_progress,
        overlays=not options.no_overlays,
        **overrides,
    )
    return FolderPredictor(network, **arguments)


def summary_path(output: str | Path, shard: Shard) -> Path:
    """Where a run's summary goes: ``<output>/summary.json`` (``summary.shard-K-of-N.json`` for
    one shard of a job array, so that the shards do not overwrite each other's)."""
    return Path(output) / f"summary{shard.suffix}.json"


def exit_status(summary: PredictionSummary, stop: StopRequest) -> int:
    """128 + signal for a run stopped by one, else 1 when an input failed, else 0."""
    if stop.exit_status is not None:
        return stop.exit_status
    return 0 if summary.ok else EXIT_SKIPPED
