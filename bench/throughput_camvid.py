"""Training throughput on CamVid photos: our networks vs the peers, our loop vs a bare one.

Networks: images/s of a training step on one in-memory batch of the recipe's crops, every
contender of ``bench.quality_camvid`` alternating step by step with our FCN-8s lite0. Loop: our
Lightning loop (photos decoded and augmented from disk) against a bare PyTorch loop over the same
batches in memory, short epochs alternating; target (issue 11, item 5): >= 90% of the bare loop.

    python -m bench.throughput_camvid [--quick] [--threads 2] [--repeats 5] [--loop-batches 12]

On a GPU, ``--device cuda`` runs the device study instead (``bench.device_throughput``): the data
loader alone, the model step alone and ``seg fit``, eager and compiled, at batch 8 and 32, against
the GPU's measured bf16 peak:

    python -m bench.throughput_camvid --device cuda [--data-root CAMVID] [--workers 14]
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor

from bench import quality_camvid as camvid
from bench.budget import cpu_trainer
from bench.device_throughput import (
    Workload,
    add_device_arguments,
    cli_workload,
    device_study_requested,
    run_study,
)
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
from bench.lightning_stepper import LightningStepper
from bench.seg_training import SegContender
from upsample.core.callbacks import FiniteLossGuard

REFERENCE = "FCN-8s lite0"
TARGET = 0.90
LIGHTNING, BARE = "ours (Lightning, photos from disk)", "bare loop (in memory)"
Batch = tuple[Tensor, Tensor]


def build(name: str, quick: bool) -> SegContender:
    """Contender ``name`` as ``bench.quality_camvid`` trains it, without a logger."""
    args = ["--data.root", str(camvid.DATA_ROOT), "--trainer.logger", "false"]
    return camvid.contender_of(name, args + (camvid.QUICK_ARGS if quick else []))


def timing_row(
    first: tuple[str, str], ratio: tuple[str, float], images: int, timing: Timing, unit: str
) -> dict[str, Any]:
    """A row of a timing table: ``first`` and ``ratio`` as (column, value) around images/s, then
    the median seconds per ``unit``, the spread and the repeats."""
    return {
        first[0]: first[1],
        "images/s": images / timing.median,
        ratio[0]: ratio[1],
        f"median s/{unit}": timing.median,
        "spread": timing.spread,
        "repeats": timing.repeats,
    }


def optimiser_step(
    module: Any, optimiser: torch.optim.Optimizer, precision: str
) -> Callable[[Tensor, Tensor], None]:
    """One optimiser step of ``module``'s network and loss on a batch; ``bf16-mixed`` runs the
    forward under bf16 autocast, as Lightning's precision plugin does."""
    network, autocast = module.network.train(), precision.startswith("bf16")

    def step(images: Tensor, masks: Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = network(images)
        module.compute_loss(logits.float(), masks).backward()
        optimiser.step()

    return step


def training_step(contender: SegContender, batch: dict[str, Tensor]) -> Callable[[], None]:
    """One AdamW step (the recipe's optimiser) of the contender on ``batch``."""
    module = contender.module
    images = batch["image"].float().div(255.0).contiguous(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(module.network.parameters(), lr=module.hparams.lr)
    step, masks = optimiser_step(module, optimiser, contender.precision), batch["mask"].long()
    return lambda: step(images, masks)


def network_table(repeats: int, quick: bool) -> tuple[Table, dict[str, Any]]:
    """Images/s of every contender's training step, each peer alternating with ours; the batch
    shape and precision."""
    reference = build(REFERENCE, quick)
    reference.datamodule.setup("fit")
    torch.manual_seed(0)
    batch = next(iter(reference.datamodule.train_dataloader()))
    size = tuple(batch["image"].shape)
    ours = training_step(reference, batch)
    timed: list[tuple[str, Timing, float]] = []  # name, timing, ours' median over its median
    for name in camvid.QUICK_CONTENDERS if quick else camvid.CONTENDERS:
        if name == REFERENCE:
            continue
        steps = {REFERENCE: ours, name: training_step(build(name, quick), batch)}
        timings = time_alternating(steps, warmup=1, repeats=repeats, min_repeats=repeats)
        if not timed:
            timed.append((REFERENCE, timings[REFERENCE], 1.0))
        timed.append((name, timings[name], timings[REFERENCE].median / timings[name].median))
        del steps
    rows = [timing_row(("contender", n), ("x ours", r), size[0], t, "step") for n, t, r in timed]
    note = "x ours: our FCN-8s lite0's median step time over the contender's, from steps "
    note += "alternating with ours."
    title = f"Training step on one in-memory batch {size} ({reference.precision})"
    settings = {"batch": list(size), "precision": reference.precision}
    return Table(title, list(rows[0]), rows, note), settings


def in_memory_batches(datamodule: Any, limit: int) -> list[Batch]:
    """The first ``limit`` augmented training batches of an epoch as (float images in [0, 1],
    long masks)."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    batches = [
        (b["image"].float().div(255.0), b["mask"].long()) for b in datamodule.train_dataloader()
    ]
    return batches[:limit]


def bare_loop(contender: SegContender, batches: list[Batch]) -> Callable[[], None]:
    """A plain PyTorch epoch over ``batches`` with the module's network, loss, optimiser and
    schedule (``seg.optimization``, as the module builds them)."""
    module = contender.module
    if module.hparams.channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    total_steps = 1000 * len(batches)
    optimiser, scheduler = module.optimization.build(module.network.parameters(), total_steps)
    step = optimiser_step(module, optimiser, contender.precision)

    def epoch() -> None:
        for images, masks in batches:
            step(images, masks)
            if scheduler is not None:
                scheduler.step()

    return epoch


def lightning_loop(contender: SegContender, batches: int, log_dir: Path) -> LightningStepper:
    """Our loop, one epoch of ``batches`` per step: the recipe's precision and logging interval,
    CSV logging, learning-rate monitor, the CLI's loss guard; no validation or checkpoints."""

    def fit(callback: pl.Callback) -> None:
        callbacks = [LearningRateMonitor(logging_interval="step"), FiniteLossGuard(), callback]
        trainer = cpu_trainer(
            log_dir,
            contender.precision,
            callbacks=callbacks,
            logger=CSVLogger(save_dir=str(log_dir), name="lightning"),
            log_every_n_steps=contender.log_every_n_steps,
            max_epochs=1000,
            limit_train_batches=batches,
            limit_val_batches=0,
            num_sanity_val_steps=0,
        )
        trainer.fit(contender.module, datamodule=contender.datamodule)

    return LightningStepper(fit, unit="epoch")


def loop_table(args: Any, repeats: int, log_dir: Path) -> Table:
    """Images/s of a short epoch: Lightning (data from disk) vs bare (in memory)."""
    ours = build(REFERENCE, args.quick)
    log("decoding and augmenting one epoch into memory for the bare loop")
    batches = in_memory_batches(ours.datamodule, 4 if args.quick else args.loop_batches)
    bare = bare_loop(build(REFERENCE, args.quick), batches)
    stepper = lightning_loop(ours, len(batches), log_dir)
    try:
        warmup = {LIGHTNING: 0, BARE: 1}
        contenders = {LIGHTNING: stepper.step, BARE: bare}
        timings = time_alternating(contenders, warmup=warmup, repeats=repeats, min_repeats=repeats)
    finally:
        stepper.close()
    images = sum(images.shape[0] for images, _ in batches)
    bare_s = timings[BARE].median
    rows = [
        timing_row(("loop", name), ("% of bare", 100 * bare_s / t.median), images, t, "epoch")
        for name, t in timings.items()
    ]
    return Table(f"One training epoch of {len(batches)} batches", list(rows[0]), rows)


FIT_NOTE = (
    "Fit: the shipped camvid_fcn8s_lite0.yaml with only the batch, --model.compile, the steps and "
    "validation (off) changed; W&B off, CSV logging, checkpoints and the progress bar as shipped."
)


def seg_workload(args: Any, device: torch.device, scratch: Path) -> Workload:
    """``seg fit --config configs/seg/camvid_fcn8s_lite0.yaml`` on ``device`` for the device
    study (``bench.device_throughput``)."""
    from seg.cli import run_cli

    options = [*shlex.split(camvid.CONTENDERS[REFERENCE])[1:], "--data.root", str(args.data_root)]
    options += ["--data.num_workers", str(args.workers)]
    options += camvid.QUICK_ARGS[:2] if args.quick else []  # a smaller crop
    return cli_workload(
        "FCN-8s lite0 training on CamVid",
        run_cli,
        REPO / camvid.PEER_RECIPE,
        options,
        device,
        scratch,
        seg_model_step,
        lambda batch: int(batch["image"].shape[0]),
        [FIT_NOTE],
        before={8: H200_MODEL_STEP_B8_BEFORE},
    )


#: the model-only step on one H200 before the device path existed (FCN-8s lite0, batch 8,
#: images/s), against which the compiled step's target (2x) is stated
H200_MODEL_STEP_B8_BEFORE = 231.0


def seg_model_step(module: Any, batch: dict[str, Tensor], bf16: bool) -> Callable[[], None]:
    """One optimiser step of the module's network on a batch already on its device: forward
    (bf16 autocast when ``bf16``, as Lightning's bf16-mixed), loss, backward, the recipe's
    optimiser."""
    images, masks = batch["image"], batch["mask"].long()
    optimiser, _ = module.optimization.build(module.parameters(), total_steps=10**9)
    device_type = images.device.type

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            loss = module.compute_loss(module(images), masks)
        loss.backward()
        optimiser.step()

    return step


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the loops and the networks and write ``throughput_camvid.json`` / ``.md``; with
    ``--device cuda`` the device study instead (``bench.device_throughput.run_study``)."""
    parser = base_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=None, help="timed units (default 5)")
    parser.add_argument("--loop-batches", type=int, default=12, help="batches per timed epoch")
    add_device_arguments(parser, camvid.DATA_ROOT, batches=(8, 32))
    args = parse(parser, argv)
    if device_study_requested(args):
        return run_study(
            args,
            torch.device(args.device),
            "throughput_camvid",
            "Training throughput on CamVid photos",
            seg_workload,
            quick_batch=2,
            recipe=camvid.PEER_RECIPE,
        )
    repeats = args.repeats or (1 if args.quick else 5)
    title = "Training throughput on CamVid photos: networks side by side, Lightning vs bare loop"
    report = Report.start(args, "throughput_camvid", title, recipe=camvid.PEER_RECIPE)
    # The loops first, in a fresh process: once the networks' phase had grown the main thread's
    # heap, the bare loop (main thread) ran faster and the Lightning loop (its own thread) slower
    # than either does alone (75% instead of 97-100% on the same machine).
    loops = loop_table(args, repeats, work_dir(args, "throughput_camvid_logs"))
    networks, batch = network_table(repeats, args.quick)
    report.settings.update(batch)
    report.tables = [networks, loops]
    ratio = report.settings["ratio"] = loops.rows[0]["% of bare"] / 100
    report.findings.append(
        f"Lightning loop with photos decoded and augmented from disk reaches {100 * ratio:.1f}% "
        f"of the bare in-memory loop (target >= {100 * TARGET:.0f}%): "
        f"{'met' if ratio >= TARGET else 'NOT met'}."
    )
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
