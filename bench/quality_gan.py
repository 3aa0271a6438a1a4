"""How good are the toolkit's DCGAN defaults per CPU budget, against the classic PyTorch recipe?

Contenders on Fashion-MNIST, each trained for the same CPU budget (``bench.budget``): the toolkit
defaults (``configs/gan/dcgan_fashion.yaml`` as ``gan fit`` builds it) and the classic recipe
(``bench.dcgan_classic`` at 32x32 with the config's widths, data and batch size). Afterwards, FID
and KID of 10k generated images against the 10k test images (standard Inception network): the
toolkit during its budget, both recipes after the budget and at the same number of steps.

Usage: ``python -m bench.quality_gan [--budget-cpu-min 16] [--threads 1] [--quick] [--resume]``;
``--phase train|real|eval`` runs one part (with the same settings), e.g. ``real`` while training.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from bench import harness
from bench.dcgan_classic import load_classic_generator
from bench.gan_runs import FEATURE_NOTES, Scorer, trainings
from bench.pictures import save_picture
from gan.dcgan.network_io import load_generator
from gan.dcgan.sample import grid_image, sample_command, sample_noise

RECIPES = ("toolkit", "classic")
SCORE_COLUMNS = ["FID", "KID", "KID std"]
PHASE_HELP = (
    "all (the default); or one part: train (both recipes), real (cache the real-image "
    "features, e.g. while training), eval (score the finished trainings, write the results)"
)


def same_step_plan(
    toolkit: dict, classic: dict, root: Path, every_n: int
) -> tuple[int, Path, Path]:
    """The common step count and the two generators to compare there: the classic one saved at
    the toolkit's last step when the classic loop got that far; else, for a faster toolkit, its
    last snapshot at or before the classic run's end (up to ``every_n`` - 1 fewer steps than the
    classic generator, so the comparison never favours the toolkit); else a common snapshot."""
    n_toolkit, n_classic = toolkit["batches"], classic["batches"]
    exact = root / "classic" / f"classic_step{n_toolkit:06d}.pt"
    if n_classic >= n_toolkit and exact.is_file():
        return n_toolkit, root / "toolkit" / "toolkit_p100.ckpt", exact
    step = (min(n_toolkit, n_classic) // every_n) * every_n
    if step == 0:
        raise RuntimeError(
            f"no common snapshot: {n_toolkit} and {n_classic} batches, every {every_n}"
        )
    toolkit_path = root / "toolkit" / "steps" / f"{step:06d}.ckpt"
    if n_toolkit > n_classic:
        return step, toolkit_path, root / "classic" / "classic_p100.pt"
    return step, toolkit_path, root / "classic" / "steps" / f"{step:06d}.pt"


def generator_at(path: Path, hp: dict) -> nn.Module:
    """The generator of a toolkit checkpoint (``.ckpt``: EMA weights) or of a classic run."""
    if path.suffix == ".ckpt":
        return load_generator(path)
    return load_classic_generator(path, hp["nz"], hp["ngf"], hp["channels"], 32)


def score_plan(
    toolkit: dict, classic: dict, root: Path, curve: list[int]
) -> tuple[dict[str, Path], dict[str, str], int]:
    """The generators to score by name, in order of importance (an interrupted run still has
    the headline figures); the names of the same-step pair by recipe, and that step."""
    final = {
        "toolkit": root / "toolkit" / "toolkit_p100.ckpt",
        "classic": root / "classic" / "classic_p100.pt",
    }
    plan = {f"{recipe}_p100": path for recipe, path in final.items()}
    step, *paths = same_step_plan(toolkit, classic, root, toolkit["settings"]["snapshot_every"])
    same = {}
    for recipe, path in zip(RECIPES, paths, strict=True):
        same[recipe] = f"{recipe}_p100" if path == final[recipe] else f"{recipe}_step{step}"
        plan.setdefault(same[recipe], path)
    for name in (f"toolkit_p{percent:03d}" for percent in (50, 25, 75) if percent in curve):
        plan[name] = root / "toolkit" / f"{name}.ckpt"
    return plan, same, step


def write_pictures(root: Path, hp: dict, images: Path) -> None:
    """``gan sample`` from the final checkpoint (grid and interpolations) and the classic
    recipe's generator on the same noise."""
    final, output = root / "toolkit" / "toolkit_p100.ckpt", root / "toolkit" / "samples"
    options = ["--num", "64", "--seed", "0", "--interpolate", "10", "--pairs", "6"]
    if sample_command(["--ckpt_path", str(final), "--output", str(output), *options]) != 0:
        raise RuntimeError("gan sample failed")
    for source, target in (
        ("grid.png", "gan_samples.png"),
        ("interpolation.png", "gan_interpolation.png"),
    ):
        save_picture(Image.open(output / source).copy(), images / target)
    classic = generator_at(root / "classic" / "classic_p100.pt", hp)
    with torch.no_grad():
        fakes = classic(sample_noise(64, classic.nz, 0)).add(1).mul(127.5).round().clamp(0, 255)
    save_picture(grid_image(fakes.to(torch.uint8), 8), images / "gan_samples_classic.png")


def score_table(
    scores: dict, toolkit: dict, classic: dict, step: int, classic_step: int
) -> list[harness.Table]:
    """FID/KID during the toolkit's budget, after the same budget, at the same step."""

    def row(name: str, label: str, batches: int, cpu_s: float | None = None) -> dict[str, Any]:
        result = scores.get(name, {})
        epochs = batches * toolkit["batch_size"] / toolkit["train_images"]
        figures = [result.get(k) for k in ("fid", "kid_mean", "kid_std", "eval_cpu_s")]
        columns = ["point", "batches", "epochs", "train CPU s", *SCORE_COLUMNS, "scoring CPU s"]
        return dict(zip(columns, [label, batches, epochs, cpu_s, *figures], strict=True))

    curve = [
        row(name, f"{m['fraction']:.0%} of budget", m["batches"], m["cpu_s"])
        for m in toolkit["marks"]
        if (name := f"toolkit_p{round(m['fraction'] * 100):03d}") in scores
    ]
    if f"toolkit_step{step}" in scores and step not in {r["batches"] for r in curve}:
        curve.append(row(f"toolkit_step{step}", f"snapshot at step {step}", step))
        curve.sort(key=lambda r: r["batches"])
    recipes = (("toolkit", "toolkit defaults", toolkit), ("classic", "classic recipe", classic))
    budget = [
        {
            **row(f"{r}_p100", label, run["batches"], run["train_cpu_s"]),
            "CPU s/batch": run["cpu_s_per_batch"],
        }
        for r, label, run in recipes
    ]
    same = [
        row(f"{r}_step{step}", label, n)
        for (r, label, _), n in zip(recipes, (step, classic_step), strict=True)
    ]
    steps = f"{step} batches" if step == classic_step else f"{step} vs {classic_step}"
    budget_columns = ["point", "batches", "epochs", "train CPU s", "CPU s/batch", *SCORE_COLUMNS]
    return [
        harness.Table("FID and KID during the toolkit's CPU budget", list(curve[0]), curve),
        harness.Table(
            "Toolkit defaults vs classic recipe after the same CPU budget", budget_columns, budget
        ),
        harness.Table(
            f"Toolkit defaults vs classic recipe at the same number of steps ({steps})",
            ["point", "batches", "epochs", *SCORE_COLUMNS],
            same,
        ),
    ]


def findings_of(
    scores: dict, curve: list[float], runs: tuple[dict, dict], steps: tuple[int, int], threads: int
) -> list[str]:
    """The FID curve, both recipes after the same budget and at the same step, their speed."""
    (toolkit, classic), (step, classic_step) = runs, steps
    fid = {name: result["fid"] for name, result in scores.items()}
    t_fid, c_fid = fid["toolkit_p100"], fid["classic_p100"]
    ts_fid, cs_fid = fid[f"toolkit_step{step}"], fid[f"classic_step{step}"]
    improving = all(a > b for a, b in itertools.pairwise(curve))
    trend = " -> ".join(f"{value:.1f}" for value in curve)
    trend += " (improving at every point)." if improving else "."
    speed = classic["cpu_s_per_batch"] / toolkit["cpu_s_per_batch"]
    if speed >= 1:
        cpu = "less CPU per batch than the classic loop."
    else:
        cpu = f"more CPU per batch ({1 / speed:.2f}x the classic loop's)."
    return [
        f"Toolkit FID over the budget: {trend}",
        f"After the same CPU budget: toolkit defaults FID {t_fid:.2f} vs classic recipe "
        f"{c_fid:.2f} ({'better' if t_fid < c_fid else 'worse'} by {abs(c_fid - t_fid):.2f}); "
        f"the toolkit ran {toolkit['batches']} batches, the classic loop {classic['batches']}.",
        f"Training speed at {threads} thread(s): the toolkit needs {speed:.2f}x {cpu}",
        f"At the same number of steps (toolkit {step}, classic {classic_step}): toolkit FID "
        f"{ts_fid:.2f} vs classic {cs_fid:.2f} ({'no worse' if ts_fid <= cs_fid else 'worse'}).",
    ]


def score_all(
    scorer: Scorer, toolkit: dict, classic: dict, curve: list[int], hp: dict
) -> tuple[dict[str, dict], int, int]:
    """Scores of the plan's generators, the same-step pair also under ``<recipe>_step<step>``;
    the toolkit's and the classic run's step counts in that pair."""
    plan, same, step = score_plan(toolkit, classic, scorer.root, curve)
    scores = {
        name: scorer.score(name, partial(generator_at, path, hp)) for name, path in plan.items()
    }
    for recipe in RECIPES:
        scores[f"{recipe}_step{step}"] = scores[same[recipe]]
    classic_step = classic["batches"] if same["classic"] == "classic_p100" else step
    return scores, step, classic_step


def write_report(
    args: argparse.Namespace, scorer: Scorer, runs: tuple[dict, dict, dict], out: Path
) -> None:
    """Score the generators, draw the pictures and write ``quality_gan.json`` / ``.md``."""
    toolkit, classic, hp = runs
    scores, step, classic_step = score_all(scorer, toolkit, classic, args.curve, hp)
    write_pictures(scorer.root, hp, out / "images")
    title = "DCGAN quality per CPU budget on Fashion-MNIST: FID/KID, toolkit vs classic recipe"
    report = harness.Report.start(
        args,
        "quality_gan",
        title,
        budget_cpu_min=toolkit["settings"]["budget_cpu_min"],
        eval_threads=args.eval_threads,
        fid_generated=scorer.num,
        fid_real=len(scorer.real),
        fid_features=scorer.fid.identifier,
        toolkit_precision=toolkit["precision"],
        toolkit_channels_last=toolkit["channels_last"],
        batch_size=toolkit["batch_size"],
    )
    report.values = {
        "ema_decay": toolkit["ema_decay"],
        "features_note": FEATURE_NOTES[scorer.fid.features],
    }
    report.tables = score_table(scores, toolkit, classic, step, classic_step)
    curve = [r["FID"] for r in report.tables[0].rows if r["point"].endswith("of budget")]
    steps = (step, classic_step)
    report.findings = findings_of(scores, curve, (toolkit, classic), steps, args.threads)
    report.data = {
        "toolkit_training": toolkit,
        "classic_training": classic,
        "scores": scores,
        "same_step": step,
    }
    report.write(out)


def main(argv: list[str] | None = None) -> None:
    """Train, score and write ``quality_gan.json`` / ``.md`` (or one phase of that)."""
    parser = harness.base_parser(__doc__, threads=1)
    parser.add_argument("--budget-cpu-min", type=float, default=16.0)
    parser.add_argument("--eval-threads", type=int, default=2, help="threads for FID/KID")
    parser.add_argument(
        "--curve",
        type=int,
        nargs="*",
        default=[25, 50, 75],
        help="percentages of the budget scored besides 100",
    )
    parser.add_argument("--resume", action="store_true", help="reuse finished trainings")
    parser.add_argument(
        "--phase", choices=("all", "train", "real", "eval"), default="all", help=PHASE_HELP
    )
    args = harness.parse(parser, argv)
    quick = args.quick
    key = {
        "budget_cpu_min": 0.05 if quick and args.budget_cpu_min == 16.0 else args.budget_cpu_min,
        "threads": args.threads,
        "snapshot_every": 2 if quick else 100,  # batches between snapshots
    }
    root = harness.RUNS_DIR / ("quality_gan_quick" if quick else "quality_gan")
    toolkit, classic, hp, datamodule = trainings(args, root, key)
    if args.phase == "train":
        return
    torch.set_num_threads(args.eval_threads)
    num, features = (200, "random") if quick else (10_000, "inception")
    scorer = Scorer(datamodule, features, num, num, root)
    if args.phase == "real":
        harness.log(f"[fid] {len(scorer.real)} real features ready")
        return
    write_report(args, scorer, (toolkit, classic, hp), args.results_dir)


if __name__ == "__main__":
    sys.exit(main())
