"""pix2pix on CamVid label maps -> photos, judged by the toolkit's own segmenter (FCN-score).

1. ``--phase train`` (or ``all`` without ``--gan_ckpt``): trains ``configs/gan/pix2pix_camvid.yaml``
   as ``gan fit --config`` builds it (data loading in the process, W&B off) for a CPU budget.
2. ``--phase score``: ``gan translate`` writes one photo per CamVid test label map; a trained
   segmentation checkpoint (``--seg_ckpt``, loaded with ``seg.network_io.load_network``) then
   segments, at the label maps' resolution (480x360; smaller photos upsampled bilinearly):
   the generated photos, the real test photos brought to the generator's resolution and back
   (the ceiling: the same loss of detail, real content), and the real photos as they are (the
   segmenter's own test score). Each is scored against the label maps from one confusion matrix
   (void ignored): per-pixel accuracy, per-class accuracy and class IoU (Isola et al. 2017's
   "FCN-score"; torchmetrics' ``MulticlassConfusionMatrix``, ``seg.metrics``). FID of the
   generated vs the real test photos (both at the generator's resolution, standard Inception
   network, ``gan.fid``), beside FID of the real val vs test photos (two real sets of this size),
   and a picture strip labels | generated | real.

    python -m bench.pix2pix_camvid --seg_ckpt SEG.ckpt [--budget-cpu-min 20] [--gan_ckpt CKPT]

The budget is CPU seconds of the training process; on a shared machine ``--threads 1`` spends
them best (two threads that wait for a busy core burn CPU time spinning). The phases can run
separately: ``--phase train``, then ``--phase score`` with the same settings. This script joins
the two halves, so it imports both ``seg`` and ``gan``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.transforms.v2 import functional as TF

from bench.harness import (
    Table,
    base_parser,
    command_line,
    configure_threads,
    load_average,
    log_stderr,
    utc_now,
)
from bench.quality_common import (
    IMAGES_DIR,
    RUNS_DIR,
    BudgetTracker,
    CpuBudget,
    QualityReport,
    labelled_grid,
    read_json,
    save_picture,
    write_json,
)
from common.camvid import CAMVID_CLASSES, CAMVID_VOID
from common.io import read_image
from gan.data import to_model_range
from gan.fid import build_feature_extractor, extract_features, fid_from_features
from gan.paired_data import camvid_base, find_pairs, read_label_values
from gan.pix2pix import load_translator
from gan.translate import translate_folder
from seg.metrics import scores_from_confusion_matrix
from seg.network_io import load_network

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs/gan/pix2pix_camvid.yaml"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "camvid"  # ../shared/data/camvid
TARGET_SHARE = 0.8  # of the real photos' class IoU (the issue's goal)
PAPER = (
    "the pix2pix paper reports on Cityscapes labels->photos 0.66 / 0.23 / 0.17 for L1+cGAN and "
    "0.80 / 0.26 / 0.21 for real photos"
)


# ---------------------------------------------------------------------------------------------
# FCN-score
# ---------------------------------------------------------------------------------------------


def fcn_scores(confusion: torch.Tensor) -> dict[str, Any]:
    """The FCN-score of Isola et al. (2017) from a confusion matrix (rows = label map,
    columns = segmenter): per-pixel accuracy, per-class accuracy (mean recall over the classes in
    the label maps) and class IoU (mean over the classes in the label maps or the predictions),
    plus each class's IoU (None where undefined)."""
    scores = scores_from_confusion_matrix(confusion)
    return {
        "pixel_accuracy": scores.pixel_accuracy,
        "class_accuracy": scores.mean_accuracy,
        "class_iou": scores.mean_iou,
        "per_class_iou": [None if v != v else float(v) for v in scores.per_class_iou.tolist()],
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
        return fcn_scores(self.confusion.compute())


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def train(budget_s: float, root: Path, data_root: Path, quick: bool) -> dict[str, Any]:
    """Train the shipped config for ``budget_s`` CPU seconds; returns the training summary."""
    from gan.cli import run_cli

    args = ["--config", str(CONFIG), "--data.root", str(data_root), "--data.num_workers", "0"]
    args += ["--trainer.default_root_dir", str(root), "--wandb", "false"]
    if quick:
        args += ["--data.max_train_images", "8", "--data.max_val_images", "4"]
        args += ["--model.ngf", "4", "--model.ndf", "4"]
    argv, sys.argv = sys.argv, sys.argv[:1]  # the CLI reads only its ``args``
    try:
        cli = run_cli(args, run=False)
    finally:
        sys.argv = argv
    tracker = BudgetTracker(budget_s)
    cli.trainer.callbacks.append(CpuBudget(tracker))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    checkpoint = Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    summary = tracker.summary()
    summary.update(
        command=command_line(),
        checkpoint=str(_shown(checkpoint)),
        epochs=cli.trainer.current_epoch,
        global_step=cli.trainer.global_step,
        precision=str(cli.trainer.precision),
        image_size=list(cli.datamodule.input_spec.image_size),
        batch_size=cli.datamodule.batch_size,
    )
    return summary


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


@dataclass
class TestSet:
    """CamVid test pairs: label-map files, photo files."""

    labels: list[Path]
    photos: list[Path]

    @classmethod
    def read(cls, data_root: Path, split: str, limit: int | None) -> TestSet:
        base = camvid_base(data_root)
        pairs, skipped = find_pairs(base / f"{split}annot", base / split)
        if skipped:
            raise FileNotFoundError(f"CamVid {split}: {skipped[:5]}")
        pairs = pairs[:limit] if limit else pairs
        return cls([a for a, _ in pairs], [b for _, b in pairs])


def _photo(path: Path) -> torch.Tensor:
    """uint8 (3, H, W)."""
    return TF.pil_to_tensor(read_image(path, "RGB"))


def score(
    seg_ckpt: Path,
    gan_ckpt: Path,
    data_root: Path,
    out: Path,
    seed: int,
    fid_features: str,
    limit: int | None,
    strip_rows: int,
) -> dict[str, Any]:
    """Translate the test label maps and score them; returns the figures and the picture."""
    generator, spec = load_translator(gan_ckpt)
    test = TestSet.read(data_root, "test", limit)
    label_dir = camvid_base(data_root) / "testannot"
    generated_dir = out / "generated"
    log_stderr(f"[translate] {len(test.labels)} test label maps -> {generated_dir}")
    subset = out / "labels"  # the label maps to translate (a link farm when limited)
    if limit:
        subset.mkdir(parents=True, exist_ok=True)
        for path in test.labels:
            link = subset / path.name
            if not link.exists():
                link.symlink_to(path)
        label_dir = subset
    summary = translate_folder(generator, spec, label_dir, generated_dir, seed=seed)
    if summary.skipped:
        raise RuntimeError(f"gan translate skipped {summary.skipped}")

    network = load_network(seg_ckpt)
    num_classes, size = len(CAMVID_CLASSES), list(spec.image_size)
    scorers = {name: FCNScorer(network, num_classes, CAMVID_VOID) for name in
               ("generated", "real_lowres", "real_full")}  # fmt: skip
    generated_images, real_images, strip = [], [], []
    strip_at = set(np.linspace(0, len(test.labels) - 1, strip_rows).round().astype(int).tolist())
    for index, (label_path, photo_path) in enumerate(zip(test.labels, test.photos, strict=True)):
        labels = torch.from_numpy(read_label_values(label_path).astype(np.int64))
        real = _photo(photo_path)
        real_lowres = TF.resize(real, size, antialias=True)
        generated = _photo(generated_dir / f"{label_path.stem}.png")  # CamVid's files are flat
        scorers["generated"].update(generated.float() / 255, labels)
        scorers["real_lowres"].update(real_lowres.float() / 255, labels)
        scorers["real_full"].update(real.float() / 255, labels)
        generated_images.append(generated)
        real_images.append(real_lowres)
        if index in strip_at:
            label_rgb = spec.to_rgb(spec.load(label_path)[None])[0]
            strip.append(
                [
                    (label_rgb * 255).round().byte().permute(1, 2, 0).numpy(),
                    generated.permute(1, 2, 0).numpy(),
                    real_lowres.permute(1, 2, 0).numpy(),
                ]
            )
        if (index + 1) % 50 == 0:
            log_stderr(f"[segment] {index + 1}/{len(test.labels)}")
    results: dict[str, Any] = {name: scorer.scores() for name, scorer in scorers.items()}

    log_stderr(f"[fid] {fid_features} features of generated, real test and real val photos")
    extractor = build_feature_extractor(fid_features)
    val_pairs, _ = find_pairs(camvid_base(data_root) / "valannot", camvid_base(data_root) / "val")
    val_pairs = val_pairs[:limit] if limit else val_pairs
    val_images = [TF.resize(_photo(photo), size, antialias=True) for _, photo in val_pairs]

    def features(images: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(images)
        return extract_features(extractor, (to_model_range(b) for b in stacked.split(50)))

    fake, real, val = features(generated_images), features(real_images), features(val_images)
    kid_size = min(100, len(fake), len(val))
    results["fid_generated_vs_test"] = fid_from_features(real, fake, kid_size)
    results["fid_val_vs_test"] = fid_from_features(real, val, kid_size)
    results["fid_features"] = extractor.identifier
    results["test_images"] = len(test.labels)
    results["val_images"] = len(val_images)
    titles = ["CamVid label map", "generated (pix2pix)", f"real photo at {size[1]}x{size[0]}"]
    picture = labelled_grid(strip, titles, scale=2)
    return {"results": results, "picture": picture}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def build_report(
    training: dict[str, Any] | None,
    scored: dict[str, Any],
    seg_ckpt: Path,
    gan_ckpt: Path,
    picture: str | None,
    seg_note: str | None = None,
    started: tuple[str, list[float] | None] | None = None,
) -> QualityReport:
    results = scored
    real, lowres, generated = results["real_full"], results["real_lowres"], results["generated"]
    share = generated["class_iou"] / lowres["class_iou"]
    settings = {
        "config": str(CONFIG.relative_to(REPO)),
        "seg_ckpt": str(seg_ckpt) + (f" ({seg_note})" if seg_note else ""),
        "gan_ckpt": str(gan_ckpt),
        "test_images": results["test_images"],
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
    report = QualityReport(
        name="pix2pix_camvid",
        title="pix2pix on CamVid: FCN-score of generated photos, FID",
        settings=settings,
    )
    if started is not None:
        report.started, report.load_average_start = started
    report.method = [
        "Generated: `gan translate` of every CamVid test label map (EMA generator, dropout noise "
        "on, seed 0), at the training resolution.",
        "Each photo set is segmented by the segmentation checkpoint at the label maps' 480x360 "
        "(smaller photos upsampled bilinearly) and scored against the label maps from one "
        "confusion matrix; void (label 11) is ignored. Per-class accuracy: mean recall over the "
        "classes in the label maps; class IoU: mean over the classes present.",
        "'real, same resolution' is the fair ceiling: the real test photo brought to the "
        "generator's resolution (antialiased) and segmented the same way as the generated one. "
        "'real, full resolution' is the segmenter's own test score.",
        "FID: generated vs real test photos, both at the generator's resolution, standard "
        "Inception network (2048-d pool features); 'real val vs real test' is what two real sets "
        "of about this size give (FID is biased upwards for a few hundred images).",
    ]
    rows = [
        {"photos": "generated (pix2pix)", **_score_row(generated)},
        {"photos": "real, same resolution (ceiling)", **_score_row(lowres)},
        {"photos": "real, full resolution", **_score_row(real)},
    ]
    columns = ["photos", "per-pixel acc", "per-class acc", "class IoU"]
    report.tables.append(Table("FCN-score on the CamVid test label maps", columns, rows))
    sets = (
        ("generated", generated),
        ("real, same resolution", lowres),
        ("real, full resolution", real),
    )
    per_class = [
        {"photos": name, **dict(zip(CAMVID_CLASSES, map(_pct, s["per_class_iou"]), strict=True))}
        for name, s in sets
    ]
    report.tables.append(Table("Per-class IoU (%)", ["photos", *CAMVID_CLASSES], per_class))
    fid_rows = [
        {"sets": name, "FID": results[key]["fid"], "KID": results[key]["kid_mean"]}
        for name, key in (
            ("generated vs real test", "fid_generated_vs_test"),
            ("real val vs real test", "fid_val_vs_test"),
        )
    ]
    title = f"FID ({results['fid_features']})"
    report.tables.append(Table(title, ["sets", "FID", "KID"], fid_rows))
    short = (TARGET_SHARE - share) * 100
    verdict = "met" if share >= TARGET_SHARE else f"not met (short by {short:.1f} points)"
    report.findings = [
        f"Generated photos reach {share * 100:.1f}% of the real photos' class IoU at the same "
        f"resolution ({generated['class_iou']:.3f} vs {lowres['class_iou']:.3f}); goal "
        f">= {TARGET_SHARE * 100:.0f}%: {verdict}.",
        f"Against the real photos at full resolution (class IoU {real['class_iou']:.3f}): "
        f"{generated['class_iou'] / real['class_iou'] * 100:.1f}%.",
        f"For scale, {PAPER} (per-pixel acc / per-class acc / class IoU).",
    ]
    curve = l1_curve(REPO / gan_ckpt)
    if curve:
        report.findings.append(
            "L1 to the photos during training (epoch: train / val): "
            + ", ".join(f"{epoch}: {train:.3f} / {val:.3f}" for epoch, train, val in curve)
            + " (from the run's metrics.csv)."
        )
    if picture:
        report.pictures = [f"![labels | generated | real]({picture})"]
    report.data = {"results": results, "training": training, "share_of_real_class_iou": share}
    return report


def l1_curve(checkpoint: Path, points: int = 5) -> list[tuple[int, float, float]]:
    """(epoch, train L1, val L1) at a few epochs, from the metrics.csv of a checkpoint's run."""
    metrics = checkpoint.parent.parent / "metrics.csv"
    if not metrics.is_file():
        return []
    with open(metrics) as stream:
        rows = list(csv.DictReader(stream))
    train = {int(r["epoch"]): float(r["train/l1_epoch"]) for r in rows if r.get("train/l1_epoch")}
    val = {int(r["epoch"]): float(r["val/l1"]) for r in rows if r.get("val/l1")}
    epochs = sorted(set(train) & set(val))
    if not epochs:
        return []
    chosen = sorted({epochs[int(i)] for i in np.linspace(0, len(epochs) - 1, points).round()})
    return [(epoch, train[epoch], val[epoch]) for epoch in chosen]


def _score_row(scores: dict[str, Any]) -> dict[str, float]:
    return {
        "per-pixel acc": scores["pixel_accuracy"],
        "per-class acc": scores["class_accuracy"],
        "class IoU": scores["class_iou"],
    }


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seg_ckpt", type=Path, help="segmentation checkpoint (seg fit, CamVid)")
    parser.add_argument("--gan_ckpt", type=Path, help="pix2pix checkpoint (skips training)")
    parser.add_argument("--data_root", type=Path, default=DEFAULT_DATA, help="CamVid folder")
    parser.add_argument("--budget-cpu-min", type=float, default=20.0)
    parser.add_argument("--phase", choices=("all", "train", "score"), default="all")
    parser.add_argument("--seed", type=int, default=0, help="seed of gan translate")
    parser.add_argument("--strip-rows", type=int, default=6)
    parser.add_argument("--fid-features", default=None, help="inception (default; quick: random)")
    parser.add_argument("--seg_note", default=None, help="how the segmenter was trained (report)")
    args = parser.parse_args(argv)
    started = (utc_now(), load_average())
    quick = args.quick
    configure_threads(args.threads)
    root = RUNS_DIR / ("pix2pix_camvid_quick" if quick else "pix2pix_camvid")
    results_dir = args.results_dir
    if quick and results_dir == parser.get_default("results_dir"):
        results_dir = root / "results"  # a smoke run never overwrites the real results
    training_file = root / "training.json"
    training = read_json(training_file)
    if args.phase in ("all", "train") and args.gan_ckpt is None:
        budget = 0.05 if quick else args.budget_cpu_min
        training = train(budget * 60, root / "runs", args.data_root, quick)
        write_json(training_file, training)
        shown = ("global_step", "epochs", "train_cpu_s", "train_wall_s")
        log_stderr(f"[train] {json.dumps({key: training[key] for key in shown})}")
    if args.phase == "train":
        return
    if args.seg_ckpt is None:
        parser.error("--seg_ckpt is required to score")
    gan_ckpt = args.gan_ckpt or (REPO / training["checkpoint"] if training else None)
    if gan_ckpt is None:
        parser.error("no pix2pix checkpoint: train first or pass --gan_ckpt")
    if args.gan_ckpt is not None:
        training = None  # a given checkpoint: its training is not this script's
    features = args.fid_features or ("random" if quick else "inception")
    scored = score(args.seg_ckpt, gan_ckpt, args.data_root, root, args.seed, features,
                   8 if quick else None, 3 if quick else args.strip_rows)  # fmt: skip
    picture_path = (results_dir / "images" if quick else IMAGES_DIR) / "pix2pix_camvid.png"
    save_picture(scored["picture"], picture_path)
    picture = os.path.relpath(picture_path, results_dir)
    report = build_report(
        training,
        scored["results"],
        _shown(args.seg_ckpt),
        _shown(gan_ckpt),
        picture,
        args.seg_note,
        started,
    )
    json_path, markdown_path = report.write(results_dir)
    print(report.to_markdown())
    log_stderr(f"wrote {json_path}, {markdown_path} and {picture_path}")


def _shown(path: Path) -> Path:
    path = Path(path).resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


if __name__ == "__main__":
    main()
