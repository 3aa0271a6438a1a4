"""Photos per CPU core of the CamVid training input pipeline: decoding or reading the decoded
store, the recipe's augmentation, collation; today's path against the new ones (issue 20).

Contenders, all in this process on one core (torch and OpenCV one thread each), batches of the
recipe's settings (``configs/seg/camvid_fcn8s_lite0.yaml``: 352x352 crops, scale 0.75-1.75,
flips, the ``road`` photometric changes):

- files + albumentations: PNG decoding and albumentations, as the DataLoader workers did;
- store + albumentations: the decoded store (``--data.cache true``) and albumentations
  (``--data.augment_on cpu``), what CPU training does by default;
- store + tensor augmentation on the CPU: the store, the per-sample parameters and the batched
  tensor augmentation, all on the CPU (``--data.augment_on device`` on a CPU);
- store, CPU share of the device path: what is left to the CPU when the batched augmentation runs
  on a GPU (``--data.augment_on device``): store reads, parameters, collation.

Then CPU training with the data options: short epochs of our Lightning loop (the recipe's
network, precision, DataLoader workers and logging, no validation), alternating, with
``--data.cache false`` (today), the defaults (the store and albumentations in the workers on a
CPU) and ``--data.augment_on device`` (the tensor augmentation in the training process).

    python -m bench.input_pipeline [--quick] [--repeats 5] [--batches 4] [--training-batches 8]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import cv2
import torch
import yaml

from bench import quality_camvid as camvid
from bench.harness import (
    REPO,
    Report,
    Table,
    Timing,
    base_parser,
    log,
    parse,
    time_alternating,
    work_dir,
)
from bench.throughput_camvid import REFERENCE, lightning_loop
from seg.data import datasets
from seg.data.augment_params import AugmentSpec
from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataset, augment_collate, pad_collate
from seg.data.decoded_store import open_or_build
from seg.data.device_augment import augment_batch

RECIPE = "configs/seg/camvid_fcn8s_lite0.yaml"
TARGET = 5.0
TODAY = "files + albumentations (today)"
CONTENDERS = (
    TODAY,
    "store + albumentations",
    "store + tensor augmentation on the CPU",
    "store, CPU share of the device path",
)


def recipe_data() -> dict[str, Any]:
    """The ``data`` section of the recipe's config, its root made absolute."""
    data = yaml.safe_load((REPO / RECIPE).read_text())["data"]
    data["root"] = str((REPO / data["root"]).resolve())
    return data


@contextlib.contextmanager
def as_in_a_worker() -> Iterator[None]:
    """Collate as inside a DataLoader worker: batches allocated in shared memory, through which
    they reach the training process (the page faults of fresh shared memory cost as much as
    the rest of the device path's CPU share)."""
    with mock.patch.object(datasets, "get_worker_info", lambda: object()):
        yield


def pipelines(
    data: dict[str, Any], batch: int, batches: int, quick: bool
) -> dict[str, Callable[[], None]]:
    """Each contender as a function producing ``batches`` training batches of ``batch`` photos
    (one round through the same (epoch, index) keys)."""
    module = SegDataModule(**{**data, "cache": False})
    pairs = module.pairs("train")[: 8 if quick else None]
    spec = AugmentSpec.create(
        data["crop_size"],
        data["scale_range"],
        data["hflip"],
        data["color_jitter"],
        data["augmentation"],
    )
    log(f"opening (or building) the decoded store of {len(pairs)} CamVid training photos")
    store = open_or_build(pairs, module.labels)
    transform = spec.albumentations()
    datasets = {
        CONTENDERS[0]: SegmentationDataset(pairs, module.labels, transform, seed=0),
        CONTENDERS[1]: SegmentationDataset(pairs, module.labels, transform, 0, store),
        CONTENDERS[2]: SegmentationDataset(pairs, module.labels, None, 0, store, spec),
        CONTENDERS[3]: SegmentationDataset(pairs, module.labels, None, 0, store, spec),
    }
    keys = [(0, i % len(pairs)) for i in range(batch * batches)]
    groups = [keys[i : i + batch] for i in range(0, len(keys), batch)]

    def run(name: str) -> Callable[[], None]:
        dataset = datasets[name]
        collate = pad_collate if dataset.augment is None else augment_collate

        def produce() -> None:
            for group in groups:
                with as_in_a_worker():
                    out = collate([dataset[key] for key in group])
                if name == CONTENDERS[2]:
                    augment_batch(out["image"], out["mask"], out["augment"], spec.crop)

        return produce

    return {name: run(name) for name in CONTENDERS}


def batch_table(
    batch: int, photos: int, wall: dict[str, Timing], cpu: dict[str, Timing]
) -> tuple[Table, dict[str, float]]:
    """Photos per CPU-second (per core) and per wall-second, and the ratio to today's path."""
    per_core = {name: photos / timing.median for name, timing in cpu.items()}
    rows = [
        {
            "pipeline": name,
            "photos/s per core": per_core[name],
            "x today": per_core[name] / per_core[TODAY],
            "photos/s (wall)": photos / wall[name].median,
            "ms per photo (CPU)": 1000 * cpu[name].median / photos,
            "spread": cpu[name].spread,
            "repeats": cpu[name].repeats,
        }
        for name in wall
    ]
    title = f"Batch {batch}: {photos} photos per repetition"
    return Table(title, list(rows[0]), rows), per_core


#: CPU training contenders: the data options added to the recipe's command line
TRAINING = {
    "--data.cache false (today)": ["--data.cache", "false"],
    "defaults (store + albumentations)": [],
    "--data.augment_on device (on the CPU)": ["--data.augment_on", "device"],
}


def training_table(args: Any, repeats: int, log_dir: Path) -> Table:
    """Photos/s of short training epochs of our Lightning loop with each data setting."""
    batches = 2 if args.quick else args.training_batches
    common = ["--data.root", str(camvid.DATA_ROOT), "--trainer.logger", "false"]
    common += camvid.QUICK_ARGS if args.quick else []
    steppers = {}
    try:
        for name, options in TRAINING.items():
            contender = camvid.contender_of(REFERENCE, [*common, *options])
            steppers[name] = lightning_loop(contender, batches, log_dir / str(len(steppers)))
            batch_size = contender.datamodule.batch_size
        contenders = {name: stepper.step for name, stepper in steppers.items()}
        timings = time_alternating(contenders, warmup=0, repeats=repeats, min_repeats=repeats)
    finally:
        for stepper in steppers.values():
            stepper.close()
    photos = batches * batch_size
    today = timings[next(iter(TRAINING))].median
    rows = [
        {
            "data options": name,
            "photos/s": photos / timing.median,
            "x today": today / timing.median,
            "median s/epoch": timing.median,
            "spread": timing.spread,
            "repeats": timing.repeats,
        }
        for name, timing in timings.items()
    ]
    title = f"CPU training: epochs of {batches} batches of {batch_size} (Lightning loop)"
    return Table(title, list(rows[0]), rows)


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the pipelines at batch 8 and 32 and write ``input_pipeline.json`` / ``.md``."""
    parser = base_parser(__doc__, threads=1)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--batches", type=int, default=4, help="batches per timed round")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--training-batches", type=int, default=8, help="batches per epoch")
    parser.add_argument("--no-training", action="store_true", help="skip the training epochs")
    parser.add_argument(
        "--training-threads", type=int, default=2, help="torch threads of the training epochs"
    )
    args = parse(parser, argv)
    cv2.setNumThreads(args.threads)
    repeats = args.repeats or (1 if args.quick else 5)
    batches = 1 if args.quick else args.batches
    sizes = [2] if args.quick else args.batch_sizes
    data = recipe_data()
    title = "CamVid training input pipeline: photos per CPU core, today's path vs the new ones"
    report = Report.start(
        args,
        "input_pipeline",
        title,
        recipe=RECIPE,
        crop=data["crop_size"],
        scale_range=data["scale_range"],
        augmentation=data["augmentation"],
        batches_per_round=batches,
    )
    ratios: dict[int, dict[str, float]] = {}
    for batch in sizes:
        log(f"batch {batch}")
        contenders = pipelines(data, batch, batches, args.quick)
        cpu: dict[str, Timing] = {}
        wall = time_alternating(contenders, warmup=1, repeats=repeats, min_repeats=repeats, cpu=cpu)
        table, per_core = batch_table(batch, batch * batches, wall, cpu)
        report.tables.append(table)
        ratios[batch] = {name: value / per_core[TODAY] for name, value in per_core.items()}
    report.data["x_today"] = {str(batch): values for batch, values in ratios.items()}
    for batch, values in ratios.items():
        best = max((n for n in values if n != TODAY), key=values.get)
        device = values[CONTENDERS[3]]
        verdict = "met" if device >= TARGET else "NOT met"
        report.findings.append(
            f"Batch {batch}: the CPU share of the device path delivers {device:.1f}x today's "
            f"photos per core (target >= {TARGET:.0f}x: {verdict}); "
            f"the store alone (store + albumentations) {values[CONTENDERS[1]]:.1f}x; the tensor "
            f"augmentation on the CPU {values[CONTENDERS[2]]:.1f}x (best: {best})."
        )
    if not args.no_training:
        torch.set_num_threads(args.training_threads)
        training = training_table(args, repeats, work_dir(args, "input_pipeline_logs"))
        report.tables.append(training)
        ratio = {row["data options"]: row["x today"] for row in training.rows}
        report.data["training_x_today"] = ratio
        defaults, device = list(ratio.values())[1:]
        report.findings.append(
            f"CPU training with the defaults runs at {defaults:.2f}x the speed of "
            f"`--data.cache false` (today); with `--data.augment_on device` on the CPU at "
            f"{device:.2f}x."
        )
    report.write(Path(args.results_dir))
    return report


if __name__ == "__main__":
    main()
