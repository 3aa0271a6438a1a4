"""The report of ``bench.quality_cifar10``: the toolkit's curve beside StudioGAN's, the floor,
the cost of a step, and the findings against the goal."""

from __future__ import annotations

from typing import Any

from bench import harness

NAME = "quality_cifar10"
#: StudioGAN's DCGAN on CIFAR-10, FID (10k generated vs the 10k test images) per generator step
STUDIOGAN = {
    2000: 114.9, 4000: 92.6, 6000: 75.6, 8000: 77.4, 10000: 65.3, 12000: 64.2, 16000: 59.9,
    20000: 60.3, 26000: 50.6, 34000: 50.1, 42000: 49.0,
}  # fmt: skip
STUDIOGAN_BEST = 49.0  # at 42k steps, the best of its 200k

JPEG_NOTE = (
    "These CIFAR-10 images are JPEG files re-encoded at quality 75 (../shared/data/cifar10); "
    "StudioGAN scored the original arrays. Both sides here use the same files, so the toolkit's "
    "figures are exact among themselves; against StudioGAN's, read the real-vs-real floor for "
    "what the JPEG files and 10k-vs-10k sets alone cost."
)


def curve_rows(training: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for step, score in sorted(results["points"].items(), key=lambda item: int(item[0])):
        kept = training["kept"][str(step)]
        reference = STUDIOGAN.get(int(step))
        rows.append(
            {
                "generator step": int(step),
                "StudioGAN FID": reference,
                "toolkit FID": score["fid"],
                "below StudioGAN": None if reference is None else score["fid"] < reference,
                "KID": score["kid_mean"],
                "IS": score.get("is_mean"),
                "train CPU-min": round(kept["train_cpu_s"] / 60, 1),
            }
        )
    return rows


def findings_of(rows: list[dict[str, Any]], results: dict[str, Any]) -> list[str]:
    compared = [row for row in rows if row["StudioGAN FID"] is not None]
    below = [row for row in compared if row["below StudioGAN"]]
    best = min(rows, key=lambda row: row["toolkit FID"]) if rows else None
    findings = [
        f"Below StudioGAN's FID at {len(below)} of the {len(compared)} steps of its table "
        f"measured here (goal: every one, at least three)."
    ]
    if best is not None:
        met = "met" if best["toolkit FID"] <= STUDIOGAN_BEST else "not met"
        findings.append(
            f"Best FID within the budget: {best['toolkit FID']:.1f} at step "
            f"{best['generator step']:,} (goal <= {STUDIOGAN_BEST}, StudioGAN's best of 200k "
            f"steps: {met})."
        )
    generated = results.get("num_generated", results["num"])
    floor = results["floor"]
    if floor is None:
        findings.append("Real-vs-real floor: not measured in this run (--no-floor).")
    else:
        findings.append(
            f"Real-vs-real floor (the first {generated:,} training images against the "
            f"{results['num']:,} test images, these JPEG files): FID {floor['fid']:.2f}, KID "
            f"{floor['kid_mean']:.4f}."
        )
    if generated < results["num"]:
        findings.append(
            f"FID here is of {generated:,} generated images against the {results['num']:,} test "
            f"images, where StudioGAN generates {results['num']:,}: with fewer generated images "
            "FID is biased upwards (Chong and Forsyth, CVPR 2020), so against StudioGAN's "
            "figures these err on the toolkit's side of losing."
        )
    if all(row["IS"] is None for row in rows):
        findings.append(
            "Inception Score: not measured here (the standard network's logits need "
            "torch-fidelity's weight file, which this offline machine does not have)."
        )
    return [*findings, JPEG_NOTE]


def write_report(args: Any, training: dict[str, Any], results: dict[str, Any]) -> None:
    """Write ``quality_cifar10.json`` and ``.md`` into ``args.results_dir``."""
    title = "DCGAN on CIFAR-10 against PyTorch-StudioGAN's published DCGAN curve"
    report = harness.Report.start(args, NAME, title)
    rows = curve_rows(training, results)
    report.settings.update(
        training_command=training["command"],
        precision=training["precision"],
        model=training["model"],
        fid_images=results.get("num_generated", results["num"]),
        real_images=results["num"],
        fid_features=results["features"],
        **{k: round(v, 3) for k, v in training["cost"].items()},
    )
    report.values = {"picture": "images/cifar10.png"}
    report.data = {"results": results, "training": training}
    columns = list(rows[0]) if rows else ["generator step"]
    generated = results.get("num_generated", results["num"])
    title = f"FID per generator step ({generated:,} generated vs {results['num']:,} test images)"
    report.tables = [harness.Table(title, columns, rows)]
    report.findings = findings_of(rows, results)
    report.write(args.results_dir)
