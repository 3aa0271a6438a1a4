"""Folder inference with the ONNX Runtime engine against the PyTorch engine, side by side, and
against the pipeline as it was before issue 30.

Contenders, alternating on each network (random weights, float32): ``seg predict`` end to end
(decoding, the network, masks and overlays written) with either engine and its defaults; the
PyTorch engine as before (batch norm unfolded, masks made in the main thread right after the
network, one decoding process and one writing thread at the network's priority, four images read
ahead: the pipeline's options and module constants set back to what they were); each engine's
model alone on the same images in memory (the PyTorch engine's network also unfolded); and the
pipeline alone (a 1x1-convolution network). Networks: FCN-8s (``fcn8s_fashion.yaml``) on 256x256
canvases and on 480x360 CamVid photos, FCN-8s lite0 (``camvid_fcn8s_lite0.yaml``) on the photos.
Targets: ONNX Runtime end to end >= 1.3x the PyTorch engine (issue 13); end to end >= 80% of the
engine's own model only for both engines, the PyTorch engine >= 1.2x as fast as before (issue 30).

    python -m bench.onnx_inference [--quick] [--threads 2] [--num-images 64]
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from bench.harness import (
    REPO,
    Report,
    Table,
    base_parser,
    log,
    parse,
    slug,
    time_alternating,
    work_dir,
)

SPEEDUP_TARGET = 1.3
SHARE_TARGET = 0.80
BEFORE_TARGET = 1.2
DATA_ROOT = REPO / "data" / "bench"
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
    "torch_vs_before": ("PyTorch, end to end", "PyTorch, end to end as before"),
    "folding_speedup": ("PyTorch, model only", "PyTorch, model only, batch norm unfolded"),
}
OWN_MODEL = {  # end to end -> the model-only contender of its engine
    "PyTorch, end to end": "PyTorch, model only",
    "PyTorch, end to end as before": "PyTorch, model only, batch norm unfolded",
    "ONNX Runtime, end to end": "ONNX Runtime, model only",
}
#: the settings of the pipeline before issue 30 that are not FolderPredictor options
BEFORE = {"PIPELINE_NICENESS": 0, "BATCHES_AHEAD": 0.5}  # 0.5 x batch 8: 4 images ahead


class CaseReport(Report):
    """A report whose Markdown header leaves out the per-case ratios of its settings (the
    findings state them, the JSON keeps them)."""

    def header(self) -> str:
        shown = {key: v for key, v in self.settings.items() if not isinstance(v, dict)}
        return Report.header(dataclasses.replace(self, settings=shown))


def generate_images(num_images: int, image_size: int) -> Path:
    """A folder of ``num_images`` Fashion-MNIST-Seg canvases of ``image_size`` pixels, made once."""
    from seg.data.fashion_seg import FashionSegParams, prepare_fashion_seg

    root = DATA_ROOT / f"infer{image_size}_{num_images}"
    params = FashionSegParams(canvas_size=image_size, min_garments=2, max_garments=5)
    base = prepare_fashion_seg(root, num_train=1, num_val=num_images, params=params)
    return base / "val" / "images"


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
    for path in sorted(generate_images(num_images, 480).glob("*.png"))[:num_images]:
        Image.open(path).convert("RGB").crop((0, 60, 480, 420)).save(folder / path.name)
    return folder


def read_images(folder: Path) -> list[torch.Tensor]:
    """Every image of ``folder`` decoded as uint8 (3, H, W), as ``seg predict`` lists them."""
    from upsample.core.io import list_images, read_image

    return [torch.from_numpy(np.array(read_image(p))).permute(2, 0, 1) for p in list_images(folder)]


def random_module(config_path: str, quick: bool) -> Any:
    """The config's ``SegmentationModule`` with random encoder weights (nothing to download, the
    same speed), seeded; ``quick``: a narrow network."""
    from seg.module import SegmentationModule

    model = yaml.safe_load((REPO / config_path).read_text()).get("model", {})
    network = model.setdefault("network", {})
    network["encoder_weights"] = None
    if quick:
        network["width"] = 1.0 if "timm" in network.get("encoder", "") else 0.0625
    torch.manual_seed(0)
    return SegmentationModule(**model)


def make_predictor(network: Any, channels_last: bool, **overrides: Any) -> Any:
    """A ``FolderPredictor`` with the defaults of ``seg predict`` on the CPU, without a progress
    bar; ``network``: a module or an ``OnnxSegmenter``."""
    from seg.inference.predictor import FolderPredictor
    from seg.predict import PREDICTOR_FLAGS, folder_predict_parser

    unused = ["--ckpt_path", "unused", "--input", "unused", "--output", "unused"]
    defaults = vars(folder_predict_parser().parse_args(unused))
    options = {flag: defaults[flag] for flag in PREDICTOR_FLAGS}
    options.update(device="cpu", progress=False, channels_last=channels_last, **overrides)
    return FolderPredictor(network, **options)


def folder_inference(
    predictor: Any, input_dir: Path, output: Path, expected: int, before: bool = False
) -> Callable[[], None]:
    """One ``seg predict`` run over ``input_dir`` (every output written again), with the
    pipeline's module constants of before issue 30 when ``before``; fails unless all
    ``expected`` images were written."""
    from seg.inference import folder_run, workers

    constants = ((workers, "PIPELINE_NICENESS"), (folder_run, "BATCHES_AHEAD"))

    def run() -> None:
        saved = [getattr(module, name) for module, name in constants]
        if before:
            for module, name in constants:
                setattr(module, name, BEFORE[name])
        try:
            summary = predictor.predict_folder(input_dir, output, overwrite=True)
        finally:
            for (module, name), value in zip(constants, saved, strict=True):
                setattr(module, name, value)
        if not summary.ok or len(summary.written) != expected:
            raise RuntimeError(f"folder inference did not write every image: {summary}")

    return run


def model_only(
    network: Callable[[torch.Tensor], Any], images: list[torch.Tensor], batch: int, cl: bool
) -> Callable[[], None]:
    """The network's (or engine's) forward passes over in-memory float batches in [0, 1] of
    ``batch`` images, channels-last when ``cl``."""
    batches = [
        torch.stack(images[start : start + batch]).float().div(255.0)
        for start in range(0, len(images), batch)
    ]
    if cl:
        batches = [batch.contiguous(memory_format=torch.channels_last) for batch in batches]

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                network(batch)

    return run


def contenders_of(
    config_path: str, input_dir: Path, images: list[torch.Tensor], args: Any, work: Path
) -> tuple[dict[str, Callable[[], None]], int]:
    """The contenders on the config's network (module docstring) and the batch size."""
    from seg.deploy import OnnxSegmenter, export_segmenter

    module = random_module(config_path, args.quick)
    network, channels_last = module.network.float(), bool(module.hparams.channels_last)
    engine = OnnxSegmenter(
        export_segmenter(network, work / f"{Path(config_path).stem}.onnx"), threads=args.threads
    )
    trivial = torch.nn.Conv2d(3, module.hparams.num_classes, 1)  # (almost) no network
    before = {"num_workers": 1, "writer_threads": 1, "masks_in_writers": False}
    predictors = {
        "PyTorch, end to end": make_predictor(network, channels_last, precision="32"),
        "PyTorch, end to end as before": make_predictor(
            copy.deepcopy(network), channels_last, precision="32", fold_batch_norm=False, **before
        ),
        "ONNX Runtime, end to end": make_predictor(engine, channels_last),
        "pipeline only": make_predictor(trivial, channels_last, precision="32"),
    }
    batch = predictors["PyTorch, end to end"].batch_size
    contenders = {
        name: folder_inference(
            predictor, input_dir, work / slug(name), len(images), name.endswith("before")
        )
        for name, predictor in predictors.items()
    }
    models = {  # each engine as folder inference runs it: the PyTorch one folded, channels-last
        "PyTorch, model only": predictors["PyTorch, end to end"].engine,
        "PyTorch, model only, batch norm unfolded": predictors[
            "PyTorch, end to end as before"
        ].engine,
        "ONNX Runtime, model only": engine,
    }
    for name, runner in models.items():
        contenders[name] = model_only(runner, images, batch, channels_last and runner is not engine)
    return contenders, batch


def paired_ratios(timings: dict[str, Any], speed: dict[str, float]) -> dict[str, float]:
    """The ``PAIRS`` ratios as medians of the per-rotation time ratios (the two timed back to
    back: robust to a load that changes between rotations), and the pipeline's figures."""
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
    return ratios


def measure_case(
    title: str, config_path: str, input_dir: Path, args: Any, work: Path
) -> tuple[Table, dict[str, float]]:
    """Time the contenders on one network and folder: the table and the paired ratios."""
    images = read_images(input_dir)
    contenders, batch = contenders_of(config_path, input_dir, images, args, work)
    repeats, warmup = (1, 0) if args.quick else (7, 1)
    log(f"timing {title}")
    timings = time_alternating(contenders, warmup=warmup, repeats=repeats, min_repeats=repeats)
    speed = {name: len(images) / timing.median for name, timing in timings.items()}
    own = {name: speed[model] for name, model in OWN_MODEL.items()}
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
    ratios = {**paired_ratios(timings, speed), "repeats": repeats}
    note = f"{len(images)} images of {images[0].shape[2]}x{images[0].shape[1]}, batch {batch}"
    return Table(title, COLUMNS, rows, note=note), ratios


def finding(title: str, r: dict[str, float]) -> str:
    """The targets' verdicts of one case."""

    def met(value: float, target: float) -> str:
        return "met" if value >= target else "NOT met"

    share = f"target >= {100 * SHARE_TARGET:.0f}%"
    return (
        f"{title}: end to end {100 * r['onnx_share']:.0f}% of its own model-only throughput with "
        f"ONNX Runtime ({share}: {met(r['onnx_share'], SHARE_TARGET)}), "
        f"{100 * r['torch_share']:.0f}% with the PyTorch engine ({share}: "
        f"{met(r['torch_share'], SHARE_TARGET)}); the PyTorch engine end to end "
        f"{r['torch_vs_before']:.2f}x as fast as before (target >= {BEFORE_TARGET}x: "
        f"{met(r['torch_vs_before'], BEFORE_TARGET)}; batch norm folded: model only "
        f"{r['folding_speedup']:.2f}x); ONNX Runtime end to end {r['speedup']:.2f}x the PyTorch "
        f"engine (target >= {SPEEDUP_TARGET}x: {met(r['speedup'], SPEEDUP_TARGET)}), model only "
        f"{r['model_speedup']:.2f}x. Without overlap of the pipeline's work (pipeline only: "
        f"{r['pipeline_ms']:.0f} ms per image) ONNX Runtime end to end would reach "
        f"{100 * r['serial_share']:.0f}% of its model only."
    )


def main(argv: Sequence[str] | None = None) -> Report:
    """Time every case and write ``onnx_inference.json`` / ``.md``."""
    import onnxruntime

    parser = base_parser(__doc__)
    parser.add_argument("--num-images", type=int, default=None, help="default 64 (4 --quick)")
    parser.add_argument("--camvid", type=Path, default=CAMVID_TEST, help="CamVid test photos")
    args = parse(parser, argv)
    num_images = args.num_images or (4 if args.quick else 64)
    title = "Folder inference: ONNX Runtime engine vs PyTorch engine"
    report = CaseReport.start(
        args,
        "onnx_inference",
        title,
        num_images=num_images,
        onnxruntime=onnxruntime.__version__,
    )
    work = work_dir(args, "onnx_inference_outputs")
    for title, config_path, source in CASES[:2] if args.quick else CASES:
        if source == "canvas":
            input_dir = generate_images(num_images, 64 if args.quick else 256)
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
