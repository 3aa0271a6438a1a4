"""Folder inference end to end against model-only forward time on the same images.

Contenders, alternating:

- "end to end": ``seg.predict.FolderPredictor.predict_folder`` over a folder of generated
  Fashion-MNIST-Seg canvases (PNG): decoding in DataLoader workers, the network, argmax, palette
  mask + colour overlay encoded and written in background threads. Settings are the defaults of
  ``seg predict`` (batch size, workers, precision) and the network of
  ``configs/seg/fcn8s_fashion.yaml`` (random weights: speed does not depend on them).
- "model only": the same network's forward passes over the same images, already decoded and
  batched in memory as float tensors, same batch size and numerics.
- Also, for the record of where the CPU time goes: decoding alone and encoding + writing alone,
  each in one thread.

Target (issue 6, item 4): end to end reaches >= 80% of the model-only throughput.

Usage: ``python -m bench.folder_inference [--quick] [--threads 2] [--num-images 64]``
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

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


def decode_only(files: list[Path]) -> Callable[[], None]:
    from common.io import read_image

    def run() -> None:
        for path in files:
            torch.from_numpy(np.asarray(read_image(path))).permute(2, 0, 1).contiguous()

    return run


def encode_write_only(
    images: list[torch.Tensor], masks: list[np.ndarray], output: Path
) -> Callable[[], None]:
    """The writer's work (palette mask PNG + overlay PNG, atomic) in one thread."""
    from common.io import save_image_atomic
    from seg.visualize import overlay, palette_mask_image

    arrays = [image.permute(1, 2, 0).numpy() for image in images]

    def run() -> None:
        for index, (image, mask) in enumerate(zip(arrays, masks, strict=True)):
            save_image_atomic(
                palette_mask_image(mask), output / "masks" / f"{index}.png", compress_level=1
            )
            save_image_atomic(
                Image.fromarray(overlay(image, mask)),
                output / "overlays" / f"{index}.png",
                compress_level=1,
            )

    return run


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
    from seg.predict import FolderPredictor

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
    predictor = FolderPredictor(
        network,
        batch_size=defaults["batch_size"],
        tile_size=defaults["tile_size"],
        overlap=defaults["overlap"],
        tta=defaults["tta"],
        save_probabilities=defaults["save_probabilities"],
        device="cpu",
        precision=defaults["precision"],
        num_workers=defaults["num_workers"],
        channels_last=channels_last,
        progress=False,
    )
    work_dir = RUNS_DIR if args.results_dir == REPO / "bench" / "results" else args.results_dir
    work_dir = Path(work_dir) / "folder_inference_outputs"
    shutil.rmtree(work_dir, ignore_errors=True)

    images = [torch.from_numpy(np.asarray(read_image(p))).permute(2, 0, 1) for p in files]
    with torch.inference_mode():
        masks = [
            predictor.predict_probabilities(image[None])[0].argmax(0).to(torch.uint8).numpy()
            for image in images
        ]

    def end_to_end() -> None:
        summary = predictor.predict_folder(input_dir, work_dir / "end_to_end")
        if not summary.ok or len(summary.written) != len(files):
            raise RuntimeError(f"folder inference did not write every image: {summary.report()}")

    contenders = {
        "end to end (seg predict)": end_to_end,
        "model only": model_only(
            network, images, defaults["batch_size"], channels_last, defaults["precision"]
        ),
        "decode only (1 thread)": decode_only(files),
        "encode + write only (1 thread)": encode_write_only(
            images, masks, work_dir / "encode_only"
        ),
    }
    timings = time_alternating(
        contenders, warmup=0 if args.quick else 1, repeats=repeats, min_repeats=repeats,
        log=log_stderr,
    )  # fmt: skip

    report = BenchmarkReport(
        name="folder_inference",
        title="Folder inference end to end vs model-only forward",
        settings={
            "threads": args.threads,
            "quick": args.quick,
            "num_images": num_images,
            "image_size": image_size,
            "config": str(
                args.config.relative_to(REPO) if args.config.is_absolute() else args.config
            ),
            "model": config.get("model", {}),
            "channels_last": channels_last,
            "predict_defaults": {
                key: defaults[key]
                for key in ("batch_size", "tile_size", "precision", "num_workers", "tta")
            },
        },
    )
    model_time = timings["model only"].median
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
            [
                "contender",
                "images/s",
                "% of model only",
                "median s",
                "ms/image",
                "spread",
                "repeats",
            ],
            rows,
            note="Decode-only and encode+write-only rows show the CPU work that end to end "
            "must overlap with the network (they are not part of the target).",
        )
    )
    ratio = model_time / timings["end to end (seg predict)"].median
    report.settings["ratio"] = ratio
    report.findings.append(
        f"Folder inference end to end reaches {100 * ratio:.1f}% of the model-only throughput "
        f"(target >= {100 * TARGET:.0f}%): {'met' if ratio >= TARGET else 'NOT met'}."
    )
    side_work = (
        timings["decode only (1 thread)"].median + timings["encode + write only (1 thread)"].median
    )
    report.findings.append(
        f"Decoding + encoding/writing cost {1000 * side_work / num_images:.1f} ms of CPU per "
        f"image against {1000 * model_time / num_images:.1f} ms for the network; with "
        f"{args.threads} torch threads on {report.machine['usable_cores']} cores, no overlap "
        f"would give at most {100 * model_time / (model_time + side_work):.0f}%."
    )
    json_path, markdown_path = report.write(args.results_dir)
    print(report.to_markdown())
    log_stderr(f"wrote {json_path} and {markdown_path}")
    return report


if __name__ == "__main__":
    main()
