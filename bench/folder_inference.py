"""Folder inference end to end against model-only forward time on the same images.

Contenders, alternating:

- "end to end": ``seg.inference.FolderPredictor.predict_folder`` over a folder of generated
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

from collections.abc import Sequence
from pathlib import Path

from bench import harness, seg_setup

TARGET = 0.80
COLUMNS = ["contender", "images/s", "% of model only", "median s", "ms/image", "spread", "repeats"]
NOTE = (
    "The pipeline-only row runs seg predict with a 1x1-convolution network: what decoding, "
    "argmax, encoding and writing cost on their own (not part of the target)."
)
END_TO_END, MODEL, PIPELINE = (
    "end to end (seg predict)",
    "model only",
    "pipeline only (seg predict, 1x1-conv network)",
)


def main(argv: Sequence[str] | None = None) -> harness.Report:
    """Time the three contenders and write ``folder_inference.json`` / ``.md``."""
    parser = harness.base_parser(__doc__)
    parser.add_argument("--num-images", type=int, default=None, help="default 64 (8 --quick)")
    parser.add_argument("--image-size", type=int, default=None, help="default 256 (64 --quick)")
    parser.add_argument("--config", type=Path, default=seg_setup.CONFIG, help="seg config")
    parser.add_argument("--width", type=float, help="override the config's encoder width")
    args = harness.parse(parser, argv)
    harness.log("generating images")
    num_images = args.num_images or (8 if args.quick else 64)
    image_size = args.image_size or (64 if args.quick else 256)
    input_dir = seg_setup.generate_images(num_images, image_size)
    config = seg_setup.load_config(args.config)
    if args.width is not None:
        config.setdefault("model", {}).setdefault("network", {})["width"] = args.width
    module = seg_setup.make_module(config)
    network, classes = module.network, module.hparams.num_classes
    channels_last = bool(module.hparams.channels_last)
    predictor = seg_setup.make_predictor(network, channels_last)
    pipeline = seg_setup.make_predictor(seg_setup.TrivialNetwork(classes), channels_last)
    outputs, defaults = (
        harness.work_dir(args, "folder_inference_outputs"),
        seg_setup.predict_defaults(),
    )
    images, bf16 = seg_setup.read_images(input_dir), predictor.precision == "bf16"
    contenders = {
        END_TO_END: seg_setup.folder_inference(predictor, input_dir, outputs / "end_to_end"),
        MODEL: seg_setup.model_only(network, images, defaults["batch_size"], channels_last, bf16),
        PIPELINE: seg_setup.folder_inference(pipeline, input_dir, outputs / "pipeline"),
    }
    repeats = 1 if args.quick else 5
    warmup = 0 if args.quick else 1
    timings = harness.time_alternating(
        contenders, warmup=warmup, repeats=repeats, min_repeats=repeats
    )
    hidden = ("ckpt_path", "input", "output", "device", "no_progress")
    report = harness.Report.start(
        args,
        "folder_inference",
        "Folder inference end to end vs model-only forward",
        num_images=num_images,
        image_size=image_size,
        config=str(harness.shown_path(args.config)),
        model=config.get("model", {}),
        channels_last=channels_last,
        predict_defaults={k: v for k, v in defaults.items() if k not in hidden},
    )
    fill_report(report, timings, num_images, image_size)
    report.write(args.results_dir)
    return report


def fill_report(report: harness.Report, timings: dict, num_images: int, image_size: int) -> None:
    """The table, the ratio and the findings' values."""
    model, end_to_end, pipeline = (timings[name].median for name in (MODEL, END_TO_END, PIPELINE))
    rows = [
        {
            "contender": name,
            "images/s": num_images / t.median,
            "% of model only": 100 * model / t.median,
            "median s": t.median,
            "ms/image": 1000 * t.median / num_images,
            "spread": t.spread,
            "repeats": t.repeats,
        }
        for name, t in timings.items()
    ]
    title = f"{num_images} PNG images of {image_size}x{image_size}"
    report.tables.append(harness.Table(title, COLUMNS, rows, NOTE))
    ratio = report.settings["ratio"] = model / end_to_end
    report.values = dict(
        share=100 * ratio,
        verdict="met" if ratio >= TARGET else "NOT met",
        pipeline_ms=1000 * pipeline / num_images,
        model_ms=1000 * model / num_images,
        cap=100 * model / (model + pipeline),
        cores=report.machine["usable_cores"],
    )


if __name__ == "__main__":
    main()
