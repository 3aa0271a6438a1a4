"""Folder inference end to end against model-only forward time on the same images.

Contenders, alternating:

- "end to end": ``seg.predict.FolderPredictor.predict_folder`` over a folder of generated
  Fashion-MNIST-Seg canvases (PNG): decoding in DataLoader workers, the network, argmax, palette
  mask + colour overlay encoded and written in background threads. Settings are the defaults of
  ``seg predict`` (batch size, workers, precision) and the network of
  ``configs/seg/fcn8s_fashion.yaml`` (random weights: speed does not depend on them).
- "model only": the same network's forward passes over the same images, already decoded and
  batched in memory as float tensors, same batch size and numerics.
- "pipeline only": ``seg predict`` with a 1x1-convolution network, for the record of what
  decoding, argmax, encoding and writing cost through the same pipeline.

Target (issue 6, item 4): end to end reaches >= 80% of the model-only throughput.

Usage: ``python -m bench.folder_inference [--quick] [--threads 2] [--num-images 64]``
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.harness import (
    BenchmarkReport,
    Table,
    base_parser,
    configure_threads,
    log_stderr,
    time_alternating,
)
from bench.overhead import CONFIG, DATA_ROOT, REPO, RUNS_DIR, load_config, make_module

TARGET = 0.80
COLUMNS = ["contender", "images/s", "% of model only", "median s", "ms/image", "spread", "repeats"]


def generate_images(num_images: int, image_size: int) -> Path:
    """A folder of ``num_images`` canvases of ``image_size`` pixels (PNG), made once."""
    from seg.data.fashion_seg import FashionSegParams, prepare_fashion_seg

    root = DATA_ROOT / f"infer{image_size}_{num_images}"
    params = FashionSegParams(canvas_size=image_size, min_garments=2, max_garments=5)
    base = prepare_fashion_seg(root, num_train=1, num_val=num_images, params=params)
    return base / "val" / "images"


def predict_defaults() -> dict:
    """The defaults of ``seg predict --input ... --output ...``."""
    from seg.cli import folder_predict_parser

    options = folder_predict_parser().parse_args(
        ["--ckpt_path", "unused", "--input", "unused", "--output", "unused"]
    )
    return vars(options)


def model_only(
    network: torch.nn.Module,
    images: list[torch.Tensor],
    batch_size: int,
    channels_last: bool,
    precision: str,
) -> Callable[[], None]:
    """Forward passes over in-memory float batches (images of one size)."""
    batches = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack(images[start : start + batch_size]).float().div(255.0)
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        batches.append(batch)
    network = network.eval()

    def run() -> None:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, precision == "bf16"):
            for batch in batches:
                network(batch)

    return run


class _TrivialNetwork(torch.nn.Module):
    """A 1x1 convolution to ``num_classes`` logits: folder inference with (almost) no network,
    to measure what decoding, encoding and writing alone cost through the real pipeline."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)


def make_predictor(network: Any, channels_last: bool, **overrides: Any) -> Any:
    """A ``FolderPredictor`` with the defaults of ``seg predict`` (those its constructor takes),
    on the CPU, without a progress bar; ``overrides`` replace defaults (``precision="32"``).
    ``network``: a module or an engine (``seg.deploy.OnnxSegmenter``)."""
    from seg.predict import FolderPredictor

    accepted = inspect.signature(FolderPredictor).parameters
    options = {key: value for key, value in predict_defaults().items() if key in accepted}
    options.update(device="cpu", progress=False, channels_last=channels_last, **overrides)
    return FolderPredictor(network, **options)


def main(argv: Sequence[str] | None = None) -> BenchmarkReport:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=None, help="default 64 (8 --quick)")
    parser.add_argument("--image-size", type=int, default=None, help="default 256 (64 --quick)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="seg config of the network")
    parser.add_argument(
        "--width", type=float, default=None, help="override the config's encoder width"
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    num_images = args.num_images or (8 if args.quick else 64)
    image_size = args.image_size or (64 if args.quick else 256)
    repeats = 1 if args.quick else 5

    from common.io import list_images, read_image

    report = BenchmarkReport(
        name="folder_inference",
        title="Folder inference end to end vs model-only forward",
        settings={"threads": args.threads, "quick": args.quick},
    )
    log_stderr("generating images")
    input_dir = generate_images(num_images, image_size)
    files = list_images(input_dir)
    config = load_config(args.config)
    if args.width is not None:
        config.setdefault("model", {})["width"] = args.width
    module = make_module(config, seed=0)
    network = module.network
    channels_last = bool(module.hparams.channels_last)
    defaults = predict_defaults()
    predictor = make_predictor(network, channels_last)
    pipeline = make_predictor(_TrivialNetwork(module.hparams.num_classes), channels_last)
    work_dir = RUNS_DIR if args.results_dir == REPO / "bench" / "results" else args.results_dir
    work_dir = Path(work_dir) / "folder_inference_outputs"
    shutil.rmtree(work_dir, ignore_errors=True)
    images = [torch.from_numpy(np.asarray(read_image(p))).permute(2, 0, 1) for p in files]

    def folder(predictor: Any, output: Path) -> Callable[[], None]:
        def run() -> None:
            summary = predictor.predict_folder(input_dir, output)
            if not summary.ok or len(summary.written) != len(files):
                raise RuntimeError(f"folder inference did not write every image: {summary}")

        return run

    end_to_end, model, pipeline_only = (
        "end to end (seg predict)",
        "model only",
        "pipeline only (seg predict, 1x1-conv network)",
    )
    contenders = {
        end_to_end: folder(predictor, work_dir / "end_to_end"),
        model: model_only(
            network, images, defaults["batch_size"], channels_last, predictor.precision
        ),
        pipeline_only: folder(pipeline, work_dir / "pipeline"),
    }
    timings = time_alternating(
        contenders,
        warmup=0 if args.quick else 1,
        repeats=repeats,
        min_repeats=repeats,
        log=log_stderr,
    )

    report.settings.update(
        num_images=num_images,
        image_size=image_size,
        config=str(args.config.relative_to(REPO) if args.config.is_absolute() else args.config),
        model=config.get("model", {}),
        channels_last=channels_last,
        predict_defaults={
            key: value
            for key, value in defaults.items()
            if key not in ("ckpt_path", "input", "output", "device", "no_progress")
        },
    )
    model_time = timings[model].median
    rows = []
    for name, timing in timings.items():
        rows.append(
            {
                "contender": name,
                "images/s": num_images / timing.median,
                "% of model only": 100 * model_time / timing.median,
                "median s": timing.median,
                "ms/image": 1000 * timing.median / num_images,
                "spread": timing.spread,
                "repeats": timing.repeats,
            }
        )
    report.tables.append(
        Table(
            f"{num_images} PNG images of {image_size}x{image_size}",
            COLUMNS,
            rows,
            note="The pipeline-only row runs seg predict with a 1x1-convolution network: what "
            "decoding, argmax, encoding and writing cost on their own (not part of the target).",
        )
    )
    ratio = model_time / timings[end_to_end].median
    report.settings["ratio"] = ratio
    report.findings.append(
        f"Folder inference end to end reaches {100 * ratio:.1f}% of the model-only throughput "
        f"(target >= {100 * TARGET:.0f}%): {'met' if ratio >= TARGET else 'NOT met'}."
    )
    pipeline_time = timings[pipeline_only].median
    report.findings.append(
        f"The pipeline alone takes {1000 * pipeline_time / num_images:.1f} ms per image against "
        f"{1000 * model_time / num_images:.1f} ms for the network; with {args.threads} torch "
        f"threads on {report.machine['usable_cores']} cores the two can hardly overlap, which "
        f"caps end to end near {100 * model_time / (model_time + pipeline_time):.0f}% of model "
        "only."
    )
    report.publish(args.results_dir)
    return report


if __name__ == "__main__":
    main()
