"""pix2pix on CamVid label maps -> photos, judged by the toolkit's own segmenter (FCN-score).

Trains ``configs/gan/pix2pix_camvid.yaml`` for a CPU budget (``--phase train``); ``gan translate``
turns the CamVid test label maps into photos, which a CamVid segmentation checkpoint segments at
480x360 beside the real photos at the generator's resolution (the ceiling) and at full resolution,
each scored against the label maps (``--phase score``); FID of generated vs real test photos and of
real val vs test photos; a picture strip labels | generated | real.

    python -m bench.pix2pix_camvid --seg_ckpt SEG.ckpt [--budget-cpu-min 20] [--gan_ckpt CKPT]
        [--phase all|train|score] [--threads 1]
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.transforms.v2 import functional as TF

from bench import harness
from bench.budget import BudgetTracker, CpuBudget
from bench.pictures import labelled_grid, save_picture
from gan.core.data import to_model_range
from gan.fid import FIDEvaluator
from gan.translation.loading import load_translator
from gan.translation.paired_data import read_label_values
from gan.translation.paired_datamodule import find_pairs
from gan.translation.translate import translate_folder
from seg.metrics import scores_from_confusion_matrix
from seg.network_io import load_network
from upsample.core.camvid import CAMVID_CLASSES, CAMVID_VOID, camvid_base
from upsample.core.io import read_image

CONFIG = harness.REPO / "configs/gan/pix2pix_camvid.yaml"
DATA_ROOT = harness.REPO.parent / "shared" / "data" / "camvid"
STRIP_ROWS = 6  # test label maps in the picture
TARGET_SHARE = 0.8  # of the real photos' class IoU (the issue's goal)
PAPER = (
    "the pix2pix paper reports on Cityscapes labels->photos 0.66 / 0.23 / 0.17 for L1+cGAN and "
    "0.80 / 0.26 / 0.21 for real photos"
)
PHOTO_SETS = {
    "generated": "generated (pix2pix)",
    "real_lowres": "real, same resolution (ceiling)",
    "real_full": "real, full resolution",
}
SCORE_COLUMNS = {
    "per-pixel acc": "pixel_accuracy",
    "per-class acc": "class_accuracy",
    "class IoU": "class_iou",
}


def fcn_scores(confusion: torch.Tensor) -> dict[str, Any]:
    """The FCN-score of Isola et al. (2017) from a confusion matrix (rows = label map,
    columns = segmenter): per-pixel accuracy, per-class accuracy (mean recall over the classes in
    the label maps) and class IoU (mean over the classes in the label maps or the predictions),
    plus each class's IoU (None where undefined)."""
    scores = scores_from_confusion_matrix(confusion)
    per_class_iou = [None if v != v else float(v) for v in scores.per_class_iou.tolist()]
    return {
        "pixel_accuracy": scores.pixel_accuracy,
        "class_accuracy": scores.mean_accuracy,
        "class_iou": scores.mean_iou,
        "per_class_iou": per_class_iou,
        "pixels": scores.num_pixels,
    }


class FCNScorer:
    """Accumulates one confusion matrix: segment photos, compare with label maps (void ignored)."""

    def __init__(self, network: torch.nn.Module, num_classes: int, void: int) -> None:
        self.network = network.eval()
        self.confusion = MulticlassConfusionMatrix(num_classes, ignore_index=void)

    @torch.no_grad()
    def update(self, photo: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``photo`` (3, h, w) in [0, 1], resized bilinearly to the labels' (H, W) if needed;
        returns the predicted classes (H, W)."""
        size = tuple(labels.shape[-2:])
        if tuple(photo.shape[-2:]) != size:
            photo = F.interpolate(photo[None], size=size, mode="bilinear", align_corners=False)[0]
        prediction = self.network(photo[None].float()).argmax(dim=1)[0]
        self.confusion.update(prediction.flatten(), labels.flatten())
        return prediction

    def scores(self) -> dict[str, Any]:
        """The FCN-score of everything updated so far."""
        return fcn_scores(self.confusion.compute())


def train(budget_s: float, root: Path, quick: bool) -> dict[str, Any]:
    """Train the shipped config as ``gan fit`` would (data loading in the process, W&B off) for
    ``budget_s`` CPU seconds; the training summary."""
    from gan.cli import run_cli

    args = ["--config", str(CONFIG), "--data.root", str(DATA_ROOT), "--data.num_workers", "0"]
    args += ["--trainer.default_root_dir", str(root), "--wandb", "false"]
    if quick:
        args += ["--data.max_train_images", "8", "--data.max_val_images", "4"]
        args += ["--model.ngf", "4", "--model.ndf", "4"]
    cli = run_cli(args, run=False)
    tracker = BudgetTracker(budget_s)
    cli.trainer.callbacks.append(CpuBudget(tracker))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    checkpoint = harness.shown_path(Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    return {
        **tracker.summary(),
        "command": harness.command_line(),
        "checkpoint": str(checkpoint),
        "epochs": cli.trainer.current_epoch,
        "global_step": cli.trainer.global_step,
        "precision": str(cli.trainer.precision),
        "image_size": list(cli.datamodule.input_spec.image_size),
        "batch_size": cli.datamodule.batch_size,
    }


def photo(path: Path, size: list[int] | None = None) -> torch.Tensor:
    """uint8 (3, H, W), resized (antialiased) to ``size`` when given."""
    image = TF.pil_to_tensor(read_image(path, "RGB"))
    return image if size is None else TF.resize(image, size, antialias=True)


def pairs(split: str, limit: int | None) -> list[tuple[Path, Path]]:
    """(label map, photo) files of a CamVid split, the first ``limit`` of them."""
    base = camvid_base(DATA_ROOT)
    found, skipped = find_pairs(base / f"{split}annot", base / split)
    if skipped:
        raise FileNotFoundError(f"CamVid {split}: {skipped[:5]}")
    return found[:limit] if limit else found


def translate(gan_ckpt: Path, test: list, out: Path, limit: int | None) -> Any:
    """``gan translate`` (seed 0) of the test label maps into ``out/generated``; the input spec."""
    generator, spec = load_translator(gan_ckpt)
    label_dir = camvid_base(DATA_ROOT) / "testannot"
    if limit:  # the label maps to translate: a link farm
        label_dir = out / "labels"
        label_dir.mkdir(parents=True, exist_ok=True)
        for path, _ in test:
            if not (label_dir / path.name).exists():
                (label_dir / path.name).symlink_to(path)
    harness.log(f"[translate] {len(test)} test label maps -> {out / 'generated'}")
    summary = translate_folder(generator, spec, label_dir, out / "generated", seed=0)
    if summary.skipped:
        raise RuntimeError(f"gan translate skipped {summary.skipped}")
    return spec


def segment(
    network: torch.nn.Module, size: list[int], test: list, out: Path
) -> tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]:
    """The FCN-score of each photo set; the generated photos and the real ones at ``size``."""
    scorers = {key: FCNScorer(network, len(CAMVID_CLASSES), CAMVID_VOID) for key in PHOTO_SETS}
    generated, real_lowres = [], []
    for index, (label_path, photo_path) in enumerate(test):
        labels = torch.from_numpy(read_label_values(label_path).astype(np.int64))
        real = photo(photo_path)
        generated.append(photo(out / "generated" / f"{label_path.stem}.png"))
        real_lowres.append(TF.resize(real, size, antialias=True))
        for key, image in zip(PHOTO_SETS, (generated[-1], real_lowres[-1], real), strict=True):
            scorers[key].update(image.float() / 255, labels)
        if (index + 1) % 50 == 0:
            harness.log(f"[segment] {index + 1}/{len(test)}")
    return {key: scorer.scores() for key, scorer in scorers.items()}, generated, real_lowres


def strip_picture(spec: Any, test: list, generated: list, real: list, rows: int) -> Any:
    """Label map | generated | real photo of ``rows`` test label maps spread over the split."""
    panels = []
    for index in sorted(set(np.linspace(0, len(test) - 1, rows).round().astype(int).tolist())):
        labels = (spec.to_rgb(spec.load(test[index][0])[None])[0] * 255).round().byte()
        panels.append([i.permute(1, 2, 0).numpy() for i in (labels, generated[index], real[index])])
    height, width = spec.image_size
    titles = ["CamVid label map", "generated (pix2pix)", f"real photo at {width}x{height}"]
    return labelled_grid(panels, titles, scale=2)


def fid_results(features: str, generated: list, real: list, val: list) -> dict[str, Any]:
    """FID/KID of the generated and of the real val photos against the real test photos."""
    harness.log(f"[fid] {features} features of generated, real test and real val photos")
    fid = FIDEvaluator(features, kid_subset_size=min(100, len(generated), len(val)))

    def of(images: list[torch.Tensor]) -> torch.Tensor:
        return fid.extract(to_model_range(batch) for batch in torch.stack(images).split(50))

    fake, test, val_features = of(generated), of(real), of(val)
    return {
        "fid_generated_vs_test": fid.score(test, fake),
        "fid_val_vs_test": fid.score(test, val_features),
        "fid_features": fid.identifier,
    }


def score(args: Any, gan_ckpt: Path, out: Path) -> tuple[dict[str, Any], Any]:
    """Translate the test label maps and score them; the figures and the picture strip."""
    limit = 8 if args.quick else None
    test = pairs("test", limit)
    spec = translate(gan_ckpt, test, out, limit)
    size = list(spec.image_size)
    results, generated, real = segment(load_network(args.seg_ckpt), size, test, out)
    val = [photo(path, size) for _, path in pairs("val", limit)]
    results.update(fid_results("random" if args.quick else "inception", generated, real, val))
    results.update(test_images=len(test), val_images=len(val))
    return results, strip_picture(spec, test, generated, real, 3 if args.quick else STRIP_ROWS)


def l1_curve(checkpoint: Path, points: int = 5) -> list[tuple[int, float, float]]:
    """(epoch, train L1, val L1) at a few epochs, from the metrics.csv of a checkpoint's run."""
    metrics = checkpoint.parent.parent / "metrics.csv"
    rows = list(csv.DictReader(metrics.read_text().splitlines())) if metrics.is_file() else []
    train = {int(r["epoch"]): float(r["train/l1_epoch"]) for r in rows if r.get("train/l1_epoch")}
    val = {int(r["epoch"]): float(r["val/l1"]) for r in rows if r.get("val/l1")}
    epochs = sorted(set(train) & set(val))
    at = np.linspace(0, len(epochs) - 1, points).round() if epochs else []
    return [(e, train[e], val[e]) for e in sorted({epochs[int(i)] for i in at})]


def tables_of(results: dict[str, Any]) -> list[harness.Table]:
    """The FCN-score, per-class IoU and FID tables."""
    rows, per_class = [], []
    for key, name in PHOTO_SETS.items():
        rows.append({"photos": name, **{c: results[key][k] for c, k in SCORE_COLUMNS.items()}})
        ious = zip(CAMVID_CLASSES, results[key]["per_class_iou"], strict=True)
        percent = {c: None if v is None else round(100 * v, 1) for c, v in ious}
        per_class.append({"photos": name.split(" (")[0], **percent})
    fid_sets = {
        "generated vs real test": "fid_generated_vs_test",
        "real val vs real test": "fid_val_vs_test",
    }
    fids = [
        {"sets": name, "FID": results[key]["fid"], "KID": results[key]["kid_mean"]}
        for name, key in fid_sets.items()
    ]
    return [
        harness.Table("FCN-score on the CamVid test label maps", ["photos", *SCORE_COLUMNS], rows),
        harness.Table("Per-class IoU (%)", ["photos", *CAMVID_CLASSES], per_class),
        harness.Table(f"FID ({results['fid_features']})", ["sets", "FID", "KID"], fids),
    ]


def findings_of(results: dict[str, Any], gan_ckpt: Path) -> list[str]:
    """The generated photos' share of the real photos' class IoU against the goal, and the L1
    curve of the generator's run."""
    generated, lowres, real = (results[key]["class_iou"] for key in PHOTO_SETS)
    share = generated / lowres
    short = f"not met (short by {(TARGET_SHARE - share) * 100:.1f} points)"
    findings = [
        f"Generated photos reach {share * 100:.1f}% of the real photos' class IoU at the same "
        f"resolution ({generated:.3f} vs {lowres:.3f}); goal >= {TARGET_SHARE * 100:.0f}%: "
        f"{'met' if share >= TARGET_SHARE else short}.",
        f"Against the real photos at full resolution (class IoU {real:.3f}): "
        f"{generated / real * 100:.1f}%.",
        f"For scale, {PAPER} (per-pixel acc / per-class acc / class IoU).",
    ]
    if curve := l1_curve(harness.REPO / gan_ckpt):
        points = ", ".join(f"{epoch}: {train:.3f} / {val:.3f}" for epoch, train, val in curve)
        findings.append(
            f"L1 to the photos during training (epoch: train / val): {points} (from the run's "
            "metrics.csv)."
        )
    return findings


def settings_of(args: Any, training: dict | None, gan_ckpt: Path, test_images: int) -> dict:
    """The report's settings: what was scored, and how the generator was trained."""
    note = f" ({args.seg_note})" if args.seg_note else ""
    settings = {
        "config": str(CONFIG.relative_to(harness.REPO)),
        "seg_ckpt": f"{harness.shown_path(args.seg_ckpt)}{note}",
        "gan_ckpt": str(harness.shown_path(gan_ckpt)),
        "test_images": test_images,
    }
    if training:
        settings.update(
            training_command=training.get("command", "see the README"),
            budget_cpu_min=round(training["budget_cpu_s"] / 60, 2),
            train_wall_min=round(training["train_wall_s"] / 60, 1),
            steps=training["global_step"],
            epochs_done=training["epochs"],
            precision=training["precision"],
            resolution="x".join(str(v) for v in reversed(training["image_size"])),
            batch_size=training["batch_size"],
        )
    return settings


def main(argv: list[str] | None = None) -> None:
    """Train and/or score, and write ``pix2pix_camvid.json`` / ``.md`` and the picture."""
    parser = harness.base_parser(__doc__)
    parser.add_argument("--seg_ckpt", type=Path, help="segmentation checkpoint (seg fit, CamVid)")
    parser.add_argument("--gan_ckpt", type=Path, help="pix2pix checkpoint (skips training)")
    parser.add_argument("--budget-cpu-min", type=float, default=20.0)
    parser.add_argument("--phase", choices=("all", "train", "score"), default="all")
    parser.add_argument("--seg_note", default=None, help="how the segmenter was trained (report)")
    args = harness.parse(parser, argv)
    title = "pix2pix on CamVid: FCN-score of generated photos, FID"
    report = harness.Report.start(args, "pix2pix_camvid", title)
    root = harness.RUNS_DIR / ("pix2pix_camvid_quick" if args.quick else "pix2pix_camvid")
    training = harness.read_json(root / "training.json")
    if args.phase in ("all", "train") and args.gan_ckpt is None:
        budget = 0.05 if args.quick else args.budget_cpu_min
        training = train(budget * 60, root / "runs", args.quick)
        harness.write_json(root / "training.json", training)
        harness.log(
            f"[train] {training['global_step']} steps in {training['train_cpu_s']:.0f} CPU s"
        )
    if args.phase == "train":
        return
    if args.seg_ckpt is None:
        parser.error("--seg_ckpt is required to score")
    if args.gan_ckpt is not None:
        training = None  # a given checkpoint: its training is not this script's
    elif training is None:
        parser.error("no pix2pix checkpoint: train first or pass --gan_ckpt")
    gan_ckpt = args.gan_ckpt or harness.REPO / training["checkpoint"]
    results, picture = score(args, gan_ckpt, root)
    out = args.results_dir
    save_picture(picture, out / "images" / "pix2pix_camvid.png")
    report.settings.update(settings_of(args, training, gan_ckpt, results["test_images"]))
    report.values = {"picture": "images/pix2pix_camvid.png"}
    share = results["generated"]["class_iou"] / results["real_lowres"]["class_iou"]
    report.data = {"results": results, "training": training, "share_of_real_class_iou": share}
    report.tables = tables_of(results)
    report.findings = findings_of(results, harness.shown_path(gan_ckpt))
    report.write(out)


if __name__ == "__main__":
    main()
