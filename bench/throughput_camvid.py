"""Training throughput on CamVid photos: our networks vs the peers, step by step.

Images/s of a training step on one in-memory batch of the recipe's crops, every contender of
``bench.quality_camvid`` alternating step by step with our FCN-8s lite0.

    python -m bench.throughput_camvid [--quick] [--threads 2] [--repeats 5]

On a GPU, ``--device cuda`` runs the device study instead (``bench.device_throughput``): the data
loader alone, the model step alone and ``seg fit``, eager and compiled, at batch 8 and 32, against
the GPU's measured bf16 peak:

    python -m bench.throughput_camvid --device cuda [--data-root CAMVID] [--workers 14]

The comparison of our Lightning loop with a bare PyTorch loop is retired (its question is
settled): ``bench/results/retired/throughput_camvid_loop.md``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench import quality_camvid as camvid
from bench.device_throughput import (
    Workload,
    add_device_arguments,
    device_study_requested,
    run_study,
)
from bench.harness import REPO, Report, Table, Timing, base_parser, parse, time_alternating
from bench.seg_training import SegContender

REFERENCE = "FCN-8s lite0"
#: the model-only step on one H200 before the device path existed (FCN-8s lite0, batch 8,
#: images/s), against which the compiled step's target (2x) is stated
H200_MODEL_STEP_B8_BEFORE = 231.0
FIT_NOTE = (
    "Fit: the shipped camvid_fcn8s_lite0.yaml with only the batch, --model.compile, the steps and "
    "validation (off) changed; W&B off, CSV logging, checkpoints and the progress bar as shipped."
)


def build(name: str, quick: bool) -> SegContender:
    """Contender ``name`` as ``bench.quality_camvid`` trains it, without a logger."""
    args = ["--data.root", str(camvid.DATA_ROOT), "--trainer.logger", "false"]
    return camvid.contender_of(name, args + (camvid.QUICK_ARGS if quick else []))


def seg_model_step(module: Any, batch: dict[str, Tensor], bf16: bool) -> Callable[[], None]:
    """One optimiser step of the module's network on a batch already on its device: forward
    and loss (under bf16 autocast when ``bf16``, as Lightning's bf16-mixed), backward, the
    recipe's optimiser."""
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


def training_step(contender: SegContender, batch: dict[str, Tensor]) -> Callable[[], None]:
    """``seg_model_step`` of the contender in its precision, the batch's photos converted to
    the network's input once, outside the timing."""
    images = batch["image"].float().div(255.0).contiguous(memory_format=torch.channels_last)
    prepared = {"image": images, "mask": batch["mask"].long()}
    module = contender.module.train()
    return seg_model_step(module, prepared, contender.precision.startswith("bf16"))


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
    rows = [
        {
            "contender": name,
            "images/s": size[0] / timing.median,
            "x ours": ratio,
            "median s/step": timing.median,
            "spread": timing.spread,
            "repeats": timing.repeats,
        }
        for name, timing, ratio in timed
    ]
    note = "x ours: our FCN-8s lite0's median step time over the contender's, from steps "
    note += "alternating with ours."
    title = f"Training step on one in-memory batch {size} ({reference.precision})"
    settings = {"batch": list(size), "precision": reference.precision}
    return Table(title, list(rows[0]), rows, note), settings


def findings_of(rows: list[dict[str, Any]]) -> list[str]:
    """Our step's speed and the fastest other contender's, as a share of ours."""
    ours, *others = rows
    fastest = max(others, key=lambda row: row["x ours"])
    return [
        f"{ours['contender']} trains at {ours['images/s']:.1f} images/s; the fastest other "
        f"contender, {fastest['contender']}, at {fastest['x ours']:.2f}x its speed."
    ]


def seg_workload(args: Any, device: torch.device, scratch: Path) -> Workload:
    """``seg fit --config configs/seg/camvid_fcn8s_lite0.yaml`` on ``device`` for the device
    study (``bench.device_throughput``)."""
    from seg.cli import run_cli

    options = [*shlex.split(camvid.CONTENDERS[REFERENCE])[1:], "--data.root", str(args.data_root)]
    options += ["--data.num_workers", str(args.workers)]
    options += camvid.QUICK_ARGS[:2] if args.quick else []  # a smaller crop
    return Workload(
        "FCN-8s lite0 training on CamVid",
        run_cli,
        REPO / camvid.PEER_RECIPE,
        options,
        device,
        scratch,
        seg_model_step,
        lambda batch: int(batch["image"].shape[0]),
        FIT_NOTE,
        before={8: H200_MODEL_STEP_B8_BEFORE},
    )


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the networks and write ``throughput_camvid.json`` / ``.md``; with ``--device
    cuda`` the device study instead (``bench.device_throughput.run_study``)."""
    parser = base_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 5)")
    add_device_arguments(parser, camvid.DATA_ROOT, batches=(8, 32))
    args = parse(parser, argv)
    if device_study_requested(args):
        device, title = torch.device(args.device), "Training throughput on CamVid photos"
        return run_study(
            args, device, "throughput_camvid", title, seg_workload, quick_batch=2,
            recipe=camvid.PEER_RECIPE,
        )  # fmt: skip
    repeats = args.repeats or (1 if args.quick else 5)
    title = "Training throughput on CamVid photos: networks side by side"
    report = Report.start(args, "throughput_camvid", title, recipe=camvid.PEER_RECIPE)
    networks, batch = network_table(repeats, args.quick)
    report.settings.update(batch)
    report.tables = [networks]
    report.findings = findings_of(networks.rows)
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
