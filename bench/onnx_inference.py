"""Folder inference with the ONNX Runtime engine against the PyTorch engine, side by side.

For each network, five contenders alternate (``seg predict``'s ``FolderPredictor`` with its
defaults, as ``bench.folder_inference`` runs it):

- "PyTorch, end to end" / "ONNX Runtime, end to end": ``FolderPredictor.predict_folder`` over a
  folder of images with the PyTorch engine (``seg predict --ckpt_path``) or the ONNX Runtime
  engine (``seg predict --engine onnxruntime``, the network as written by ``seg export``);
- "PyTorch, model only" / "ONNX Runtime, model only": the network's forward passes over the same
  images, already decoded and batched in memory, same batch size;
- "pipeline only": folder inference with a 1x1-convolution network: what decoding, argmax,
  encoding and writing cost on their own.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from bench import seg_setup
from bench.harness import REPO, Report, Table, base_parser, log, parse, time_alternating, work_dir

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
PAIRS = {  # ratio -> (the faster, the slower) contender, timed back to back
    "speedup": ("ONNX Runtime, end to end", "PyTorch, end to end"),
    "onnx_share": ("ONNX Runtime, end to end", "ONNX Runtime, model only"),
    "torch_share": ("PyTorch, end to end", "PyTorch, model only"),
    "model_speedup": ("ONNX Runtime, model only", "PyTorch, model only"),
}


def camvid_sized_folder(source: Path, num_images: int, quick: bool) -> Path:
    """The first ``num_images`` CamVid photos (symbolic links, the data stays where it lies), or
    generated canvases of 480x360 when the CamVid folder is absent."""
    folder = seg_setup.DATA_ROOT / f"camvid_sized_{num_images}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    photos = sorted(source.glob("*.png"))[:num_images] if source.is_dir() else []
    if len(photos) == num_images and not quick:
        for photo in photos:
            (folder / photo.name).symlink_to(photo.resolve())
        return folder
    for path in sorted(seg_setup.generate_images(num_images, 480).glob("*.png"))[:num_images]:
        Image.open(path).convert("RGB").crop((0, 60, 480, 420)).save(folder / path.name)
    return folder


def contenders_of(config_path: str, input_dir: Path, args: Any, work: Path) -> tuple[dict, int]:
    """The five contenders on the config's network (random weights) and the batch size."""
    from seg.deploy import OnnxSegmenter, export_segmenter

    config = seg_setup.load_config(REPO / config_path)
    network_config = config.setdefault("model", {}).setdefault("network", {})
    network_config["encoder_weights"] = None  # random weights: nothing to download, same speed
    if args.quick:
        timm = "timm" in network_config.get("encoder", "")
        network_config["width"] = 1.0 if timm else 0.0625
    module = seg_setup.make_module(config)
    network, channels_last = module.network.float(), bool(module.hparams.channels_last)
    onnx_path = export_segmenter(network, work / f"{Path(config_path).stem}.onnx")
    engine = OnnxSegmenter(onnx_path, threads=args.threads)
    images = seg_setup.read_images(input_dir)
    trivial = seg_setup.TrivialNetwork(module.hparams.num_classes)
    predictors = {
        "PyTorch": seg_setup.make_predictor(network, channels_last, precision="32"),
        "ONNX Runtime": seg_setup.make_predictor(engine, channels_last),
        "pipeline only": seg_setup.make_predictor(trivial, channels_last, precision="32"),
    }
    batch = predictors["PyTorch"].batch_size
    contenders = {}
    for name, predictor in predictors.items():
        end_to_end = f"{name}, end to end" if name != "pipeline only" else name
        output = work / name.split()[0].lower()
        contenders[end_to_end] = seg_setup.folder_inference(predictor, input_dir, output)
        if name != "pipeline only":
            runner = network if name == "PyTorch" else engine
            cl = channels_last and name == "PyTorch"
            contenders[f"{name}, model only"] = seg_setup.model_only(runner, images, batch, cl)
    return contenders, batch


def measure_case(
    title: str, config_path: str, input_dir: Path, args: Any, work: Path
) -> tuple[Table, dict[str, float]]:
    """Time the five contenders on one network and folder: the table and the paired ratios."""
    contenders, batch = contenders_of(config_path, input_dir, args, work)
    repeats, warmup = (1, 0) if args.quick else (7, 1)
    log(f"timing {title}")
    timings = time_alternating(contenders, warmup=warmup, repeats=repeats, min_repeats=repeats)
    images = seg_setup.read_images(input_dir)
    speed = {name: len(images) / timing.median for name, timing in timings.items()}
    own = {name: speed[f"{name.split(',')[0]}, model only"] for name in speed if "," in name}
    rows = [
        {
            "contender": name,
            "images/s": speed[name],
            "x PyTorch end to end": speed[name] / speed["PyTorch, end to end"],
            "% of own model only": 100 * speed[name] / own[name] if name in own else None,
            "spread": timing.spread,
        }
        for name, timing in timings.items()
    ]
    # Medians of the per-rotation time ratios (the two timed back to back): robust to a load
    # that changes between rotations.
    ratios: dict[str, float] = {
        key: statistics.median(
            slow / fast for fast, slow in zip(timings[a].seconds, timings[b].seconds, strict=True)
        )
        for key, (a, b) in PAIRS.items()
    }
    ratios["pipeline_ms"] = 1000 / speed["pipeline only"]
    # end to end when the pipeline's work does not overlap the network's at all (both
    # competing for the same cores): model / (model + pipeline)
    onnx_model = speed["ONNX Runtime, model only"]
    ratios["serial_share"] = speed["pipeline only"] / (speed["pipeline only"] + onnx_model)
    ratios["repeats"] = repeats
    note = f"{len(images)} images of {images[0].shape[2]}x{images[0].shape[1]}, batch {batch}"
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


def finding(title: str, r: dict[str, float]) -> str:
    """The targets' verdicts of one case."""

    def met(value: float, target: float) -> str:
        return "met" if value >= target else "NOT met"

    return (
        f"{title}: ONNX Runtime end to end {r['speedup']:.2f}x the PyTorch engine (target >= "
        f"{SPEEDUP_TARGET}x: {met(r['speedup'], SPEEDUP_TARGET)}); {100 * r['onnx_share']:.0f}% of "
        f"its own model-only throughput (target >= {100 * SHARE_TARGET:.0f}%: "
        f"{met(r['onnx_share'], SHARE_TARGET)}; PyTorch engine: {100 * r['torch_share']:.0f}%); "
        f"model only ONNX Runtime {r['model_speedup']:.2f}x PyTorch. Without overlap of the "
        f"pipeline's work (pipeline only: {r['pipeline_ms']:.0f} ms per image) end to end would "
        f"reach {100 * r['serial_share']:.0f}% of model only."
    )


def parser_of() -> Any:
    """The options of ``python -m bench.onnx_inference``."""
    parser = base_parser(__doc__)
    parser.add_argument("--num-images", type=int, default=None, help="default 64 (4 --quick)")
    parser.add_argument("--camvid", type=Path, default=CAMVID_TEST, help="CamVid test photos")
    return parser


def main(argv: Sequence[str] | None = None) -> Report:
    """Time every case and write ``onnx_inference.json`` / ``.md``."""
    import onnxruntime

    args = parse(parser_of(), argv)
    num_images = args.num_images or (4 if args.quick else 64)
    title = "Folder inference: ONNX Runtime engine vs PyTorch engine"
    report = Report.start(args, "onnx_inference", title, num_images=num_images, lscpu=lscpu(),
                          onnxruntime=onnxruntime.__version__)  # fmt: skip
    work = work_dir(args, "onnx_inference_outputs")
    for title, config_path, source in CASES[:2] if args.quick else CASES:
        if source == "canvas":
            input_dir = seg_setup.generate_images(num_images, 64 if args.quick else 256)
        else:
            input_dir = camvid_sized_folder(args.camvid, num_images, args.quick)
        table, ratios = measure_case(title, config_path, input_dir, args, work)
        report.tables.append(table)
        report.settings[title] = {key: round(value, 3) for key, value in ratios.items()}
        report.findings.append(finding(title, ratios))
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
