"""Does our DCGAN train as fast as the classic PyTorch loop, and how near the matmul peak?

Contenders (64x64, ngf = ndf = 64, batch 64): our ``GANModule`` in a Lightning ``Trainer`` (its
real loop, paused after each batch by ``bench.lightning_stepper.LightningStepper``) vs the classic
DCGAN loop (``bench.dcgan_classic``), in fp32, fp32 + channels-last and (ours) channels-last +
bf16 autocast; training steps and generator inference, with the achieved GFLOP/s against the matmul
peak timed in the same rotation (``bench.peak.time_with_peak``).

Usage: ``python -m bench.throughput_gan [--quick] [--threads 2]``

On a GPU, ``--device cuda`` runs the device study instead (``bench.device_throughput``): the data
loader alone, the model step alone and ``gan fit`` with ``configs/gan/dcgan_rgb64.yaml`` on an
image folder (default: the CamVid training photos), eager and compiled, at batch 64 and 256:
``python -m bench.throughput_gan --device cuda [--data-root FOLDER] [--workers 14]``
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader

from bench.budget import count_flops, cpu_trainer, parameter_count
from bench.dcgan_classic import ClassicDCGAN
from bench.device_throughput import Workload, add_device_arguments, cli_workload, run_study
from bench.harness import (
    REPO,
    Report,
    Table,
    Timing,
    base_parser,
    log,
    parse,
    read_results,
)
from bench.lightning_stepper import LightningStepper
from bench.peak import time_with_peak
from upsample.core.numerics import cpu_has_native_bf16

#: the device study's default image folder: the CamVid training photos
CAMVID_PHOTOS = REPO.parent / "shared" / "data" / "camvid" / "train"
OURS = "ours GANModule (Lightning)"
CLASSIC = "classic PyTorch DCGAN"
NZ = 100
# Few, costly contenders whose ratio is a target: training gets more repetitions than inference.
TRAIN_BUDGET_FACTOR = 2.5
COLUMNS = [
    "model",
    "numerics",
    "batch",
    "params (M)",
    "images/s",
    "x vs classic fp32",
    "x vs same model fp32",
    "median s/step",
    "spread",
    "repeats",
    "GFLOP/step",
    "GFLOP/s",
    "% fp32 peak",
    "% bf16 peak",
]
INFER_COLUMNS = [c for c in COLUMNS if c not in ("params (M)", "% bf16 peak")]
NOTES = {  # unit of work -> the note of its table
    "training": "Ours: GANModule.training_step inside Trainer.fit (one D and one G step, EMA "
    "update, logging), timed from the end of one batch to the end of the next. Classic: the "
    "pytorch/examples DCGAN step. FLOPs counted on the classic step (same layers). ",
    "generator inference": "Generator forward in eval mode under torch.inference_mode(). ",
}


@dataclass(frozen=True)
class Numerics:
    """Memory format and autocast of a contender (never float16: emulated on CPUs, very slow)."""

    name: str
    channels_last: bool
    bf16: bool

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module`` converted (in place) to this memory format."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def prepare_input(self, tensor: Tensor) -> Tensor:
        """``tensor`` laid out in this memory format (channels-last applies to 4-d tensors)."""
        if self.channels_last and tensor.ndim == 4:
            return tensor.contiguous(memory_format=torch.channels_last)
        return tensor.contiguous()

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the CPU, or nothing."""
        return torch.autocast("cpu", torch.bfloat16) if self.bf16 else contextlib.nullcontext()


FP32 = Numerics("fp32", channels_last=False, bf16=False)
FP32_CL = Numerics("fp32+cl", channels_last=True, bf16=False)
BF16_CL = Numerics("bf16+cl", channels_last=True, bf16=True)


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and timing budget of a run (full or ``--quick``)."""

    gan_image: int
    gan_batch: int
    gan_bf16_batch: int  # on CPUs without native bf16, where a batch-64 bf16 step takes minutes
    gan_width: int
    warmup: int
    repeats: int
    min_repeats: int
    budget_s: float


FULL = Sizes(64, 64, 8, 64, warmup=1, repeats=5, min_repeats=2, budget_s=10.0)
QUICK = Sizes(64, 4, 4, 8, warmup=0, repeats=1, min_repeats=1, budget_s=0.0)


def peak_sizes(quick: bool) -> dict[str, tuple[int, ...]]:
    """Sizes of the matmuls timed beside the steps, per dtype."""
    if quick:
        return {"float32": (128,), "bfloat16": (64,)}
    # Native bf16 (AMX) needs larger matrices to reach its peak: 436 GFLOP/s at 512 but 924 at
    # 1024 on a 2-core Sapphire Rapids (bench.peak).
    return {"float32": (2048,), "bfloat16": (1024,) if cpu_has_native_bf16() else (512,)}


@dataclass
class Contender:
    """One model in one numerics: its training and inference steps and their FLOPs."""

    model: str
    numerics: Numerics
    batch: int
    params: int
    train: Callable[[], object]
    infer: Callable[[], object]
    train_flops: float
    infer_flops: float

    @property
    def name(self) -> str:
        return f"{self.model} | {self.numerics.name}"


def classic_training(gan: ClassicDCGAN, numerics: Numerics, real: Tensor) -> Callable[[], None]:
    """One step of the classic loop (only fp32 is the classic recipe itself)."""
    numerics.prepare(gan.generator), numerics.prepare(gan.discriminator)
    real = numerics.prepare_input(real)

    def step() -> None:
        with numerics.autocast():
            gan.train_step(real)

    return step


def inference(generator: nn.Module, numerics: Numerics, noise: Tensor) -> Callable[[], None]:
    """One forward pass of ``generator`` in evaluation mode without autograd."""
    generator = numerics.prepare(generator).eval()
    noise = numerics.prepare_input(noise)

    def step() -> None:
        with torch.inference_mode(), numerics.autocast():
            generator(noise)

    return step


def gan_stepper(sizes: Sizes, numerics: Numerics, pool: Tensor, batch: int) -> LightningStepper:
    """Our GANModule in a Lightning Trainer on batches of ``batch``, paused after each batch."""
    from gan.dcgan.module import GANModule

    torch.manual_seed(0)
    module = GANModule(
        nz=NZ,
        ngf=sizes.gan_width,
        ndf=sizes.gan_width,
        channels=3,
        image_size=sizes.gan_image,
        channels_last=numerics.channels_last,
        num_sample_images=0,
        fid_every_n_epochs=0,
    )
    # 100k batches or more, cycling over the pool: the data cost nothing.
    loader = DataLoader(ConcatDataset([pool] * 25_000), batch_size=batch)
    precision = "bf16-mixed" if numerics.bf16 else "32-true"

    def fit(callback: Any) -> None:
        trainer = cpu_trainer(
            ".", precision, max_epochs=1, num_sanity_val_steps=0, callbacks=[callback]
        )
        trainer.fit(module, train_dataloaders=loader)

    return LightningStepper(fit, unit="batch")


def contenders(sizes: Sizes, steppers: list[LightningStepper]) -> list[Contender]:
    """The classic loop and our GANModule in each of their numerics, on the same images and
    noise; the steppers started go to ``steppers``, for the caller to close."""
    from gan.dcgan.models import Discriminator, Generator

    generator = torch.Generator().manual_seed(0)
    full, image, width = sizes.gan_batch, sizes.gan_image, sizes.gan_width
    pool = torch.rand((full * 4, 3, image, image), generator=generator) * 2 - 1
    noise = torch.randn(full, NZ, generator=generator)

    def classic() -> ClassicDCGAN:
        return ClassicDCGAN.create(ngf=width, ndf=width, nc=3)

    def ours() -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        return Generator(NZ, width, 3, image), Discriminator(width, 3, image)

    # FLOPs counted on the classic recipe: the same layers as ours.
    train_flops = count_flops(lambda: classic().train_step(pool[:full]))
    infer_flops = count_flops(lambda: ours()[0].eval()(noise))
    result = []
    for model in (CLASSIC, OURS):
        # bf16 for ours only: the classic recipe is float32 by definition.
        for numerics in (FP32, FP32_CL, BF16_CL) if model == OURS else (FP32, FP32_CL):
            slow_bf16 = numerics.bf16 and not cpu_has_native_bf16()
            batch = min(full, sizes.gan_bf16_batch) if slow_bf16 else full
            if model == CLASSIC:
                networks = (gan := classic()).generator, gan.discriminator
                train = classic_training(gan, numerics, pool[:batch].clone())
                inputs = noise[:batch].view(-1, NZ, 1, 1)
            else:
                networks, inputs = ours(), noise[:batch]
                log(f"starting {model} | {numerics.name} (first batch untimed)")
                steppers.append(gan_stepper(sizes, numerics, pool, batch))
                train = steppers[-1].step
            infer = inference(copy.deepcopy(networks[0]), numerics, inputs)
            result.append(
                Contender(
                    model,
                    numerics,
                    batch,
                    parameter_count(*networks),
                    train,
                    infer,
                    train_flops * batch / full,
                    infer_flops * batch / full,
                )
            )
    return result


def rows_of(
    contenders: list[Contender], timings: dict[str, Timing], peaks: dict[str, float], training: bool
) -> list[dict[str, Any]]:
    """One row per contender: images/s, step time, spread, GFLOP/s, shares of the peaks and the
    speed against the classic loop in fp32 and against the same model in fp32."""
    rows = []
    for c in contenders:
        timing = timings[c.name]
        flops = c.train_flops if training else c.infer_flops
        achieved = flops / timing.median / 1e9
        rows.append(
            {
                "model": c.model,
                "numerics": c.numerics.name,
                "batch": c.batch,
                "params (M)": c.params / 1e6,
                "images/s": c.batch / timing.median,
                "median s/step": timing.median,
                "spread": timing.spread,
                "repeats": timing.repeats,
                "GFLOP/step": flops / 1e9,
                "GFLOP/s": achieved,
                "% fp32 peak": 100 * achieved / peaks["float32"],
            }
        )
        if c.numerics.bf16:
            rows[-1]["% bf16 peak"] = 100 * achieved / peaks["bfloat16"]
    fp32 = {row["model"]: row["images/s"] for row in rows if row["numerics"] == "fp32"}
    for row in rows:
        row["x vs classic fp32"] = row["images/s"] / fp32[CLASSIC]
        row["x vs same model fp32"] = row["images/s"] / fp32[row["model"]]
    return rows


def findings_of(rows: list[dict[str, Any]], unit: str, peaks: dict[str, float]) -> list[str]:
    """Our fastest numerics, its share of the peaks (training) and its speed against the classic
    float32 loop."""
    ours = max((row for row in rows if row["model"] == OURS), key=lambda row: row["images/s"])
    fastest = f"at its fastest numerics ({ours['numerics']})"
    speedups = ", ".join(
        f"{r['numerics']} {r['x vs same model fp32']:.2f}x"
        for r in rows
        if r["model"] == OURS and r["numerics"] != "fp32"
    )
    lines = [
        f"{OURS} DCGAN {unit}: vs fp32, {speedups} -> fastest numerics: "
        f"{ours['numerics']} ({ours['images/s']:.3g} images/s)."
    ]
    if unit == "training":
        achieved, fp32, bf16 = ours["GFLOP/s"], peaks["float32"], peaks["bfloat16"]
        lines.append(
            f"DCGAN training efficiency {fastest}: {achieved:.1f} GFLOP/s = "
            f"{100 * achieved / fp32:.0f}% of the float32 matmul peak ({fp32:.1f}) and "
            f"{100 * achieved / bf16:.0f}% of the bf16 matmul peak ({bf16:.2f}); issue target "
            ">= 70% of the bf16 peak."
        )
    target = " (target >= 1.5x)." if unit == "training" else "."
    ratio = ours["x vs classic fp32"]
    lines.append(f"DCGAN {unit}: ours {fastest} is {ratio:.2f}x the classic float32 recipe{target}")
    return lines


def measure(
    contenders: list[Contender], sizes: Sizes, quick: bool
) -> tuple[list[Table], list[str]]:
    """Time the training steps of every contender, then their inference; tables and findings."""
    tables, findings = [], []
    # A bf16 step on a CPU without native bf16 is so slow (10x float32) that a warm-up call is
    # noise and one timed call decides; timing it again would double the run.
    slow = {c.name for c in contenders if c.numerics.bf16 and not cpu_has_native_bf16()}
    dims = f"{sizes.gan_image}x{sizes.gan_image}, ngf = ndf = {sizes.gan_width}"
    for unit, note in NOTES.items():
        log(f"DCGAN {unit}")
        training = unit == "training"
        steps = {c.name: c.train if training else c.infer for c in contenders}
        timings, peaks = time_with_peak(
            steps,
            peak_sizes(quick),
            slow,
            warmup=sizes.warmup,
            repeats=sizes.repeats,
            min_repeats=sizes.min_repeats,
            budget_s=sizes.budget_s * (TRAIN_BUDGET_FACTOR if training else 1.0),
        )
        rows = rows_of(contenders, timings, peaks, training)
        note += "Matmul peak timed in the same rotation: " + ", ".join(
            f"{name} {value:.1f} GFLOP/s" for name, value in peaks.items()
        )
        title = f"DCGAN {unit}: {dims}, batch {sizes.gan_batch}"
        tables.append(Table(title, COLUMNS if training else INFER_COLUMNS, rows, note))
        findings += findings_of(rows, unit, peaks)
    return tables, findings


#: the DCGAN config of the device study (64x64 RGB, widths 64: the DCGAN paper's network)
DEVICE_CONFIG = "configs/gan/dcgan_rgb64.yaml"
DEVICE_FIT_NOTE = (
    "Fit: the shipped dcgan_rgb64.yaml on an image folder with only the batch, --model.compile, "
    "the steps and validation (off) changed; W&B off, CSV logging, checkpoints, sample grids "
    "and the progress bar as shipped. A batch is one critic and one generator step and an EMA "
    "update."
)


def gan_model_step(module: Any, real: Tensor, bf16: bool) -> Callable[[], None]:
    """One training step of the module's networks on a batch already on their device: a critic
    step on real and generated images, a generator step through the updated critic (its
    losses, ``gan.core.losses``), an EMA update; bf16 autocast when ``bf16``; the networks compiled
    as the module's ``compile`` says (``AdversarialModule._network``)."""
    from gan.core.adversarial import update_ema
    from gan.core.losses import discriminator_loss, generator_loss
    from gan.core.optimizers import adversarial_optimizers

    hparams = module.hparams
    optimizer_g, optimizer_d = adversarial_optimizers(
        module.generator, module.discriminator, hparams.lr_g, hparams.lr_d, hparams.betas
    )
    generator, critic = module._network("generator"), module._network("discriminator")
    if hparams.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    noise = torch.randn(real.shape[0], hparams.nz, device=real.device)
    averaged = [*module.ema.module.parameters(), *module.ema.module.buffers()]
    current = [*module.generator.parameters(), *module.generator.buffers()]
    autocast = torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> None:
        with autocast:
            fake = generator(noise)
            loss_d = discriminator_loss(critic(real), critic(fake.detach()), hparams.loss)
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        with autocast:
            loss_g = generator_loss(critic(fake), hparams.loss)
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
        update_ema(averaged, current, hparams.ema_decay, 1)

    return step


def gan_workload(args: Any, device: torch.device, scratch: Path) -> Workload:
    """``gan fit --config configs/gan/dcgan_rgb64.yaml --data.root FOLDER`` on ``device`` for
    the device study (``bench.device_throughput``)."""
    from gan.cli import run_cli

    options = ["--data.root", str(args.data_root), "--data.num_workers", str(args.workers)]
    options += ["--model.fid_every_n_epochs", "0"]
    if args.quick:
        options += ["--model.ngf", "8", "--model.ndf", "8", "--data.image_size", "32"]
    return cli_workload(
        "DCGAN 64x64 training on an image folder",
        run_cli,
        REPO / DEVICE_CONFIG,
        options,
        device,
        scratch,
        gan_model_step,
        lambda batch: int(batch.shape[0]),
        [DEVICE_FIT_NOTE],
        optimizer_steps_per_batch=2,  # a batch is two optimiser steps (critic, generator)
    )


def main(argv: Sequence[str] | None = None) -> Report:
    """Time both DCGAN loops and write ``throughput_gan.json`` / ``.md``; with ``--device
    cuda`` the device study instead (``bench.device_throughput.run_study``)."""
    parser = base_parser(__doc__)
    add_device_arguments(parser, CAMVID_PHOTOS, batches=(64, 256))
    args = parse(parser, argv)
    device = torch.device(args.device)
    if device.type != "cpu" or args.study == "device":
        return run_study(
            args, device, "throughput_gan", "DCGAN training throughput", gan_workload, quick_batch=4
        )
    sizes = QUICK if args.quick else FULL
    title = "DCGAN training and inference throughput: ours vs the classic PyTorch loop"
    report = Report.start(args, "throughput_gan", title, **asdict(sizes))
    recorded = read_results("peak")
    if recorded is not None and not args.quick:
        peaks = recorded["settings"]["peak_gflops"]
        report.settings["peak_gflops_bench_peak"] = {k: round(v, 2) for k, v in peaks.items()}
    steppers: list[LightningStepper] = []
    try:
        units = contenders(sizes, steppers)
        report.tables, report.findings = measure(units, sizes, args.quick)
    finally:
        for stepper in steppers:
            stepper.close()
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
