"""CamVid test-set quality after the same CPU budget: our configs and peers on real photos.

Every contender trains through the same ``SegmentationModule`` and Lightning loop with its CamVid
recipe for the same CPU seconds (``bench.budget``), then its last weights are scored once on the
233 test photos at 480x360. Ours: ``configs/seg/camvid_{fcn8s_lite0,atrous_lite0,fcn8s_vgg16}.yaml``
as shipped, FCN-32s and FCN-16s on the lite0 encoder, FCN-8s lite0 in float32. Peers
(``seg.peers``), with the recipe of ``camvid_fcn8s_lite0.yaml``: smp ``Unet`` and ``FPN`` on
``tu-tf_efficientnet_lite0`` with the same ImageNet weights, torchvision ``fcn_resnet50`` from
scratch. Every contender is a ``seg fit`` command line.

    python -m bench.quality_camvid [--budget-cpu-min 45] [--jobs 2] [--only NAME ...] [--quick]
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import harness
from bench.budget import cpu_trainer, forward_gflops, parameter_count
from bench.pictures import load_examples, overlay_pictures, save_examples
from bench.seg_training import (
    SegContender,
    budget_args,
    cli_contender,
    results_of,
    saved_result,
    train_for_budget,
)
from seg.data.labels import CAMVID_CLASSES, CAMVID_PALETTE
from seg.losses import IGNORE_INDEX
from seg.models import FCN
from seg.visualize import colorize

DATA_ROOT = harness.CAMVID
PEER_RECIPE = "configs/seg/camvid_fcn8s_lite0.yaml"


def peer(class_name: str, **init_args: str) -> str:
    """``PEER_RECIPE`` with the network replaced by ``seg.peers.<class_name>``."""
    network = {
        "class_path": f"seg.peers.{class_name}",
        "init_args": {"num_classes": len(CAMVID_CLASSES), **init_args},
    }
    return f"{PEER_RECIPE} --model.network {shlex.quote(json.dumps(network))}"


#: name -> the config and options of ``seg fit`` (a peer: ``PEER_RECIPE`` around its network)
CONTENDERS = {
    "FCN-32s lite0": "configs/seg/camvid_fcn8s_lite0.yaml --model.network.variant fcn32s",
    "FCN-16s lite0": "configs/seg/camvid_fcn8s_lite0.yaml --model.network.variant fcn16s",
    "FCN-8s lite0": "configs/seg/camvid_fcn8s_lite0.yaml",
    # the shipped config picks bf16-mixed where bf16 is native; this row shows what that costs
    "FCN-8s lite0 float32": "configs/seg/camvid_fcn8s_lite0.yaml --trainer.precision 32-true",
    "atrous lite0": "configs/seg/camvid_atrous_lite0.yaml",
    "smp Unet lite0": peer("SmpNetwork", architecture="Unet"),
    "smp FPN lite0": peer("SmpNetwork", architecture="FPN"),
    "tv fcn_resnet50 (scratch)": peer("TorchvisionNetwork", name="fcn_resnet50"),
    "FCN-8s VGG16 (scratch)": "configs/seg/camvid_fcn8s_vgg16.yaml",
}
QUICK_CONTENDERS = ("FCN-8s lite0", "smp Unet lite0")
FCN_ORDER = ("FCN-32s lite0", "FCN-16s lite0", "FCN-8s lite0")
PRECISION_PAIR = ("FCN-8s lite0", "FCN-8s lite0 float32")  # automatic precision, float32
QUICK_ARGS = ["--data.crop_size", "64", "--data.batch_size", "2", "--data.val_batch_size", "2"]
#: Published test mean IoU (Jegou et al. 2017, Table 3; the CamVid README in shared/).
PUBLISHED = {
    "SegNet": 46.4,
    "FCN-8 (ImageNet VGG16)": 57.0,
    "DeepLab-LFOV": 61.6,
    "Dilation8": 65.3,
    "FC-DenseNet103 (scratch)": 66.9,
}
FCN8_PUBLISHED = PUBLISHED["FCN-8 (ImageNet VGG16)"]
EXAMPLE_PHOTOS = (12, 75, 140, 205)  # test photos shown in the pictures
#: void (255 in the masks) drawn black, as in CamVid's colour table
COLOURS = [*CAMVID_PALETTE, (0, 0, 0)]
SCORES_NOTE = (
    "GFLOP/img: forward FLOPs of one 480x360 photo. img/CPU s: training images (352x352 crops, "
    "decoding and augmentation included) per CPU second of the training process. Scores in %."
)


def contender_of(name: str, args: list[str]) -> SegContender:
    """What ``seg fit`` trains for contender ``name`` with ``args`` added."""
    config, *options = shlex.split(CONTENDERS[name])
    return cli_contender(config, [*options, *args])


def test_scores(evaluator: Any, contender: Any) -> dict[str, Any]:
    """Test mean IoU, pixel and class accuracy, per-class IoU and what scoring cost."""
    cpu, wall = time.process_time(), time.perf_counter()
    metrics = evaluator.test(contender.module, datamodule=contender.datamodule, verbose=False)[0]
    return {
        **{key: float(metrics[f"test/{key}"]) for key in ("miou", "pixel_acc", "mean_acc")},
        "pixels": int(metrics["test/pixels"]),
        "per_class_iou": {
            c: float(metrics[f"test/iou/{c}"]) for c in CAMVID_CLASSES if f"test/iou/{c}" in metrics
        },
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
    }


def save_test_examples(module: nn.Module, photos: Any, path: Path) -> None:
    """Keep ``module``'s predictions of the example test photos for the report's pictures."""
    examples = []
    for index in EXAMPLE_PHOTOS:
        photo = photos[index % len(photos)]
        with torch.no_grad():
            prediction = module(photo["image"][None]).argmax(1)[0]
        image, mask = photo["image"].permute(1, 2, 0).numpy(), photo["mask"].numpy()
        examples.append({"image": image, "mask": mask, "prediction": prediction.byte().numpy()})
    save_examples(path, examples)


def run_contender(name: str, budget_s: float, run_root: Path, quick: bool) -> dict[str, Any]:
    """Train ``name`` for ``budget_s`` CPU seconds, score the last weights on the test split."""
    root = run_root / harness.slug(name)
    contender = contender_of(name, budget_args(root, DATA_ROOT) + (QUICK_ARGS if quick else []))
    training = train_for_budget(name, contender, budget_s, root)
    harness.log(f"[{name}] testing the last weights")
    evaluator = cpu_trainer(root, contender.precision, limit_test_batches=2 if quick else 1.0)
    test = test_scores(evaluator, contender)
    evaluator.save_checkpoint(root / "last.ckpt")  # for ``seg predict``
    module = contender.module.eval()
    save_test_examples(module, contender.datamodule.datasets["test"], root / "examples.npz")
    size = (64, 64) if quick else (360, 480)
    return {
        "name": name,
        "kind": "ours" if isinstance(module.network, FCN) else "peer",
        "recipe": contender.recipe,
        "precision": contender.precision,
        "parameters": parameter_count(module.network),
        "forward_gflops_per_image": forward_gflops(module, torch.zeros(1, 3, *size)),
        "training": training,
        "selection": "last weights (the poly decay reaches lr 0 at the end of the budget)",
        "test": test,
    }


def score_row(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """One contender's row of the scores table (scores in %)."""
    training, test = result["training"], result["test"]
    return {
        "contender": name,
        "params (M)": result["parameters"] / 1e6,
        "GFLOP/img": result["forward_gflops_per_image"],
        "batches": training["batches"],
        "epochs": training["epochs"],
        "train CPU s": training["train_cpu_s"],
        "train wall s": training["train_wall_s"],
        "img/CPU s": training["images_seen"] / training["train_cpu_s"],
        "test mIoU": 100 * test["miou"],
        "pixel acc": 100 * test["pixel_acc"],
        "mean class acc": 100 * test["mean_acc"],
    }


def tables_of(results: dict[str, dict[str, Any]]) -> list[harness.Table]:
    """The scores, per-class IoU and published-results tables."""
    rows = [score_row(name, result) for name, result in results.items()]
    classes = [
        {"contender": name, **{c: 100 * v for c, v in r["test"]["per_class_iou"].items()}}
        for name, r in results.items()
    ]
    published = [{"method": m, "test mIoU": v} for m, v in PUBLISHED.items()]
    return [
        harness.Table("CamVid test scores after the CPU budget", list(rows[0]), rows, SCORES_NOTE),
        harness.Table("Per-class test IoU (%)", ["contender", *CAMVID_CLASSES], classes),
        harness.Table(
            "Published test mIoU (Jegou et al. 2017, Table 3)", ["method", "test mIoU"], published
        ),
    ]


def findings_of(results: dict[str, dict[str, Any]], best: str) -> list[str]:
    """The best of ours against the published FCN-8 and against each smp peer."""
    miou = {name: 100 * r["test"]["miou"] for name, r in results.items()}
    gap, epochs = miou[best] - FCN8_PUBLISHED, results[best]["training"]["epochs"]
    verdict = (
        f"beats the published FCN-8 (57.0) by {gap:.1f}"
        if gap > 0
        else f"{-gap:.1f} points below the published FCN-8 (57.0): not met"
    )
    findings = [
        f"Best of ours: {best}, test mIoU {miou[best]:.1f} after {epochs:.1f} epochs: {verdict}."
    ]
    for peer in (n for n in results if n.startswith("smp ")):
        batches = [results[n]["training"]["batches"] for n in (best, peer)]
        findings.append(
            f"{best} vs {peer}: {miou[best]:.1f} vs {miou[peer]:.1f} mIoU "
            f"({miou[best] - miou[peer]:+.1f} points); {batches[0]} vs {batches[1]} batches."
        )
    return findings


def variant_findings(results: dict[str, dict[str, Any]]) -> list[str]:
    """Whether the FCN paper's ordering holds on the lite0 encoder, and what the automatic
    precision gains or costs against float32 after the same budget."""
    miou = {name: 100 * r["test"]["miou"] for name, r in results.items()}
    findings = []
    if all(name in results for name in FCN_ORDER):
        holds = miou[FCN_ORDER[0]] < miou[FCN_ORDER[1]] < miou[FCN_ORDER[2]]
        listed = ", ".join(f"{name} {miou[name]:.1f}" for name in FCN_ORDER)
        findings.append(
            f"FCN paper ordering 32s < 16s < 8s in test mIoU: "
            f"{'holds' if holds else 'does not hold'} ({listed})."
        )
    automatic, float32 = PRECISION_PAIR
    if automatic in results and float32 in results:
        precision = results[automatic]["precision"]
        rate = {
            n: results[n]["training"]["images_seen"] / results[n]["training"]["train_cpu_s"]
            for n in PRECISION_PAIR
        }
        findings.append(
            f"{automatic} in its automatic precision ({precision}) vs float32: "
            f"{miou[automatic]:.1f} vs {miou[float32]:.1f} test mIoU "
            f"({miou[automatic] - miou[float32]:+.1f} points) after the same CPU budget, "
            f"{rate[automatic]:.1f} vs {rate[float32]:.1f} training images per CPU second "
            f"({rate[automatic] / rate[float32]:.2f}x)."
        )
    return findings


def train_in_processes(todo: list[str], args: Any) -> None:
    """Train ``todo`` in ``args.jobs`` processes at once (each a ``--no-report`` run)."""
    command = [sys.executable, "-m", "bench.quality_camvid", "--no-report"]
    command += ["--threads", str(args.threads), "--budget-cpu-min", str(args.budget_cpu_min)]
    command += ["--quick"] if args.quick else []
    workers = [
        subprocess.Popen([*command, "--only", *todo[i :: args.jobs]]) for i in range(args.jobs)
    ]
    if any(worker.wait() for worker in workers):
        sys.exit("a contender failed; see its messages above")


def draw_overlays(results: dict[str, Any], best: str, run_root: Path, out: Path) -> None:
    """The test overlays of ``best`` and of every contender, from the saved examples."""
    examples = {
        name: load_examples(run_root / harness.slug(name) / "examples.npz") for name in results
    }

    def colours(mask: np.ndarray) -> np.ndarray:
        return colorize(np.where(mask == IGNORE_INDEX, len(CAMVID_CLASSES), mask), COLOURS)

    pictures = tuple(out / "images" / f"camvid_test_overlays{s}.png" for s in ("", "_all"))
    legend = ([*CAMVID_CLASSES, "void"], COLOURS)
    overlay_pictures(examples, best, colours, legend, pictures)


def write_report(args: Any, names: list[str], results: dict[str, Any], run_root: Path) -> None:
    """Fill and write ``quality_camvid.json`` / ``.md`` with the pictures."""
    out = args.results_dir
    title = "CamVid test quality per CPU budget: our FCNs and peers"
    report = harness.Report.start(
        args,
        "quality_camvid",
        title,
        budget_cpu_min=args.budget_cpu_min,
        jobs=args.jobs,
        contenders=names,
    )
    ours = [name for name in results if results[name]["kind"] == "ours"]
    best = max(ours, key=lambda name: results[name]["test"]["miou"], default=None)
    report.tables = tables_of(results)
    if best is not None:
        report.findings = findings_of(results, best) + variant_findings(results)
        draw_overlays(results, best, run_root, out)
    report.values = {
        "best": best,
        "precisions": ", ".join(sorted({r["precision"] for r in results.values()})),
        "epochs": ", ".join(f"{n} {r['training']['epochs']:.1f}" for n, r in results.items()),
    }
    report.data = {"results": results, "best_of_ours": best, "published": PUBLISHED}
    report.write(out)


def main(argv: list[str] | None = None) -> None:
    """Train (or reuse) the contenders, test them and write ``quality_camvid.json`` / ``.md``."""
    parser = harness.base_parser(__doc__, threads=1)
    parser.add_argument("--budget-cpu-min", type=float, default=45.0, help="per contender")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), help="contenders to run")
    parser.add_argument("--jobs", type=int, default=1, help="contenders trained at once")
    parser.add_argument("--resume", action="store_true", help="reuse finished contenders")
    parser.add_argument("--no-report", action="store_true", help="train and test only")
    args = harness.parse(parser, argv)
    if not DATA_ROOT.is_dir():
        parser.error(f"CamVid not found at {DATA_ROOT}")
    if args.quick:
        args.budget_cpu_min = 0.03
    names = args.only or list(QUICK_CONTENDERS if args.quick else CONTENDERS)
    run_root = harness.run_root("quality_camvid", args.quick)
    key = {"budget_cpu_min": args.budget_cpu_min, "threads": args.threads, "quick": args.quick}
    if args.jobs > 1:
        todo = [n for n in names if not (args.resume and saved_result(run_root, n, key))]
        if len(todo) > 1:
            train_in_processes(todo, args)
            args.resume = True

    def run(name: str) -> dict[str, Any]:
        return run_contender(name, args.budget_cpu_min * 60, run_root, args.quick)

    results = results_of(names, run_root, key, run, args.resume)
    if not args.no_report:
        write_report(args, names, results, run_root)


if __name__ == "__main__":
    sys.exit(main())
