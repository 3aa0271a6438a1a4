"""Folder inference with the ONNX Runtime engine against the PyTorch engine, side by side.

For each network, four contenders alternate (``bench.folder_inference``'s helpers and the same
``seg.predict.FolderPredictor`` with the defaults of ``seg predict``):

- "PyTorch, end to end" / "ONNX Runtime, end to end": ``FolderPredictor.predict_folder`` over a
  folder of images with the PyTorch engine (``seg predict --ckpt_path``) or the ONNX Runtime
  engine (``seg predict --engine onnxruntime``, the network as written by ``seg export``);
- "PyTorch, model only" / "ONNX Runtime, model only": the network's forward passes over the same
  images, already decoded and batched in memory, same batch size;
- "pipeline only": folder inference with a 1x1-convolution network (``bench.folder_inference``'s):
  what decoding, argmax, encoding and writing cost on their own.

Both engines run float32 ("the same numerics": ``--precision 32`` for PyTorch, whatever this CPU's
automatic choice) on the same number of threads. Networks (random weights: speed does not depend
on them): FCN-8s of ``configs/seg/fcn8s_fashion.yaml`` on 256x256 Fashion-MNIST-Seg canvases;
the same FCN-8s on CamVid-sized 480x360 photos; the CamVid FCN-8s with the EfficientNet-Lite0
encoder (``configs/seg/camvid_fcn8s_lite0.yaml``) on the same photos. The photos are CamVid test
images read where they lie (``--camvid``), or generated 480x360 canvases when that folder is
absent.

Targets (issue 13): ONNX Runtime end to end >= 1.3x the PyTorch engine end to end, and >= 80% of
its own model-only throughput.

Usage: ``python -m bench.onnx_inference [--quick] [--threads 2] [--num-images 64]``
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.folder_inference import _TrivialNetwork, generate_images, make_predictor, model_only
from bench.harness import (
    BenchmarkReport,
    Table,
    base_parser,
    configure_threads,
    log_stderr,
    time_alternating,
)
from bench.overhead import DATA_ROOT, REPO, RUNS_DIR, load_config, make_module

SPEEDUP_TARGET = 1.3
SHARE_TARGET = 0.80
CAMVID_TEST = REPO.parent / "shared" / "data" / "camvid" / "test"
COLUMNS = ["contender", "images/s", "x PyTorch end to end", "% of own model only", "spread"]
CASES = (  # name, config, image source
    ("FCN-8s (fcn8s_fashion.yaml), 256x256 canvases", "configs/seg/fcn8s_fashion.yaml", "canvas"),
    ("FCN-8s (fcn8s_fashion.yaml), 480x360 photos", "configs/seg/fcn8s_fashion.yaml", "camvid"),
    (
        "FCN-8s EfficientNet-Lite0 (camvid_fcn8s_lite0.yaml), 480x360 photos",
        "configs/seg/camvid_fcn8s_lite0.yaml",
        "camvid",
    ),
)


def camvid_sized_folder(source: Path, num_images: int, quick: bool) -> Path:
    """The first ``num_images`` CamVid photos (symbolic links, the data stays where it lies), or
    generated canvases of 480x360 when the CamVid folder is absent."""
    folder = DATA_ROOT / f"camvid_sized_{num_images}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    photos = sorted(source.glob("*.png"))[:num_images] if source.is_dir() else []
    if len(photos) == num_images and not quick:
        for photo in photos:
            (folder / photo.name).symlink_to(photo.resolve())
        return folder
    from PIL import Image

    canvases = generate_images(num_images, 480)
    for path in sorted(canvases.glob("*.png"))[:num_images]:
        Image.open(path).convert("RGB").crop((0, 60, 480, 420)).save(folder / path.name)
    return folder


def onnx_model_only(engine: Any, images: list[torch.Tensor], batch_size: int) -> Callable:
    """ONNX Runtime forward passes over in-memory float batches (images of one size)."""
    batches = [
        torch.stack(images[start : start + batch_size]).float().div(255.0)
        for start in range(0, len(images), batch_size)
    ]

    def run() -> None:
        for batch in batches:
            engine(batch)

    return run


def measure_case(
    title: str, config_path: str, input_dir: Path, args: Any, work_dir: Path
) -> tuple[Table, dict[str, float]]:
    from common.io import list_images, read_image
    from seg.deploy import OnnxSegmenter, export_segmenter

    config = load_config(REPO / config_path)
    model = config.setdefault("model", {})
    model["encoder_weights"] = None  # random weights: nothing to download, same speed
    if args.quick:
        model["width"] = 0.0625 if "timm" not in model.get("encoder", "") else 1.0
    module = make_module(config, seed=0)
    network = module.network.float()
    channels_last = bool(module.hparams.channels_last)
    onnx_path = export_segmenter(network, work_dir / f"{Path(config_path).stem}.onnx")
    engine = OnnxSegmenter(onnx_path, threads=args.threads)
    files = list_images(input_dir)
    images = [torch.from_numpy(np.array(read_image(p))).permute(2, 0, 1) for p in files]
    torch_predictor = make_predictor(network, channels_last, precision="32")
    onnx_predictor = make_predictor(engine, channels_last)
    trivial = _TrivialNetwork(module.hparams.num_classes)
    pipeline = make_predictor(trivial, channels_last, precision="32")
    batch_size = torch_predictor.batch_size

    def folder(predictor: Any, output: Path) -> Callable[[], None]:
        def run() -> None:
            summary = predictor.predict_folder(input_dir, output)
            if not summary.ok or len(summary.written) != len(files):
                raise RuntimeError(f"folder inference did not write every image: {summary}")

        return run

    contenders = {
        "PyTorch, end to end": folder(torch_predictor, work_dir / "torch"),
        "PyTorch, model only": model_only(network, images, batch_size, channels_last, "32"),
        "ONNX Runtime, end to end": folder(onnx_predictor, work_dir / "onnxruntime"),
        "ONNX Runtime, model only": onnx_model_only(engine, images, batch_size),
        "pipeline only": folder(pipeline, work_dir / "pipeline"),
    }
    repeats = 1 if args.quick else 7
    log_stderr(f"timing {title}")
    timings = time_alternating(
        contenders, warmup=0 if args.quick else 1, repeats=repeats, min_repeats=repeats
    )
    speed = {name: len(files) / timing.median for name, timing in timings.items()}
    own = {engine: speed[f"{engine}, model only"] for engine in ("PyTorch", "ONNX Runtime")}
    rows = [
        {
            "contender": name,
            "images/s": speed[name],
            "x PyTorch end to end": speed[name] / speed["PyTorch, end to end"],
            "% of own model only": 100 * speed[name] / own.get(name.split(",")[0], np.nan),
            "spread": timing.spread,
        }
        for name, timing in timings.items()
    ]

    def paired(faster: str, slower: str) -> float:
        """Median over repetitions of the time ratio slower / faster within one rotation (A B C
        ... measured back to back), robust to the machine's load changing between rotations."""
        pairs = zip(timings[faster].seconds, timings[slower].seconds, strict=True)
        return statistics.median(slow / fast for fast, slow in pairs)

    ratios = {
        "speedup": paired("ONNX Runtime, end to end", "PyTorch, end to end"),
        "onnx_share": paired("ONNX Runtime, end to end", "ONNX Runtime, model only"),
        "torch_share": paired("PyTorch, end to end", "PyTorch, model only"),
        "model_speedup": paired("ONNX Runtime, model only", "PyTorch, model only"),
        "pipeline_ms": 1000 / speed["pipeline only"],
        # end to end when the pipeline's work does not overlap the network's at all (both
        # competing for the same cores): model / (model + pipeline)
        "serial_share": speed["pipeline only"] / (speed["pipeline only"] + own["ONNX Runtime"]),
        "repeats": repeats,
    }
    note = f"{len(files)} images of {images[0].shape[2]}x{images[0].shape[1]}, batch {batch_size}"
    return Table(title, COLUMNS, rows, note=note), ratios


def lscpu() -> str:
    """Vendor, model name, family and model as ``lscpu`` reports them (CPUs of one name differ)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    keep = ("Vendor ID", "Model name", "CPU family", "Model", "Thread(s) per core")
    fields = dict(line.split(":", 1) for line in lines.splitlines() if ":" in line)
    return ", ".join(f"{key}: {fields[key].strip()}" for key in keep if key in fields)


def main(argv: Sequence[str] | None = None) -> BenchmarkReport:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=None, help="default 64 (4 --quick)")
    parser.add_argument("--camvid", type=Path, default=CAMVID_TEST, help="CamVid test photos")
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    num_images = args.num_images or (4 if args.quick else 64)
    report = BenchmarkReport(
        name="onnx_inference",
        title="Folder inference: ONNX Runtime engine vs PyTorch engine",
        settings={"threads": args.threads, "quick": args.quick, "num_images": num_images},
    )
    import onnxruntime

    report.settings.update(lscpu=lscpu(), onnxruntime=onnxruntime.__version__)
    work_dir = RUNS_DIR if args.results_dir == REPO / "bench" / "results" else args.results_dir
    work_dir = Path(work_dir) / "onnx_inference_outputs"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    cases = CASES[:2] if args.quick else CASES
    for title, config_path, source in cases:
        if source == "canvas":
            input_dir = generate_images(num_images, 64 if args.quick else 256)
        else:
            input_dir = camvid_sized_folder(args.camvid, num_images, args.quick)
        table, ratios = measure_case(title, config_path, input_dir, args, work_dir)
        report.tables.append(table)
        report.settings[title] = {key: round(value, 3) for key, value in ratios.items()}
        speedup_met = "met" if ratios["speedup"] >= SPEEDUP_TARGET else "NOT met"
        share_met = "met" if ratios["onnx_share"] >= SHARE_TARGET else "NOT met"
        report.findings.append(
            f"{title}: ONNX Runtime end to end {ratios['speedup']:.2f}x the PyTorch engine "
            f"(target >= {SPEEDUP_TARGET}x: {speedup_met}); {100 * ratios['onnx_share']:.0f}% of "
            f"its own model-only throughput (target >= {100 * SHARE_TARGET:.0f}%: {share_met}; "
            f"PyTorch engine: {100 * ratios['torch_share']:.0f}%); model only ONNX Runtime "
            f"{ratios['model_speedup']:.2f}x PyTorch. Without overlap of the pipeline's work "
            f"(pipeline only: {ratios['pipeline_ms']:.0f} ms per image) end to end would reach "
            f"{100 * ratios['serial_share']:.0f}% of model only."
        )
    report.findings.append(
        "Both engines run float32 on the same threads; weights are random (throughput does not "
        "depend on them). The 480x360 cases stand for the CamVid model's folder inference. The "
        "ratios here are medians of the per-rotation ratios (contenders timed back to back, robust "
        "to a load that changes between rotations); the tables' columns are ratios of medians."
    )
    report.publish(args.results_dir)
    return report


if __name__ == "__main__":
    main()
