"""Training throughput on an accelerator, where a step's time goes: the data loader alone, the
model step alone and ``fit`` as users run it, side by side in one run, eager and compiled, with
the model step's FLOPs against the device's bf16 matmul peak measured in the same run (what each
row measures: the Method of ``bench/templates/throughput_device.md``).

Used by ``bench.throughput_camvid --device cuda`` and ``bench.throughput_gan --device cuda``.
Everything also runs on a CPU (the tests do, at tiny sizes); the figures to read come from a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import move_data_to_device

from bench.budget import count_flops
from bench.harness import Report, Table, log, machine_info, slug, work_dir

#: what each row measures
LOADER, MODEL, FIT = "data loader", "model step", "fit"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The accelerator's name (``NVIDIA H200``), or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return str(machine_info()["cpu_model"])


def bf16_matmul_peak(device: torch.device, size: int | None = None, repeats: int = 10) -> float:
    """Measured bf16 matrix-multiplication FLOP/s of ``device`` (square ``size`` matrices)."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(2):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def seconds_per_call(
    function: Callable[[], Any], device: torch.device, warmup: int, calls: int
) -> float:
    """Median seconds per call of ``function`` over three timed runs of ``calls`` calls each,
    after ``warmup`` calls (compilation, allocator, cuDNN's choices), the device synchronised at
    the ends only."""
    for _ in range(warmup):
        function()
    synchronize(device)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        synchronize(device)
        runs.append((time.perf_counter() - start) / calls)
    return sorted(runs)[1]


class StepTimer(pl.Callback):
    """Steady-state seconds per training batch of a ``fit``: from the end of batch ``warmup``
    to the end of training, over the batches in between. The device is synchronised at those
    two points only, so that the loop runs as it does untimed (a synchronisation per batch would
    stop the host from queueing work ahead)."""

    def __init__(self, warmup: int = 10) -> None:
        self.warmup = warmup
        self.batches = 0
        self._start: float | None = None
        self.seconds_per_batch = float("nan")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any
    ) -> None:
        self.batches += 1
        if self.batches == self.warmup:
            synchronize(pl_module.device)
            self._start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        synchronize(pl_module.device)
        timed = self.batches - self.warmup
        if self._start is None or timed < 1:
            raise ValueError(f"fit ran {self.batches} batches, fewer than warm-up + 1")
        self.seconds_per_batch = (time.perf_counter() - self._start) / timed


@dataclass
class Workload:
    """A toolkit command as the device study times it: ``run_cli`` (``seg.cli``'s or
    ``gan.cli``'s) with the shipped ``config`` and ``options`` on ``device``, W&B off, the batch
    size and ``--model.compile`` set per measurement. ``step(module, batch, bf16)`` is one model
    step on a batch already on the device, ``images(batch)`` counts a batch's images; ``fit``
    runs ``optimizer_steps_per_batch`` optimiser steps a batch (a GAN's critic and generator: 2)
    under ``scratch``; ``before``: images/s of the eager model step measured before the device
    path, by batch size, against which the compiled step's target (2x) is stated."""

    name: str
    run_cli: Callable[..., Any]
    config: Path
    options: list[str]
    device: torch.device
    scratch: Path
    step: Callable[[pl.LightningModule, Any, bool], Callable[[], None]]
    images: Callable[[Any], int]
    note: str
    optimizer_steps_per_batch: int = 1
    before: dict[int, float] = field(default_factory=dict)

    def command(self, batch: int, compiled: bool) -> list[str]:
        """The command line's options for one measurement."""
        accelerator = "gpu" if self.device.type == "cuda" else "cpu"
        return [
            "--config", str(self.config), *self.options, "--trainer.accelerator", accelerator,
            "--trainer.devices", "1", "--wandb", "false", "--data.batch_size", str(batch),
            "--model.compile", str(compiled).lower(),
        ]  # fmt: skip

    def build(self, batch: int, compiled: bool) -> tuple[Any, Any, str]:
        """The module and data module ``fit`` would train, and its precision."""
        cli = self.run_cli([*self.command(batch, compiled), "--trainer.logger", "false"], run=False)
        cli.datamodule.trainer = cli.trainer  # its device decides the augmentation's place
        return cli.model, cli.datamodule, str(cli.config.trainer.precision)

    def fit(self, batch: int, compiled: bool, steps: int, warmup: int) -> float:
        """Steady-state seconds per batch of ``fit`` for ``steps`` batches, the first ``warmup``
        untimed (``StepTimer``), validation off, run in this process."""
        root = self.scratch / f"fit_b{batch}_{'compiled' if compiled else 'eager'}"
        args = ["fit", *self.command(batch, compiled), "--trainer.default_root_dir", str(root)]
        args += ["--trainer.max_steps", str(self.optimizer_steps_per_batch * steps)]
        args += ["--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0"]
        args += [f"--trainer.callbacks+={__name__}.StepTimer"]
        cli = self.run_cli([*args, f"--trainer.callbacks.warmup={warmup}"])
        (timer,) = [c for c in cli.trainer.callbacks if isinstance(c, StepTimer)]
        return timer.seconds_per_batch


def loader_seconds(
    datamodule: pl.LightningDataModule, device: torch.device, batches: int, images_of: Callable
) -> tuple[float, int, Any]:
    """Seconds per batch of the training loader feeding ``device`` (moved there, then
    ``on_after_batch_transfer``: the device augmentation), after one warm-up batch (the workers'
    start); the images per batch; and the last batch, on the device."""
    loader = datamodule.train_dataloader()
    iterator = iter(loader)
    count, images, start = 0, 0, None
    while count <= batches:
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        batch = move_data_to_device(batch, device)
        batch = datamodule.on_after_batch_transfer(batch, 0)
        if start is None:
            synchronize(device)
            start, images = time.perf_counter(), images_of(batch)
        count += 1
    synchronize(device)
    return (time.perf_counter() - start) / batches, images, batch


def device_table(
    workload: Workload,
    device: torch.device,
    batches: Sequence[int],
    compiles: Sequence[bool],
    steps: int,
    warmup: int,
) -> tuple[Table, dict[str, Any]]:
    """One table of images/s per batch size: loader, model step and fit, eager and compiled; the
    model step's FLOPs against the measured bf16 peak; and the figures as data."""
    peak = bf16_matmul_peak(device)
    log(f"[{workload.name}] bf16 matmul peak of {device_name(device)}: {peak / 1e12:.1f} TFLOP/s")
    rows: list[dict[str, Any]] = []
    for batch_size in batches:
        module, datamodule, precision = workload.build(batch_size, False)
        datamodule.prepare_data()
        datamodule.setup("fit")
        log(f"[{workload.name}] batch {batch_size}: data loader")
        seconds, images, batch = loader_seconds(datamodule, device, steps, workload.images)
        rows.append(_row(LOADER, batch_size, "-", images, seconds))
        bf16 = precision.startswith("bf16")
        eager = module.to(device)
        flops = count_flops(workload.step(eager, batch, bf16))  # the compiled step: same math
        model_seconds: dict[bool, float] = {}
        for compiled in compiles:
            module = workload.build(batch_size, True)[0].to(device) if compiled else eager
            log(f"[{workload.name}] batch {batch_size}: model step, compiled={compiled}")
            step = workload.step(module, batch, bf16)
            model_seconds[compiled] = seconds_per_call(step, device, warmup, steps)
            row = _row(MODEL, batch_size, compiled, images, model_seconds[compiled])
            row["GFLOP/step"] = flops / 1e9
            row["% bf16 peak"] = 100 * flops / model_seconds[compiled] / peak
            rows.append(row)
        for compiled in compiles:
            log(f"[{workload.name}] batch {batch_size}: fit, compiled={compiled}")
            seconds = workload.fit(batch_size, compiled, steps + warmup, warmup)
            row = _row(FIT, batch_size, compiled, images, seconds)
            row["% of model step"] = 100 * model_seconds[compiled] / seconds
            rows.append(row)
    columns = ["what", "batch", "compiled", "images/s", "ms/batch", "% of model step"]
    columns += ["GFLOP/step", "% bf16 peak"]
    title = f"{workload.name} on {device_name(device)} ({precision})"
    note = (
        f"Steady state after {warmup} warm-up batches, {steps} timed; bf16 matmul peak measured "
        f"here: {peak / 1e12:.1f} TFLOP/s. {workload.note}"
    )
    data = {"peak_bf16_flops": peak, "rows": rows, "device": device_name(device)}
    return Table(title, columns, rows, note), data


def _row(what: str, batch: int, compiled: Any, images: int, seconds: float) -> dict[str, Any]:
    return {
        "what": what,
        "batch": batch,
        "compiled": compiled,
        "images/s": images / seconds,
        "ms/batch": 1000 * seconds,
    }


FIT_TARGET = 0.90


def add_device_arguments(parser: Any, data_root: Path, batches: Sequence[int]) -> None:
    """The options of the device study: ``--device``, ``--data-root``, ``--workers``,
    ``--batches``, ``--steps``, ``--warmup``, ``--no-compile``."""
    parser.add_argument(
        "--device", help="run the device study on cuda, cuda:1, ... (cpu: a smoke run of it)"
    )
    parser.add_argument("--data-root", type=Path, default=data_root, help="the dataset's folder")
    parser.add_argument("--workers", type=int, default=14, help="data loader workers")
    parser.add_argument("--batches", type=int, nargs="+", default=list(batches))
    parser.add_argument("--steps", type=int, default=60, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=30, help="untimed batches before")
    parser.add_argument("--no-compile", action="store_true", help="eager rows only")


def device_study_requested(args: Any) -> bool:
    """Whether ``add_device_arguments``' options ask for the device study (``--device``)."""
    return args.device is not None


def device_findings(rows: Sequence[dict[str, Any]], before: dict[int, float]) -> list[str]:
    """What the device study's rows say against the issue's targets: fit at >= 90% of the
    model step, and the compiled model step against the eager one and against the eager step
    measured ``before`` (images/s by batch size)."""
    findings = []
    model = {(r["batch"], r["compiled"]): r for r in rows if r["what"] == MODEL}
    for row in (r for r in rows if r["what"] == FIT):
        share = row["% of model step"] / 100
        verdict = "met" if share >= FIT_TARGET else "not met"
        findings.append(
            f"batch {row['batch']}, {'compiled' if row['compiled'] else 'eager'}: fit delivers "
            f"{row['images/s']:.0f} images/s, {100 * share:.0f}% of the model step "
            f"(target >= {100 * FIT_TARGET:.0f}%: {verdict})."
        )
    for (batch, compiled), row in sorted(model.items()):
        eager = model.get((batch, False))
        if compiled and eager is not None:
            findings.append(
                f"batch {batch}: the compiled model step runs {row['images/s']:.0f} images/s, "
                f"{row['images/s'] / eager['images/s']:.2f}x the eager one"
                + (
                    f" and {row['images/s'] / before[batch]:.2f}x the eager step measured on "
                    f"one H200 before ({before[batch]:.0f} images/s; target 2x)."
                    if batch in before
                    else "."
                )
            )
    return findings


def run_study(
    args: Any,
    device: torch.device,
    benchmark: str,
    title: str,
    make_workload: Callable[[Any, torch.device, Path], Workload],
    quick_batch: int,
    **settings: Any,
) -> Report:
    """The device study of one workload (``device_table``, ``device_findings``), written as
    ``<benchmark>_<device>.json`` / ``.md``: batches ``args.batches`` (``--quick``:
    ``quick_batch``), eager and compiled (``--no-compile``: eager), ``args.steps`` timed batches
    after ``args.warmup``."""
    name = device_name(device)
    full_title = f"{title} on {name}: data loader, model step, fit"
    report = Report.start(
        args, f"{benchmark}_{slug(name)}", full_title, "throughput_device", device=name, **settings
    )
    batches = [quick_batch] if args.quick else args.batches
    compiles = [False] if args.no_compile else [False, True]
    steps, warmup = (3, 1) if args.quick else (args.steps, args.warmup)
    workload = make_workload(args, device, work_dir(args, f"{benchmark}_device"))
    table, data = device_table(workload, device, batches, compiles, steps, warmup)
    report.tables, report.data = [table], data
    report.findings += device_findings(data["rows"], workload.before)
    report.write(args.results_dir)
    return report
