"""Segmentation quality per CPU budget on Fashion-MNIST-Seg: FCN-32s / 16s / 8s / atrous and peers.

Every contender trains from scratch on the same canvases with the same augmentation, training
recipe and CPU budget, then the whole validation split is scored:

- our four configs ``configs/seg/{fcn32s,fcn16s,fcn8s,atrous}_fashion.yaml``, built through the
  ``seg`` command line exactly as ``seg fit --config ...`` builds them;
- peers (issue: quality per CPU-minute): torchvision ``fcn_resnet50`` and
  segmentation-models-pytorch ``Unet(resnet18)``, random weights, injected as the network of the
  same ``SegmentationModule`` (same loss, optimiser, schedule, data and augmentation as FCN-8s).

The budget is CPU seconds of the training process (``bench.budget``), so runs stay comparable on
a busy machine. The configs' poly learning-rate decay is applied over the CPU budget
(lr * (1 - used / budget) ** 0.9) rather than over a step count that a CPU budget cannot know in
advance; each contender therefore gets a complete decay.

    python -m bench.quality_seg [--budget-cpu-min 8] [--threads 1] [--quick] [--resume]
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from bench import harness
from bench.budget import BUDGET_FRACTIONS, cpu_trainer, forward_gflops, parameter_count
from bench.pictures import load_examples, overlay_pictures, save_examples
from bench.seg_peers import smp_peer, tv_fcn_resnet50
from bench.seg_training import budget_args, cli_contender, results_of, slug, train_for_budget
from seg.data.fashion_seg import FASHION_CLASSES
from seg.losses import IGNORE_INDEX
from seg.visualize import PALETTE, colorize

CONFIGS = {
    "FCN-32s": "configs/seg/fcn32s_fashion.yaml",
    "FCN-16s": "configs/seg/fcn16s_fashion.yaml",
    "FCN-8s": "configs/seg/fcn8s_fashion.yaml",
    "atrous": "configs/seg/atrous_fashion.yaml",
    # The configs as shipped choose their precision from the hardware (bf16-mixed where bf16 is
    # native); these force float32, to show what that choice costs or gains in quality.
    "FCN-8s float32": "configs/seg/fcn8s_fashion.yaml",
    "atrous float32": "configs/seg/atrous_fashion.yaml",
}
PRECISION_OVERRIDES = {"FCN-8s float32": "32-true", "atrous float32": "32-true"}
#: Peers train with this config's data, augmentation and training settings (only the network
#: differs); random weights.
PEER_RECIPE = "configs/seg/fcn8s_fashion.yaml"
PEERS = {
    "tv fcn_resnet50": tv_fcn_resnet50,
    "smp Unet-resnet18": lambda num_classes: smp_peer("Unet", "resnet18", num_classes),
}
FCN_ORDER = ("FCN-32s", "FCN-16s", "FCN-8s")
BOUNDARY_RADIUS = 2
NUM_EXAMPLES = 6
# table column -> key of the training summary / of the final scores
# fmt: off
TRAINING_COLUMNS = {"batches": "batches", "epochs": "epochs", "CPU s": "train_cpu_s",
                    "CPU s/batch": "cpu_s_per_batch"}
FINAL_COLUMNS = {"mIoU": "miou", "pixel acc": "pixel_acc", "mean class acc": "mean_acc",
                 "garment class acc": "garment_class_acc",
                 "garment/bg IoU": "garment_vs_background_iou", "boundary acc": "boundary_acc",
                 "interior acc": "interior_acc"}
# fmt: on
MAIN_NOTE = (
    "GFLOP/img: forward FLOPs of one 96x96 image (torch.utils.flop_counter). garment class acc: "
    "correct class on garment pixels; garment/bg IoU: IoU of 'any garment' vs background, i.e. "
    "shape quality regardless of class."
)


def near_boundary(masks: Tensor, radius: int) -> Tensor:
    """Pixels of ``masks`` (N, H, W) within ``radius`` of a pixel with another label."""
    values = masks.float().unsqueeze(1)
    size = 2 * radius + 1
    highest = F.max_pool2d(values, size, stride=1, padding=radius)
    lowest = -F.max_pool2d(-values, size, stride=1, padding=radius)
    return (highest != lowest).squeeze(1)


@torch.no_grad()
def detailed_scores(module: Any, loader: Any, precision: str) -> tuple[dict, list[dict]]:
    """Where the errors are: accuracy near class boundaries and inside regions, garment-class
    accuracy on garment pixels, and garment-vs-background IoU; plus a few predictions."""
    module.eval()
    counts = dict.fromkeys(("boundary", "interior", "fg", "fg_ok", "inter", "union"), 0)
    counts.update(boundary_ok=0, interior_ok=0)
    examples: list[dict] = []
    for batch in loader:
        with torch.autocast("cpu", torch.bfloat16, enabled=precision.startswith("bf16")):
            predictions = module(batch["image"]).argmax(dim=1)
        masks = batch["mask"].long()
        valid = masks != IGNORE_INDEX
        correct = (predictions == masks) & valid
        boundary = near_boundary(torch.where(valid, masks, 0), BOUNDARY_RADIUS) & valid
        garment, predicted = (masks != 0) & valid, (predictions != 0) & valid
        regions = {"boundary": boundary, "interior": valid & ~boundary, "fg": garment}
        for key, region in regions.items():
            counts[key] += int(region.sum())
            counts[f"{key}_ok"] += int((correct & region).sum())
        counts["inter"] += int((garment & predicted).sum())
        counts["union"] += int((garment | predicted).sum())
        for i in range(min(NUM_EXAMPLES - len(examples), len(masks))):
            examples.append(
                {
                    "image": batch["image"][i].permute(1, 2, 0).numpy(),
                    "mask": batch["mask"][i].numpy(),
                    "prediction": predictions[i].to(torch.uint8).numpy(),
                }
            )

    def ratio(a: str, b: str) -> float:
        return counts[a] / counts[b] if counts[b] else float("nan")

    scores = {
        "boundary_acc": ratio("boundary_ok", "boundary"),
        "interior_acc": ratio("interior_ok", "interior"),
        "garment_class_acc": ratio("fg_ok", "fg"),
        "garment_vs_background_iou": ratio("inter", "union"),
        "boundary_pixel_share": counts["boundary"]
        / max(1, counts["boundary"] + counts["interior"]),
    }
    return scores, examples


def validation_scores(metrics: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """The module's validation metrics as plain numbers."""
    names = {"miou": "miou", "pixel_acc": "pixel_acc", "mean_acc": "mean_acc", "val_loss": "loss"}
    scores: dict[str, Any] = {key: float(metrics[f"val/{name}"]) for key, name in names.items()}
    scores["pixels"] = int(metrics["val/pixels"])
    scores["per_class_iou"] = {
        c: float(metrics[f"val/iou/{c}"]) for c in class_names if f"val/iou/{c}" in metrics
    }
    return scores


def run_contender(name: str, budget_s: float, data_root: Path, run_root: Path, quick: bool) -> dict:
    """Train one contender for the CPU budget, then score its snapshots on the validation split."""
    root = run_root / slug(name)
    args = budget_args(root, data_root)
    args += ["--data.num_train", "48", "--data.num_val", "16"] if quick else []
    if name in PRECISION_OVERRIDES:
        args += ["--trainer.precision", PRECISION_OVERRIDES[name]]
    contender = cli_contender(CONFIGS.get(name, PEER_RECIPE), args, PEERS.get(name))
    module, datamodule, precision = contender.module, contender.datamodule, contender.precision
    snapshots: dict[float, dict[str, Tensor]] = {}

    def snapshot(mark: Any) -> None:
        snapshots[mark.fraction] = copy.deepcopy(module.state_dict())

    fractions = (0.5, 1.0) if quick else BUDGET_FRACTIONS
    training = train_for_budget(name, contender, budget_s, root, fractions, snapshot)
    evaluator, curve = cpu_trainer(root, precision), []
    for fraction, state in snapshots.items():
        module.load_state_dict(state)
        metrics = evaluator.validate(module, datamodule=datamodule, verbose=False)[0]
        mark = next(m for m in training["marks"] if m["fraction"] == fraction)
        curve.append({**mark, **validation_scores(metrics, list(datamodule.class_names))})
        harness.log(f"[{name}] at {fraction:.0%} of the budget: mIoU {curve[-1]['miou']:.4f}")
    detail, examples = detailed_scores(module, datamodule.val_dataloader(), precision)
    size = contender.recipe["data"].get("crop_size") or 96  # one training crop
    example = torch.zeros(1, 3, *(size if isinstance(size, list) else [size, size]))
    save_examples(root / "examples.npz", examples)
    return {
        "name": name,
        "kind": "peer" if name in PEERS else "ours",
        "recipe": contender.recipe,
        "precision": precision,
        "parameters": parameter_count(module.network),
        "forward_gflops_per_image": forward_gflops(module, example),
        "training": training,
        "curve": curve,
        "final": {**curve[-1], **detail},
    }


def findings(results: dict[str, dict[str, Any]]) -> tuple[list[str], str | None]:
    """Data-driven statements: the FCN ordering, the best config and its margin over peers."""
    lines, miou = [], {name: result["final"]["miou"] for name, result in results.items()}
    fcns = [name for name in FCN_ORDER if name in miou]
    if len(fcns) == 3:
        holds = miou[fcns[0]] < miou[fcns[1]] < miou[fcns[2]]
        listed = ", ".join(f"{n} {miou[n]:.4f}" for n in fcns)
        lines.append(
            f"FCN paper ordering 32s < 16s < 8s in mean IoU: "
            f"{'holds' if holds else 'does not hold'} ({listed})."
        )
        boundary, interior = (
            ", ".join(f"{n} {results[n]['final'][key]:.4f}" for n in fcns)
            for key in ("boundary_acc", "interior_acc")
        )
        lines.append(
            f"Accuracy within {BOUNDARY_RADIUS} px of a class boundary: {boundary}; "
            f"inside regions: {interior}."
        )
    ours = [name for name in miou if results[name]["kind"] == "ours"]
    best = max(ours, key=miou.__getitem__) if ours else None
    for peer in (name for name in miou if results[name]["kind"] == "peer" and best):
        difference, b, p = miou[best] - miou[peer], results[best], results[peer]
        lines.append(
            f"Our best config {best} ({miou[best]:.4f}) "
            f"{'beats' if difference > 0 else 'does not beat'} {peer} ({miou[peer]:.4f}) by "
            f"{difference * 100:+.1f} mIoU points ({miou[best] / miou[peer]:.2f}x); {peer} ran "
            f"{p['training']['batches']} batches in the budget vs {b['training']['batches']} for "
            f"{best} ({p['forward_gflops_per_image']:.2f} vs {b['forward_gflops_per_image']:.2f} "
            "forward GFLOP per 96x96 image)."
        )
    return lines, best


def tables(results: dict[str, dict[str, Any]]) -> list[harness.Table]:
    """Scores after the budget, the mIoU curve and the per-class IoU."""
    main_rows, curve_rows, class_rows = [], [], []
    for name, result in results.items():
        row = {
            "contender": name,
            "precision": result.get("precision", ""),
            "params (M)": result["parameters"] / 1e6,
            "GFLOP/img": result["forward_gflops_per_image"],
            **{c: result["training"][k] for c, k in TRAINING_COLUMNS.items()},
            **{c: result["final"][k] for c, k in FINAL_COLUMNS.items()},
        }
        main_rows.append(row)
        curve_rows.append(
            {
                "contender": name,
                **{f"mIoU @{p['fraction']:.0%}": p["miou"] for p in result["curve"]},
            }
        )
        class_rows.append({"contender": name, **result["final"]["per_class_iou"]})
    curve_columns = ["contender"] + [f"mIoU @{f:.0%}" for f in BUDGET_FRACTIONS]
    return [
        harness.Table(
            "Validation scores after the CPU budget",
            list(main_rows[0]),
            main_rows,
            MAIN_NOTE,
        ),
        harness.Table("Mean IoU during the budget", curve_columns, curve_rows),
        harness.Table("Per-class IoU after the budget", list(class_rows[0]), class_rows),
    ]


def main(argv: list[str] | None = None) -> harness.Report:
    """Train (or reuse) every contender, score them and write ``quality_seg.json`` / ``.md``."""
    parser = harness.base_parser(__doc__, threads=1)
    parser.add_argument("--budget-cpu-min", type=float, default=8.0, help="per contender")
    parser.add_argument("--only", nargs="+", help=f"contenders: {[*CONFIGS, *PEERS]}")
    parser.add_argument("--resume", action="store_true", help="reuse finished contenders")
    args = harness.parse(parser, argv)
    budget_min = 0.03 if args.quick and args.budget_cpu_min == 8.0 else args.budget_cpu_min
    names = args.only or [*(n for n in CONFIGS if n not in PRECISION_OVERRIDES), *PEERS]
    if unknown := [name for name in names if name not in CONFIGS and name not in PEERS]:
        parser.error(f"unknown contenders {unknown}; choose from {[*CONFIGS, *PEERS]}")
    run_root = harness.RUNS_DIR / ("quality_seg_quick" if args.quick else "quality_seg")
    key = {"budget_cpu_min": budget_min, "threads": args.threads}

    def run(name: str) -> dict[str, Any]:
        return run_contender(name, budget_min * 60, run_root / "data", run_root, args.quick)

    results = results_of(names, run_root, key, run, args.resume)
    out = harness.results_dir(args, run_root / "results")
    title = "Segmentation quality per CPU budget: FCN variants and peers on Fashion-MNIST-Seg"
    report = harness.Report.start(
        args, "quality_seg", title, budget_cpu_min=budget_min, contenders=names
    )
    lines, best = findings(results)
    report.tables, report.findings, report.values = tables(results), lines, {"best": best}
    report.data = {"results": results, "best_of_ours": best}
    examples = {name: load_examples(run_root / slug(name) / "examples.npz") for name in results}
    pictures = (out / "images" / f"seg_overlays{s}.png" for s in ("", "_all"))
    if best is not None:
        overlay_pictures(examples, best, colorize, (FASHION_CLASSES, PALETTE), tuple(pictures))
    report.write(out)
    return report


if __name__ == "__main__":
    main()
