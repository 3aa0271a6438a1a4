"""The report of ``bench.label_to_photo``: its tables, its findings against the goal and its
settings."""

from __future__ import annotations

from typing import Any

from bench import harness
from upsample.core.camvid import CAMVID_CLASSES

NAME = "label_to_photo"
#: the translators and their shipped configs
CONTENDERS = {
    "pix2pix": "configs/gan/pix2pix_camvid.yaml",
    "oasis": "configs/gan/oasis_camvid.yaml",
}
TITLES = {"pix2pix": "pix2pix", "oasis": "OASIS"}
TARGET_SHARE = 0.8  # of the real photos' class IoU at the same resolution
SMALL_CLASSES = ("Pole", "SignSymbol", "Pedestrian")
SCORE_COLUMNS = {"per-pixel acc": "pixel_accuracy", "per-class acc": "class_accuracy"}

REAL_SETS = {
    "real_lowres": "real photos at 128x96 (the ceiling)",
    "real_full": "real photos at 480x360",
}
PUBLISHED = (
    "Published on Cityscapes (class IoU of generated vs real photos): pix2pix 0.17 vs 0.21 with "
    "an FCN-8s at 256x256 (81%; pix2pix paper), 39.5 vs 68.6 with PSPNet (58%; pix2pixHD paper); "
    "SPADE 62.3 and OASIS 69.3 vs 76.3 with DRN-D-105 (about 82% and 91%)."
)


def _name(key: str) -> str:
    return TITLES.get(key) or REAL_SETS[key]


def tables_of(results: dict[str, Any]) -> list[harness.Table]:
    """FCN-score, per-class IoU, FID/KID and diversity tables."""
    fcn, ceiling = results["fcn"], results["fcn"]["real_lowres"]["class_iou"]
    rows, per_class = [], []
    for key, scores in fcn.items():
        share = scores["class_iou"] / ceiling
        rows.append(
            {
                "photos": _name(key),
                **{column: scores[field] for column, field in SCORE_COLUMNS.items()},
                "class IoU": scores["class_iou"],
                "share of real at 128x96": f"{100 * share:.1f}%",
            }
        )
        ious = zip(CAMVID_CLASSES, scores["per_class_iou"], strict=True)
        per_class.append({"photos": _name(key), **{c: _percent(v) for c, v in ious}})
    fid = results["fid"]
    distances = [
        {"photos": _name(key) if key != "real_val" else "real val photos", **_fid(score)}
        for key, score in fid["scores"].items()
    ]
    spread = [
        {"translator": TITLES[key], "mean |seed 0 - seed 1|": value}
        for key, value in results["diversity"].items()
    ]
    columns = ["photos", *SCORE_COLUMNS, "class IoU", "share of real at 128x96"]
    return [
        harness.Table("FCN-score on the 233 CamVid test label maps", columns, rows),
        harness.Table("Per-class IoU (%)", ["photos", *CAMVID_CLASSES], per_class),
        harness.Table(
            f"FID and KID against the real test photos at 128x96 ({fid['features']})",
            ["photos", "FID", "KID"],
            distances,
        ),
        harness.Table(
            "Diversity: how much one label map's photos differ across seeds",
            ["translator", "mean |seed 0 - seed 1|"],
            spread,
        ),
    ]


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _fid(score: dict[str, float]) -> dict[str, float]:
    return {"FID": score["fid"], "KID": score["kid_mean"]}


def findings_of(results: dict[str, Any]) -> list[str]:
    """Each translator's share of the real photos' class IoU and KID against the goals."""
    fcn, kid = results["fcn"], {k: v["kid_mean"] for k, v in results["fid"]["scores"].items()}
    ceiling = fcn["real_lowres"]["class_iou"]
    findings = []
    for key in (k for k in CONTENDERS if k in fcn):
        share = fcn[key]["class_iou"] / ceiling
        verdict = "met" if share >= TARGET_SHARE else f"short by {100 * (TARGET_SHARE - share):.1f}"
        small = {
            c: _percent(fcn[key]["per_class_iou"][CAMVID_CLASSES.index(c)]) for c in SMALL_CLASSES
        }
        findings.append(
            f"{TITLES[key]}: class IoU {fcn[key]['class_iou']:.3f}, {100 * share:.1f}% of the "
            f"real photos' {ceiling:.3f} at the same resolution (goal >= "
            f"{100 * TARGET_SHARE:.0f}%: {verdict}); KID {kid[key]:.3f}; small classes "
            + ", ".join(f"{c} {v}%" for c, v in small.items())
            + "."
        )
    if "oasis" in kid and "pix2pix" in kid:
        ratio = kid["oasis"] / kid["pix2pix"]
        verdict = "met" if ratio <= 0.5 else "not met"
        findings.append(
            f"KID of OASIS is {ratio:.2f} x pix2pix's (goal <= 0.5: {verdict}); real val photos "
            f"against real test photos: KID {kid['real_val']:.3f}."
        )
    spread = results["diversity"]
    findings.append(
        "Diversity (mean absolute difference of a label map's photos under seeds 0 and 1, "
        "intensities in [0, 1]): "
        + ", ".join(f"{TITLES[key]} {value:.3f}" for key, value in spread.items())
        + "."
    )
    findings.append(PUBLISHED)
    return findings


TITLE = "Label maps to photos on CamVid: FCN-score, FID/KID and diversity of each translator"


def write_report(
    report: harness.Report, args: Any, trained: dict[str, dict], results: dict[str, Any]
) -> None:
    """Complete ``report`` (started when the run began) and write ``label_to_photo.json`` and
    ``.md`` into ``args.results_dir``."""
    note = f" ({args.seg_note})" if args.seg_note else ""
    report.settings.update(
        seg_ckpt=f"{harness.shown_path(args.seg_ckpt)}{note}",
        budget_cpu_min=args.budget_cpu_min,
        test_images=results["test_images"],
        training={
            key: {
                "command": value["command"],
                "config": CONTENDERS[key],
                "steps": value["steps"],
                "epochs": value["epochs"],
                "train_cpu_s": round(value["train_cpu_s"]),
                "train_wall_s": round(value["train_wall_s"]),
                "precision": value["precision"],
                "batch_size": value["batch_size"],
            }
            for key, value in trained.items()
        },
    )
    report.values = {"picture": f"images/{NAME}.png"}
    report.data = {"results": results, "training": trained}
    report.tables = tables_of(results)
    report.findings = findings_of(results)
    report.write(args.results_dir)
