"""Segmentation quality per CPU budget on Fashion-MNIST-Seg: FCN-32s / 16s / 8s / atrous and peers.

Every contender trains from scratch on the same canvases with the same augmentation, training
recipe and CPU budget, then the whole validation split is scored:

- our four configs ``configs/seg/{fcn32s,fcn16s,fcn8s,atrous}_fashion.yaml``, built through the
  ``seg`` command line exactly as ``seg fit --config ...`` builds them;
- peers (issue: quality per CPU-minute): torchvision ``fcn_resnet50`` and
  segmentation-models-pytorch ``Unet(resnet18)``, random weights, injected as the network of the
  same ``SegmentationModule`` (same loss, optimiser, schedule, data and augmentation as FCN-8s).

The budget is CPU seconds of the training process (``time.process_time``, data loading included:
``num_workers=0``), so runs stay comparable on a busy machine. The configs' poly learning-rate
decay is applied over the CPU budget (lr * (1 - used / budget) ** 0.9) rather than over a step
count that a CPU budget cannot know in advance; each contender therefore gets a complete decay.

    python -m bench.quality_seg [--budget-cpu-min 8] [--threads 1] [--quick] [--resume]
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from PIL import Image, ImageDraw
from torch import Tensor, nn

from bench.harness import (
    Table,
    base_parser,
    configure_threads,
    log_stderr,
)
from bench.quality_common import (
    BUDGET_FRACTIONS,
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
from common.callbacks import FiniteLossGuard
from seg.data.datamodule import SegDataModule
from seg.data.fashion_seg import FASHION_CLASSES
from seg.models import IMAGENET_MEAN, IMAGENET_STD
from seg.module import SegmentationModule
from seg.visualize import IGNORE_INDEX, PALETTE, colorize

REPO = Path(__file__).resolve().parent.parent
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
#: differs).
PEER_RECIPE = "configs/seg/fcn8s_fashion.yaml"
PEERS = ("tv fcn_resnet50", "smp Unet-resnet18")
FCN_ORDER = ("FCN-32s", "FCN-16s", "FCN-8s")
BOUNDARY_RADIUS = 2
NUM_EXAMPLES = 6


# ---------------------------------------------------------------------------------------------
# Peer networks
# ---------------------------------------------------------------------------------------------


class PeerNetwork(nn.Module):
    """A peer segmentation network behind the same contract as ``seg.models.FCN``.

    forward: images (N, 3, H, W) float in [0, 1] -> logits (N, K, H, W). The input is normalised
    with ``mean``/``std`` (default ImageNet's, as our FCN's default; a pretrained encoder's own
    otherwise); a torchvision model's ``{"out": logits}`` dictionary is unwrapped.
    """

    def __init__(
        self,
        network: nn.Module,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        out = self.network(x)
        return out["out"] if isinstance(out, dict) else out


def build_peer(name: str, num_classes: int) -> PeerNetwork:
    """Random-weight peers: torchvision ``fcn_resnet50`` or smp ``Unet(resnet18)``."""
    if name == "tv fcn_resnet50":
        from torchvision.models.segmentation import fcn_resnet50

        network = fcn_resnet50(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
        )
    elif name == "smp Unet-resnet18":
        import segmentation_models_pytorch as smp

        network = smp.Unet("resnet18", encoder_weights=None, classes=num_classes)
    else:
        raise ValueError(f"unknown peer {name!r}; expected one of {PEERS}")
    return PeerNetwork(network)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


class CpuPolyLR(Callback):
    """Poly learning-rate decay over the CPU budget: lr = base * (1 - used / budget) ** power,
    set before every training batch."""

    def __init__(self, tracker: BudgetTracker) -> None:
        self.tracker = tracker
        self.last_lr: float | None = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        hp = pl_module.hparams
        factor = (
            (1.0 - self.tracker.fraction_used) ** hp.poly_power
            if self.tracker.clock.started
            else 1.0
        )
        self.last_lr = hp.lr * factor
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.last_lr


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def build_contender(
    name: str, data_root: Path, run_root: Path, quick: bool
) -> tuple[SegmentationModule, SegDataModule, str, dict[str, Any]]:
    """The module and data module of a contender, made by the ``seg`` command line from its
    config (peers: the FCN-8s recipe with the peer network swapped in)."""
    config = CONFIGS.get(name, PEER_RECIPE)
    args = [
        "--data.root",
        str(data_root),
        "--data.num_workers",
        "0",
        "--model.lr_schedule",
        "constant",
        "--trainer.logger",
        "false",
        "--trainer.default_root_dir",
        str(run_root),
    ]
    if quick:
        args += ["--data.num_train", "48", "--data.num_val", "16"]
    if name in PRECISION_OVERRIDES:
        args += ["--trainer.precision", PRECISION_OVERRIDES[name]]
    peer = (lambda num_classes: build_peer(name, num_classes)) if name in PEERS else None
    return cli_contender(config, args, peer)


def cli_contender(
    config: str, args: list[str], peer: Callable[[int], nn.Module] | None = None
) -> tuple[SegmentationModule, SegDataModule, str, dict[str, Any]]:
    """The module and data module that ``seg fit --config <config> <args>`` would train, with
    ``peer(num_classes)`` as the network when given (seeded like the config), the precision
    Lightning will use and the recipe as a dictionary."""
    from seg.cli import run_cli

    argv, sys.argv = sys.argv, sys.argv[:1]  # the CLI reads only ``args``
    try:
        cli = run_cli(["--config", str(REPO / config), *args], run=False)
    finally:
        sys.argv = argv
    module, datamodule = cli.model, cli.datamodule
    if peer is not None:
        torch.manual_seed(int(cli.config.seed_everything))
        module.network = peer(module.hparams.num_classes)
    data_config = {
        key: value
        for key, value in vars(cli.config.data).items()
        if key not in ("root", "num_workers", "predict_dir")
    }
    return (
        module,
        datamodule,
        str(cli.config.trainer.precision),
        {
            "config": config,
            "seed": int(cli.config.seed_everything),
            "data": data_config,
            "model": {key: value for key, value in dict(module.hparams).items()},
        },
    )


def near_boundary(masks: Tensor, radius: int) -> Tensor:
    """Pixels of ``masks`` (N, H, W) within ``radius`` of a pixel with another label."""
    values = masks.float().unsqueeze(1)
    size = 2 * radius + 1
    highest = F.max_pool2d(values, size, stride=1, padding=radius)
    lowest = -F.max_pool2d(-values, size, stride=1, padding=radius)
    return (highest != lowest).squeeze(1)


@torch.no_grad()
def detailed_scores(
    module: SegmentationModule, loader: Any, precision: str, num_examples: int
) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
    """Where the errors are: accuracy near class boundaries and inside regions, garment-class
    accuracy on garment pixels, and garment-vs-background IoU; plus a few predictions."""
    module.eval()
    totals = dict.fromkeys(
        ("boundary", "boundary_ok", "interior", "interior_ok", "fg", "fg_ok", "inter", "union"), 0
    )
    examples: list[dict[str, np.ndarray]] = []
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    for batch in loader:
        with autocast:
            predictions = module(batch["image"]).argmax(dim=1)
        masks = batch["mask"].long()
        valid = masks != IGNORE_INDEX
        correct = (predictions == masks) & valid
        boundary = near_boundary(torch.where(valid, masks, 0), BOUNDARY_RADIUS) & valid
        interior = valid & ~boundary
        garment, predicted_garment = (masks != 0) & valid, (predictions != 0) & valid
        totals["boundary"] += int(boundary.sum())
        totals["boundary_ok"] += int((correct & boundary).sum())
        totals["interior"] += int(interior.sum())
        totals["interior_ok"] += int((correct & interior).sum())
        totals["fg"] += int(garment.sum())
        totals["fg_ok"] += int((correct & garment).sum())
        totals["inter"] += int((garment & predicted_garment).sum())
        totals["union"] += int((garment | predicted_garment).sum())
        for index in range(min(num_examples - len(examples), len(masks))):
            examples.append(
                {
                    "image": batch["image"][index].permute(1, 2, 0).numpy(),
                    "mask": batch["mask"][index].numpy(),
                    "prediction": predictions[index].to(torch.uint8).numpy(),
                }
            )

    def ratio(a: str, b: str) -> float:
        return totals[a] / totals[b] if totals[b] else float("nan")

    return {
        "boundary_acc": ratio("boundary_ok", "boundary"),
        "interior_acc": ratio("interior_ok", "interior"),
        "garment_class_acc": ratio("fg_ok", "fg"),
        "garment_vs_background_iou": ratio("inter", "union"),
        "boundary_pixel_share": totals["boundary"]
        / max(1, totals["boundary"] + totals["interior"]),
    }, examples


def validation_scores(metrics: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    scores = {
        "miou": float(metrics["val/miou"]),
        "pixel_acc": float(metrics["val/pixel_acc"]),
        "mean_acc": float(metrics["val/mean_acc"]),
        "val_loss": float(metrics["val/loss"]),
        "pixels": int(metrics["val/pixels"]),
    }
    scores["per_class_iou"] = {
        name: float(metrics[f"val/iou/{name}"])
        for name in class_names
        if f"val/iou/{name}" in metrics
    }
    return scores


def run_contender(
    name: str, budget_s: float, data_root: Path, run_root: Path, quick: bool
) -> dict[str, Any]:
    """Train one contender for the CPU budget, then score its snapshots on the validation split."""
    root = run_root / slug(name)
    module, datamodule, precision, recipe = build_contender(name, data_root, root, quick)
    snapshots: dict[float, dict[str, Tensor]] = {}
    tracker = BudgetTracker(
        budget_s,
        (0.5, 1.0) if quick else BUDGET_FRACTIONS,
        on_mark=lambda mark: snapshots.__setitem__(
            mark.fraction, copy.deepcopy(module.state_dict())
        ),
    )
    lr_schedule = CpuPolyLR(tracker)
    trainer = budget_trainer(root, precision, [FiniteLossGuard(), CpuBudget(tracker), lr_schedule])
    log_stderr(f"[{name}] training for {budget_s:.0f} CPU s ({precision})")
    trainer.fit(module, datamodule=datamodule)
    training = tracker.summary()
    batch_size = datamodule.batch_size
    training.update(
        images_seen=tracker.batches * batch_size,
        epochs=tracker.batches * batch_size / len(datamodule.datasets["train"]),
        last_lr=lr_schedule.last_lr,
    )
    log_stderr(
        f"[{name}] {tracker.batches} batches in {training['train_cpu_s']:.0f} CPU s "
        f"({training['train_wall_s']:.0f} s wall); scoring {len(snapshots)} snapshots"
    )
    evaluator = evaluation_trainer(root, precision)
    curve = []
    class_names = list(datamodule.class_names)
    for mark in tracker.marks:
        module.load_state_dict(snapshots[mark.fraction])
        metrics = evaluator.validate(module, datamodule=datamodule, verbose=False)[0]
        scores = validation_scores(metrics, class_names)
        curve.append({**mark.to_json(), **scores})
        log_stderr(f"[{name}] at {mark.fraction:.0%} of the budget: mIoU {scores['miou']:.4f}")
    detail, examples = detailed_scores(module, datamodule.val_dataloader(), precision, NUM_EXAMPLES)
    example_image = torch.zeros(1, 3, datamodule.crop_size or 96, datamodule.crop_size or 96)
    result = {
        "name": name,
        "kind": "peer" if name in PEERS else "ours",
        "recipe": recipe,
        "precision": precision,
        "parameters": parameter_count(module.network),
        "forward_gflops_per_image": forward_gflops(module, example_image),
        "training": training,
        "curve": curve,
        "final": {**curve[-1], **detail},
    }
    np.savez_compressed(
        root / "examples.npz",
        **{f"{key}_{i}": example[key] for i, example in enumerate(examples) for key in example},
    )
    write_json(root / "result.json", result)
    return result


def load_examples(path: Path) -> list[dict[str, np.ndarray]]:
    with np.load(path) as archive:
        count = len({key.rsplit("_", 1)[1] for key in archive.files})
        return [
            {key: archive[f"{key}_{i}"] for key in ("image", "mask", "prediction")}
            for i in range(count)
        ]


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def legend(class_names: list[str], width: int, colours: Any = None) -> Image.Image:
    """A strip naming each class next to its colour (``colours``, default the VOC palette)."""
    colours = PALETTE if colours is None else colours
    columns = 4
    rows = -(-len(class_names) // columns)
    strip = Image.new("RGB", (width, 16 * rows + 4), "white")
    draw = ImageDraw.Draw(strip)
    cell = width // columns
    for index, name in enumerate(class_names):
        x, y = (index % columns) * cell + 4, (index // columns) * 16 + 2
        draw.rectangle((x, y + 2, x + 10, y + 12), fill=tuple(int(v) for v in colours[index]))
        draw.text((x + 14, y + 1), name, fill="black")
    return strip


def with_legend(picture: Image.Image, class_names: list[str], colours: Any = None) -> Image.Image:
    strip = legend(class_names, picture.width, colours)
    combined = Image.new("RGB", (picture.width, picture.height + strip.height), "white")
    combined.paste(picture, (0, 0))
    combined.paste(strip, (0, picture.height))
    return combined


def make_pictures(
    results: dict[str, dict[str, Any]], run_root: Path, best: str, results_dir: Path
) -> list[str]:
    """``seg_overlays.png`` (image | truth | best of ours) and ``seg_overlays_all.png`` (every
    contender side by side) from the first validation canvases; masks in the palette colours."""
    examples = {name: load_examples(run_root / slug(name) / "examples.npz") for name in results}
    class_names = list(FASHION_CLASSES)
    best_examples = examples[best]
    rows = [[e["image"], colorize(e["mask"]), colorize(e["prediction"])] for e in best_examples]
    single = save_picture(
        with_legend(labelled_grid(rows, ["image", "ground truth", best]), class_names),
        results_dir / "images" / "seg_overlays.png",
    )
    names = list(results)
    rows = []
    for index, example in enumerate(best_examples):
        row = [example["image"], colorize(example["mask"])]
        row += [colorize(examples[name][index]["prediction"]) for name in names]
        rows.append(row)
    everyone = save_picture(
        with_legend(labelled_grid(rows, ["image", "truth", *names]), class_names),
        results_dir / "images" / "seg_overlays_all.png",
    )
    relative = [path.relative_to(results_dir).as_posix() for path in (single, everyone)]
    return [
        f"Validation canvases: image | ground truth | prediction of {best}, the best of our "
        f"configs (class colours below):\n\n![segmentation overlays]({relative[0]})",
        "The same canvases predicted by every contender (columns in table order):\n\n"
        f"![segmentation overlays, all contenders]({relative[1]})",
    ]


def findings(results: dict[str, dict[str, Any]]) -> tuple[list[str], str | None]:
    """Data-driven statements: the FCN ordering, the best config and its margin over peers."""
    lines = []
    miou = {name: result["final"]["miou"] for name, result in results.items()}
    fcns = [name for name in FCN_ORDER if name in miou]
    if len(fcns) == 3:
        values = [miou[name] for name in fcns]
        holds = values[0] < values[1] < values[2]
        lines.append(
            "FCN paper ordering 32s < 16s < 8s in mean IoU: "
            + ("holds" if holds else "does not hold")
            + " ("
            + ", ".join(f"{n} {miou[n]:.4f}" for n in fcns)
            + ")."
        )
        boundary = [results[name]["final"]["boundary_acc"] for name in fcns]
        interior = [results[name]["final"]["interior_acc"] for name in fcns]
        lines.append(
            f"Accuracy within {BOUNDARY_RADIUS} px of a class boundary: "
            + ", ".join(f"{n} {b:.4f}" for n, b in zip(fcns, boundary, strict=True))
            + "; inside regions: "
            + ", ".join(f"{n} {i:.4f}" for n, i in zip(fcns, interior, strict=True))
            + "."
        )
    ours = [name for name in miou if results[name]["kind"] == "ours"]
    best = max(ours, key=miou.__getitem__) if ours else None
    if best is not None:
        for peer in (name for name in miou if results[name]["kind"] == "peer"):
            difference = miou[best] - miou[peer]
            verdict = "beats" if difference > 0 else "does not beat"
            lines.append(
                f"Our best config {best} ({miou[best]:.4f}) {verdict} {peer} ({miou[peer]:.4f}) "
                f"by {difference * 100:+.1f} mIoU points ({miou[best] / miou[peer]:.2f}x); "
                f"{peer} ran {results[peer]['training']['batches']} batches in the budget vs "
                f"{results[best]['training']['batches']} for {best} "
                f"({results[peer]['forward_gflops_per_image']:.2f} vs "
                f"{results[best]['forward_gflops_per_image']:.2f} forward GFLOP per 96x96 image)."
            )
    return lines, best


def build_report(
    results: dict[str, dict[str, Any]],
    settings: dict[str, Any],
    run_root: Path,
    results_dir: Path,
) -> QualityReport:
    budget = settings["budget_cpu_min"]
    method = [
        f"Budget: {budget} CPU-minutes of training per contender, measured as CPU time of the "
        "training process (time.process_time over all its threads; data loading and "
        "augmentation included since loaders run in the process, num_workers=0). Snapshot "
        "copies are excluded; validation runs after training and is not counted.",
        f"{settings['threads']} torch intra-op thread(s) for every contender.",
        "Data: Fashion-MNIST-Seg as configured in configs/seg/*_fashion.yaml (generated once; "
        "train canvases from the Fashion-MNIST train split, validation canvases from the test "
        "split; 96x96, 11 classes), the configs' augmentation (random scale 0.8-1.25, pad/crop "
        "96, flip, colour jitter) and recipe (AdamW lr 3e-3, weight decay 1e-4, cross-entropy, "
        "batch 16, seed 0).",
        "Learning rate: the configs' poly decay (power 0.9) applied over the CPU budget, so every "
        "contender ends its budget at lr 0.",
        "Peers: torchvision fcn_resnet50 (weights=None, weights_backbone=None, no aux head) and "
        "smp Unet(resnet18, encoder_weights=None), wrapped to take [0, 1] images with ImageNet "
        "normalisation like our FCN, and trained by the same SegmentationModule with the FCN-8s "
        "config's data, augmentation and recipe.",
        "Scores: the module's own validation (one confusion matrix over all 500 validation "
        "canvases) at 25/50/75/100% of the budget (snapshots); boundary accuracy counts pixels "
        f"within {BOUNDARY_RADIUS} px of a ground-truth label change.",
    ]
    lines, best = findings(results)
    main_rows, curve_rows, class_rows = [], [], []
    for name, result in results.items():
        training, final = result["training"], result["final"]
        main_rows.append(
            {
                "contender": name,
                "precision": result.get("precision", ""),
                "params (M)": result["parameters"] / 1e6,
                "GFLOP/img": result["forward_gflops_per_image"],
                "batches": training["batches"],
                "epochs": training["epochs"],
                "CPU s": training["train_cpu_s"],
                "CPU s/batch": training["cpu_s_per_batch"],
                "mIoU": final["miou"],
                "pixel acc": final["pixel_acc"],
                "mean class acc": final["mean_acc"],
                "garment class acc": final["garment_class_acc"],
                "garment/bg IoU": final["garment_vs_background_iou"],
                "boundary acc": final["boundary_acc"],
                "interior acc": final["interior_acc"],
            }
        )
        curve_row: dict[str, Any] = {"contender": name}
        for point in result["curve"]:
            curve_row[f"mIoU @{point['fraction']:.0%}"] = point["miou"]
        curve_rows.append(curve_row)
        class_rows.append({"contender": name, **final["per_class_iou"]})
    class_columns = ["contender"] + [
        key for key in (class_rows[0] if class_rows else {}) if key != "contender"
    ]
    tables = [
        Table(
            "Validation scores after the CPU budget",
            list(main_rows[0]) if main_rows else [],
            main_rows,
            note="GFLOP/img: forward FLOPs of one 96x96 image (torch.utils.flop_counter). "
            "garment class acc: correct class on garment pixels; garment/bg IoU: IoU of "
            "'any garment' vs background, i.e. shape quality regardless of class.",
        ),
        Table(
            "Mean IoU during the budget",
            ["contender"] + [f"mIoU @{f:.0%}" for f in BUDGET_FRACTIONS],
            curve_rows,
        ),
        Table("Per-class IoU after the budget", class_columns, class_rows),
    ]
    report = QualityReport(
        name="quality_seg",
        title="Segmentation quality per CPU budget: FCN variants and peers on Fashion-MNIST-Seg",
        settings=settings,
        method=method,
        tables=tables,
        findings=lines,
        data={"results": results, "best_of_ours": best},
    )
    if best is not None:
        report.pictures = make_pictures(results, run_root, best, results_dir)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(threads=1)
    parser.add_argument(
        "--budget-cpu-min", type=float, default=8.0, help="training CPU-minutes per contender"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help=f"contenders to run: {[*CONFIGS, *PEERS]}"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse contenders already finished with the same settings (bench/runs)",
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    budget_min = 0.03 if args.quick and args.budget_cpu_min == 8.0 else args.budget_cpu_min
    names = args.only or [*(n for n in CONFIGS if n not in PRECISION_OVERRIDES), *PEERS]
    unknown = [name for name in names if name not in CONFIGS and name not in PEERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {[*CONFIGS, *PEERS]}")
    run_root = RUNS_DIR / ("quality_seg_quick" if args.quick else "quality_seg")
    data_root = run_root / "data"
    settings = {
        "budget_cpu_min": budget_min,
        "threads": args.threads,
        "quick": args.quick,
        "contenders": names,
    }
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        saved = read_json(run_root / slug(name) / "result.json") if args.resume else None
        key = {"budget_cpu_min": budget_min, "threads": args.threads}
        if saved is not None and saved.get("settings") == key:
            log_stderr(f"[{name}] reusing the finished run in {run_root / slug(name)}")
            results[name] = saved
            continue
        result = run_contender(name, budget_min * 60, data_root, run_root, args.quick)
        result["settings"] = key
        write_json(run_root / slug(name) / "result.json", result)
        results[name] = result
    results_dir = args.results_dir if not args.quick else run_root / "results"
    report = build_report(results, settings, run_root, results_dir)
    json_path, markdown_path = report.write(results_dir)
    print(report.to_markdown())
    log_stderr(f"written {json_path} and {markdown_path}")


if __name__ == "__main__":
    sys.exit(main())
