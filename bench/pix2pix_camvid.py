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
from common.camvid import CAMVID_CLASSES, CAMVID_VOID
from common.io import read_image
from gan.data import to_model_range
from gan.fid import FIDEvaluator
from gan.paired_data import read_label_values
from gan.paired_datamodule import camvid_base, find_pairs
from gan.pix2pix import load_translator
from gan.translate import translate_folder
from seg.metrics import scores_from_confusion_matrix
from seg.network_io import load_network

CONFIG = harness.REPO / "configs/gan/pix2pix_camvid.yaml"
DEFAULT_DATA = harness.REPO.parent / "shared" / "data" / "camvid"  # ../shared/data/camvid
TARGET_SHARE = 0.8  # of the real photos' class IoU (the issue's goal)
PAPER = (
    "the pix2pix paper reports on Cityscapes labels->photos 0.66 / 0.23 / 0.17 for L1+cGAN and "
    "0.80 / 0.26 / 0.21 for real photos"
)
PHOTO_SETS = {  # key -> name in the tables
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
        """The FCN-score of everything updated so far."""
        return fcn_scores(self.confusion.compute())


def train(budget_s: float, root: Path, data_root: Path, quick: bool) -> dict[str, Any]:
    """Train the shipped config for ``budget_s`` CPU seconds; returns the training summary."""
    from gan.cli import run_cli

    args = ["--config", str(CONFIG), "--data.root", str(data_root), "--data.num_workers", "0"]
    args += ["--trainer.default_root_dir", str(root), "--wandb", "false"]
    if quick:
        args += ["--data.max_train_images", "8", "--data.max_val_images", "4"]
        args += ["--model.ngf", "4", "--model.ndf", "4"]
    cli = run_cli(args, run=False)
    tracker = BudgetTracker(budget_s)
    cli.trainer.callbacks.append(CpuBudget(tracker))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    checkpoint = Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    return {
        **tracker.summary(),
        "command": harness.command_line(),
        "checkpoint": str(harness.shown_path(checkpoint)),
        "epochs": cli.trainer.current_epoch,
        "global_step": cli.trainer.global_step,
        "precision": str(cli.trainer.precision),
        "image_size": list(cli.datamodule.input_spec.image_size),
        "batch_size": cli.datamodule.batch_size,
    }


def photo(path: Path) -> torch.Tensor:
    """uint8 (3, H, W)."""
    return TF.pil_to_tensor(read_image(path, "RGB"))


def pairs(data_root: Path, split: str, limit: int | None) -> list[tuple[Path, Path]]:
    """(label map, photo) files of a CamVid split, the first ``limit`` of them."""
    base = camvid_base(data_root)
    found, skipped = find_pairs(base / f"{split}annot", base / split)
    if skipped:
        raise FileNotFoundError(f"CamVid {split}: {skipped[:5]}")
    return found[:limit] if limit else found


def translate(
    gan_ckpt: Path, test: list, data_root: Path, out: Path, seed: int, limit: int | None
) -> Any:
    """``gan translate`` of the test label maps into ``out/generated``; the translator's spec."""
    generator, spec = load_translator(gan_ckpt)
    label_dir = camvid_base(data_root) / "testannot"
    if limit:  # the label maps to translate: a link farm
        label_dir = out / "labels"
        label_dir.mkdir(parents=True, exist_ok=True)
        for path, _ in test:
            if not (label_dir / path.name).exists():
                (label_dir / path.name).symlink_to(path)
    harness.log(f"[translate] {len(test)} test label maps -> {out / 'generated'}")
    summary = translate_folder(generator, spec, label_dir, out / "generated", seed=seed)
    if summary.skipped:
        raise RuntimeError(f"gan translate skipped {summary.skipped}")
    return spec


def score(
    args: Any, gan_ckpt: Path, out: Path, limit: int | None, strip_rows: int
) -> dict[str, Any]:
    """Translate the test label maps and score them; returns the figures and the picture."""
    test = pairs(args.data_root, "test", limit)
    spec = translate(gan_ckpt, test, args.data_root, out, args.seed, limit)
    network, size = load_network(args.seg_ckpt), list(spec.image_size)
    scorers = {key: FCNScorer(network, len(CAMVID_CLASSES), CAMVID_VOID) for key in PHOTO_SETS}
    generated_images, real_images, strip = [], [], []
    strip_at = set(np.linspace(0, len(test) - 1, strip_rows).round().astype(int).tolist())
    for index, (label_path, photo_path) in enumerate(test):
        labels = torch.from_numpy(read_label_values(label_path).astype(np.int64))
        real = photo(photo_path)
        images = {
            "generated": photo(out / "generated" / f"{label_path.stem}.png"),
            "real_lowres": TF.resize(real, size, antialias=True),
            "real_full": real,
        }
        for key, image in images.items():
            scorers[key].update(image.float() / 255, labels)
        generated_images.append(images["generated"])
        real_images.append(images["real_lowres"])
        if index in strip_at:
            label_rgb = (spec.to_rgb(spec.load(label_path)[None])[0] * 255).round().byte()
            strip.append(
                [
                    label_rgb.permute(1, 2, 0).numpy(),
                    images["generated"].permute(1, 2, 0).numpy(),
                    images["real_lowres"].permute(1, 2, 0).numpy(),
                ]
            )
        if (index + 1) % 50 == 0:
            harness.log(f"[segment] {index + 1}/{len(test)}")
    results: dict[str, Any] = {key: scorer.scores() for key, scorer in scorers.items()}
    val = [
        TF.resize(photo(p), size, antialias=True) for _, p in pairs(args.data_root, "val", limit)
    ]
    results.update(fid_results(args.fid_features, generated_images, real_images, val))
    results.update(test_images=len(test), val_images=len(val))
    titles = ["CamVid label map", "generated (pix2pix)", f"real photo at {size[1]}x{size[0]}"]
    return {"results": results, "picture": labelled_grid(strip, titles, scale=2)}


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


def fill_report(report: harness.Report, results: dict, gan_ckpt: Path) -> None:
    """The FCN-score, per-class and FID tables, and the findings."""
    rows = [
        {"photos": name, **{c: results[key][k] for c, k in SCORE_COLUMNS.items()}}
        for key, name in PHOTO_SETS.items()
    ]
    report.tables.append(
        harness.Table("FCN-score on the CamVid test label maps", ["photos", *SCORE_COLUMNS], rows)
    )
    per_class = [
        {
            "photos": name.split(" (")[0],
            **{
                c: None if v is None else round(100 * v, 1)
                for c, v in zip(CAMVID_CLASSES, results[key]["per_class_iou"], strict=True)
            },
        }
        for key, name in PHOTO_SETS.items()
    ]
    report.tables.append(harness.Table("Per-class IoU (%)", ["photos", *CAMVID_CLASSES], per_class))
    fids = [
        {"sets": name, "FID": results[key]["fid"], "KID": results[key]["kid_mean"]}
        for name, key in (
            ("generated vs real test", "fid_generated_vs_test"),
            ("real val vs real test", "fid_val_vs_test"),
        )
    ]
    report.tables.append(
        harness.Table(f"FID ({results['fid_features']})", ["sets", "FID", "KID"], fids)
    )
    generated, lowres, real = (results[key]["class_iou"] for key in PHOTO_SETS)
    share = generated / lowres
    short = f"not met (short by {(TARGET_SHARE - share) * 100:.1f} points)"
    report.findings = [
        f"Generated photos reach {share * 100:.1f}% of the real photos' class IoU at the same "
        f"resolution ({generated:.3f} vs {lowres:.3f}); goal >= {TARGET_SHARE * 100:.0f}%: "
        f"{'met' if share >= TARGET_SHARE else short}.",
        f"Against the real photos at full resolution (class IoU {real:.3f}): "
        f"{generated / real * 100:.1f}%.",
        f"For scale, {PAPER} (per-pixel acc / per-class acc / class IoU).",
    ]
    if curve := l1_curve(harness.REPO / gan_ckpt):
        report.findings.append(
            "L1 to the photos during training (epoch: train / val): "
            + ", ".join(f"{epoch}: {train:.3f} / {val:.3f}" for epoch, train, val in curve)
            + " (from the run's metrics.csv)."
        )
    report.data["share_of_real_class_iou"] = share


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
    parser.add_argument("--data_root", type=Path, default=DEFAULT_DATA, help="CamVid folder")
    parser.add_argument("--budget-cpu-min", type=float, default=20.0)
    parser.add_argument("--phase", choices=("all", "train", "score"), default="all")
    parser.add_argument("--seed", type=int, default=0, help="seed of gan translate")
    parser.add_argument("--strip-rows", type=int, default=6)
    parser.add_argument("--fid-features", default=None, help="inception (default; quick: random)")
    parser.add_argument("--seg_note", default=None, help="how the segmenter was trained (report)")
    args = harness.parse(parser, argv)
    report = harness.Report.start(
        args, "pix2pix_camvid", "pix2pix on CamVid: FCN-score of generated photos, FID"
    )
    root = harness.RUNS_DIR / ("pix2pix_camvid_quick" if args.quick else "pix2pix_camvid")
    training = harness.read_json(root / "training.json")
    if args.phase in ("all", "train") and args.gan_ckpt is None:
        budget = 0.05 if args.quick else args.budget_cpu_min
        training = train(budget * 60, root / "runs", args.data_root, args.quick)
        harness.write_json(root / "training.json", training)
        harness.log(
            f"[train] {training['global_step']} steps in {training['train_cpu_s']:.0f} CPU s"
        )
    if args.phase == "train":
        return
    if args.seg_ckpt is None:
        parser.error("--seg_ckpt is required to score")
    gan_ckpt = args.gan_ckpt or (harness.REPO / training["checkpoint"] if training else None)
    if gan_ckpt is None:
        parser.error("no pix2pix checkpoint: train first or pass --gan_ckpt")
    if args.gan_ckpt is not None:
        training = None  # a given checkpoint: its training is not this script's
    args.fid_features = args.fid_features or ("random" if args.quick else "inception")
    limit = 8 if args.quick else None
    scored = score(args, gan_ckpt, root, limit, 3 if args.quick else args.strip_rows)
    out = harness.results_dir(args, root / "results")
    save_picture(scored["picture"], out / "images" / "pix2pix_camvid.png")
    results = scored["results"]
    report.settings.update(settings_of(args, training, gan_ckpt, results["test_images"]))
    report.values = {"picture": "images/pix2pix_camvid.png"}
    report.data = {"results": results, "training": training}
    fill_report(report, results, harness.shown_path(gan_ckpt))
    report.write(out)


if __name__ == "__main__":
    main()
