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

from bench.harness import REPO, Report, Table, base_parser, log, parse, time_alternating, work_dir
from bench.seg_setup import (
    CONFIG,
    TrivialNetwork,
    folder_inference,
    generate_images,
    load_config,
    make_module,
    make_predictor,
    model_only,
    predict_defaults,
    read_images,
)

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


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the three contenders and write ``folder_inference.json`` / ``.md``."""
    parser = base_parser(__doc__)
    parser.add_argument("--num-images", type=int, default=None, help="default 64 (8 --quick)")
    parser.add_argument("--image-size", type=int, default=None, help="default 256 (64 --quick)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="seg config of the network")
    parser.add_argument("--width", type=float, help="override the config's encoder width")
    args = parse(parser, argv)
    num_images = args.num_images or (8 if args.quick else 64)
    image_size = args.image_size or (64 if args.quick else 256)
    repeats = 1 if args.quick else 5
    log("generating images")
    input_dir = generate_images(num_images, image_size)
    config = load_config(args.config)
    if args.width is not None:
        config.setdefault("model", {})["width"] = args.width
    module = make_module(config)
    channels_last = bool(module.hparams.channels_last)
    predictor = make_predictor(module.network, channels_last)
    pipeline = make_predictor(TrivialNetwork(module.hparams.num_classes), channels_last)
    outputs, defaults = work_dir(args, "folder_inference_outputs"), predict_defaults()
    bf16 = predictor.precision == "bf16"
    images = read_images(input_dir)
    contenders = {
        END_TO_END: folder_inference(predictor, input_dir, outputs / "end_to_end"),
        MODEL: model_only(module.network, images, defaults["batch_size"], channels_last, bf16),
        PIPELINE: folder_inference(pipeline, input_dir, outputs / "pipeline"),
    }
    timings = time_alternating(
        contenders, warmup=0 if args.quick else 1, repeats=repeats, min_repeats=repeats
    )
    config_path = args.config.relative_to(REPO) if args.config.is_absolute() else args.config
    hidden = ("ckpt_path", "input", "output", "device", "no_progress")
    report = Report.start(
        args, "folder_inference", "Folder inference end to end vs model-only forward",
        num_images=num_images, image_size=image_size, config=str(config_path),
        model=config.get("model", {}), channels_last=channels_last,
        predict_defaults={k: v for k, v in defaults.items() if k not in hidden},
    )  # fmt: skip
    model, end_to_end, pipeline = (timings[name].median for name in (MODEL, END_TO_END, PIPELINE))
    rows = [{"contender": name, "images/s": num_images / t.median,
             "% of model only": 100 * model / t.median, "median s": t.median,
             "ms/image": 1000 * t.median / num_images, "spread": t.spread, "repeats": t.repeats}
            for name, t in timings.items()]  # fmt: skip
    title = f"{num_images} PNG images of {image_size}x{image_size}"
    report.tables.append(Table(title, COLUMNS, rows, NOTE))
    ratio = report.settings["ratio"] = model / end_to_end
    report.values = dict(
        share=100 * ratio,
        verdict="met" if ratio >= TARGET else "NOT met",
        pipeline_ms=1000 * pipeline / num_images,
        model_ms=1000 * model / num_images,
        cap=100 * model / (model + pipeline),
        cores=report.machine["usable_cores"],
    )
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
