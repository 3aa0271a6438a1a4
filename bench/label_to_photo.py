"""Label maps to photos on CamVid: every translator of the toolkit (pix2pix, OASIS) trained for the
same CPU budget, judged by a segmenter trained on real photos only (FCN-score), FID/KID and
diversity.

Each contender trains its shipped config (``configs/gan/<name>_camvid.yaml``, 128x96) as
``gan fit`` would, for ``--budget-cpu-min`` CPU minutes of its own process (``--phase train``;
``--jobs 2`` trains two at once, one thread each). ``gan translate`` then paints the 233 CamVid
test label maps under seeds 0 and 1; the segmenter (``--seg_ckpt``, a ``seg fit`` checkpoint
trained on CamVid's training photos only) reads the seed-0 photos, the real photos at the same
resolution (the ceiling) and at full resolution, each scored against the label maps at 480x360
(``--phase score``). The scorer is never a training loss and never selects a model.

    python -m bench.label_to_photo --seg_ckpt SEG.ckpt [--budget-cpu-min 30] [--jobs 2]
        [--only pix2pix oasis] [--phase all|train|score] [--threads 1]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import harness
from bench.budget import BudgetTracker, CpuBudget
from bench.label_to_photo_report import CONTENDERS, NAME, TITLE, TITLES, write_report
from bench.pictures import labelled_grid, save_picture
from bench.translation_scores import distribution_scores, diversity, fcn_score_sets, photo
from gan.translation.loading import load_translator
from gan.translation.paired_datamodule import find_pairs
from gan.translation.translate import translate_folder
from seg.network_io import load_network
from upsample.core.camvid import CAMVID_CLASSES, CAMVID_VOID, camvid_base

QUICK_ARGS = {
    "pix2pix": ["--model.ngf", "4", "--model.ndf", "4"],
    "oasis": ["--model.ngf", "2", "--model.ndf", "2", "--model.spade_hidden", "4"],
}
STRIP_ROWS = 5


def train(name: str, budget_s: float, root: Path, quick: bool) -> dict[str, Any]:
    """Train contender ``name`` as ``gan fit`` would (data read in the process, W&B off) for
    ``budget_s`` CPU seconds; the training summary."""
    from gan.cli import run_cli

    args = ["--config", str(harness.REPO / CONTENDERS[name]), "--data.root", str(harness.CAMVID)]
    args += ["--data.num_workers", "0", "--trainer.default_root_dir", str(root), "--wandb", "false"]
    if quick:
        args += ["--data.max_train_images", "8", "--data.max_val_images", "4", *QUICK_ARGS[name]]
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
        "steps": cli.trainer.global_step // 2,  # a discriminator and a generator step each
        "precision": str(cli.trainer.precision),
        "batch_size": cli.datamodule.batch_size,
    }


def pairs(split: str, limit: int | None) -> list[tuple[Path, Path]]:
    """(label map, photo) files of a CamVid split, the first ``limit`` of them."""
    base = camvid_base(harness.CAMVID)
    found, skipped = find_pairs(base / f"{split}annot", base / split)
    if skipped:
        raise FileNotFoundError(f"CamVid {split}: {skipped[:5]}")
    return found[:limit] if limit else found


def translated(checkpoint: Path, test: list, out: Path, seed: int) -> list[torch.Tensor]:
    """``gan translate --seed`` of the test label maps into ``out``: the photos, uint8."""
    generator, spec = load_translator(checkpoint)
    labels = out / "labels"  # a link farm of exactly the maps to translate
    labels.mkdir(parents=True, exist_ok=True)
    for path, _ in test:
        if not (labels / path.name).exists():
            (labels / path.name).symlink_to(path)
    summary = translate_folder(generator, spec, labels, out / f"seed{seed}", seed=seed)
    if summary.skipped:
        raise RuntimeError(f"gan translate skipped {summary.skipped}")
    return [photo(out / f"seed{seed}" / f"{path.stem}.png") for path, _ in test]


def score(args: Any, trained: dict[str, dict], root: Path) -> tuple[dict[str, Any], Any]:
    """Translate, segment and compare every trained contender; the results and the picture."""
    test = pairs("test", 8 if args.quick else None)
    size = [96, 128]
    real_full = [photo(path) for _, path in test]
    real = [photo(path, size) for _, path in test]
    sets, second = {}, {}
    for name, training in trained.items():
        checkpoint = harness.REPO / training["checkpoint"]
        sets[name] = translated(checkpoint, test, root / name, seed=0)
        second[name] = translated(checkpoint, test, root / name, seed=1)
    photo_sets = {**sets, "real_lowres": real, "real_full": real_full}
    network = load_network(args.seg_ckpt)
    labels = [path for path, _ in test]
    scores = fcn_score_sets(network, labels, photo_sets, len(CAMVID_CLASSES), CAMVID_VOID)
    val = [photo(path, size) for _, path in pairs("val", 8 if args.quick else None)]
    features = "random" if args.quick else "inception"
    distances = distribution_scores(features, real, {**sets, "real_val": val})
    results = {
        "fcn": scores,
        "fid": distances,
        "diversity": {name: diversity(sets[name], second[name]) for name in sets},
        "test_images": len(test),
    }
    return results, strip(test, sets, second, real)


def strip(test: list, sets: dict, second: dict, real: list) -> Any:
    """Label map | each contender (OASIS under two seeds) | real photo, for a few test maps."""
    from gan.translation.paired_data import camvid_spec

    spec = camvid_spec([96, 128])
    titles = ["CamVid label map"]
    for name in sets:
        titles += (
            [f"{TITLES[name]}, seed 0", f"{TITLES[name]}, seed 1"]
            if name == "oasis"
            else [TITLES[name]]
        )
    titles.append("real photo at 128x96")
    rows = []
    for index in sorted(set(np.linspace(0, len(test) - 1, STRIP_ROWS).round().astype(int))):
        label_map = (spec.to_rgb(spec.load(test[index][0])[None])[0] * 255).round().byte()
        panels = [label_map]
        for name in sets:
            panels += (
                [sets[name][index], second[name][index]] if name == "oasis" else [sets[name][index]]
            )
        rows.append([p.permute(1, 2, 0).numpy() for p in [*panels, real[index]]])
    return labelled_grid(rows, titles, scale=2)


def train_in_processes(names: list[str], args: Any) -> None:
    """Train ``names`` in ``args.jobs`` processes at once (each a ``--phase train`` run)."""
    command = [sys.executable, "-m", "bench.label_to_photo", "--phase", "train", "--jobs", "1"]
    command += ["--threads", str(args.threads), "--budget-cpu-min", str(args.budget_cpu_min)]
    command += ["--quick"] if args.quick else []
    jobs = [
        subprocess.Popen([*command, "--only", *names[i :: args.jobs]], cwd=harness.REPO)
        for i in range(args.jobs)
    ]
    if any(job.wait() for job in jobs):
        raise RuntimeError("a training process failed")


def main(argv: list[str] | None = None) -> None:
    """Train and/or score, and write ``label_to_photo.json`` / ``.md`` and the picture."""
    parser = harness.base_parser(__doc__, threads=1)
    parser.add_argument("--seg_ckpt", type=Path, help="CamVid segmentation checkpoint (seg fit)")
    parser.add_argument("--seg_note", default=None, help="how the segmenter was trained (report)")
    parser.add_argument("--budget-cpu-min", type=float, default=30.0, help="per contender")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--jobs", type=int, default=1, help="contenders trained at once")
    parser.add_argument("--phase", choices=("all", "train", "score"), default="all")
    args = harness.parse(parser, argv)
    report = harness.Report.start(args, NAME, TITLE)
    root = harness.run_root(NAME, args.quick)
    todo = [n for n in args.only if harness.read_json(root / n / "training.json") is None]
    if args.phase in ("all", "train") and args.jobs > 1 and todo:
        train_in_processes(todo, args)
    elif args.phase in ("all", "train"):
        budget = 0.05 if args.quick else args.budget_cpu_min
        for name in args.only:
            training = train(name, budget * 60, root / name / "runs", args.quick)
            harness.write_json(root / name / "training.json", training)
    if args.phase == "train":
        return
    if args.seg_ckpt is None:
        parser.error("--seg_ckpt is required to score")
    trained = {name: harness.read_json(root / name / "training.json") for name in args.only}
    results, picture = score(args, trained, root)
    save_picture(picture, args.results_dir / "images" / f"{NAME}.png")
    write_report(report, args, trained, results)


if __name__ == "__main__":
    main()
