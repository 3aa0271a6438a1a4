"""Training and inference throughput of our models against their peers, and achieved GFLOP/s.

Segmentation (256x256 inputs, same batch, threads and numerics for all; random weights):
our FCN-8s with VGG16 widths vs torchvision ``fcn_resnet50`` vs segmentation-models-pytorch
``Unet(resnet34)`` and ``DeepLabV3(resnet50)``. Each model trains with the same plain loop
(forward, cross-entropy, backward, SGD-momentum step), so the comparison is between networks.

DCGAN (64x64, ngf = ndf = 64, batch 64): our ``GANModule`` trained by a Lightning ``Trainer``
(its real loop, stepped one batch at a time) vs the classic PyTorch DCGAN recipe in float32
(``bench.dcgan_classic``).

Numerics: every contender runs in fp32 and fp32+channels-last; bf16 autocast + channels-last is
measured for our models (all models with ``--bf16 all``), so that the toolkit's defaults can be
chosen from data. Efficiency: FLOPs per training step from ``torch.utils.flop_counter`` divided
by the median step time, against the matmul peak measured in the same run (``bench.peak``).

Usage: ``python -m bench.throughput [--quick] [--threads 2] [--bf16 ours|all|none]``
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from bench.dcgan_classic import ClassicDCGAN
from bench.harness import (
    BenchmarkReport,
    Table,
    Timing,
    base_parser,
    configure_threads,
    log_stderr,
    read_results,
    time_alternating,
)
from bench.lightning_stepper import LightningStepper
from bench.numerics import ALL_NUMERICS, BF16_CL, FP32, Numerics
from bench.peak import DTYPES, matmul_step
from common.numerics import cpu_has_native_bf16

OURS_FCN = "ours FCN-8s (VGG16)"
OURS_GAN = "ours GANModule (Lightning)"
CLASSIC_GAN = "classic PyTorch DCGAN"


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of a run (full or ``--quick``)."""

    seg_image: int
    seg_batch: int
    seg_classes: int
    gan_image: int
    gan_batch: int
    gan_bf16_batch: int  # bf16 batch on CPUs without native bf16 (a batch-64 step takes minutes)
    gan_width: int
    warmup: int
    repeats: int
    min_repeats: int
    budget_s: float
    peak_sizes: dict[str, tuple[int, ...]]


FULL = Sizes(
    seg_image=256, seg_batch=2, seg_classes=21, gan_image=64, gan_batch=64, gan_bf16_batch=8,
    gan_width=64,
    warmup=1, repeats=5, min_repeats=2, budget_s=10.0,
    peak_sizes={"float32": (2048,), "bfloat16": (512,)},
)  # fmt: skip
QUICK = Sizes(
    seg_image=32, seg_batch=2, seg_classes=5, gan_image=64, gan_batch=4, gan_bf16_batch=4,
    gan_width=8,
    warmup=0, repeats=1, min_repeats=1, budget_s=0.0,
    peak_sizes={"float32": (128,), "bfloat16": (64,)},
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Segmentation contenders
# ---------------------------------------------------------------------------------------------


class _OutputKey(nn.Module):
    """Adapts torchvision segmentation models (dict output) to return the logits tensor."""

    def __init__(self, model: nn.Module, key: str = "out") -> None:
        super().__init__()
        self.model = model
        self.key = key

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)[self.key]


def _ours_fcn8s(num_classes: int) -> nn.Module:
    from seg.models import fcn8s

    return fcn8s(num_classes, encoder="vgg")


def _torchvision_fcn_resnet50(num_classes: int) -> nn.Module:
    from torchvision.models.segmentation import fcn_resnet50

    return _OutputKey(
        fcn_resnet50(weights=None, weights_backbone=None, aux_loss=None, num_classes=num_classes)
    )


def _smp_unet_resnet34(num_classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet34", encoder_weights=None, classes=num_classes)


def _smp_deeplabv3_resnet50(num_classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.DeepLabV3("resnet50", encoder_weights=None, classes=num_classes)


# Command-line key -> (display name, builder(num_classes)).
SEG_MODELS: dict[str, tuple[str, Callable[[int], nn.Module]]] = {
    "ours": (OURS_FCN, _ours_fcn8s),
    "tv_fcn_resnet50": ("torchvision fcn_resnet50", _torchvision_fcn_resnet50),
    "smp_unet_resnet34": ("smp Unet (resnet34)", _smp_unet_resnet34),
    "smp_deeplabv3_resnet50": ("smp DeepLabV3 (resnet50)", _smp_deeplabv3_resnet50),
}


def seg_train_step(
    model: nn.Module, numerics: Numerics, images: Tensor, masks: Tensor
) -> Callable[[], None]:
    """One SGD-momentum step of ``model`` on (images (N, 3, H, W), masks (N, H, W))."""
    model = numerics.prepare_module(model).train()
    images = numerics.prepare_input(images)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with numerics.autocast():
            logits = model(images)
        loss = F.cross_entropy(logits.float(), masks, ignore_index=255)
        loss.backward()
        optimizer.step()

    return step


def seg_infer_step(model: nn.Module, numerics: Numerics, images: Tensor) -> Callable[[], None]:
    """One forward pass of ``model`` in evaluation mode without autograd, argmax included."""
    model = numerics.prepare_module(model).eval()
    images = numerics.prepare_input(images)

    def step() -> None:
        with torch.inference_mode(), numerics.autocast():
            model(images).argmax(1)

    return step


def count_flops(function: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of the matmuls and convolutions ``function`` runs."""
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def seg_flops(model: nn.Module, images: Tensor, masks: Tensor) -> tuple[int, int]:
    """(training-step FLOPs, forward FLOPs) counted on a meta-device copy: no compute."""
    meta_model = copy.deepcopy(model).to("meta").train()
    meta_images = images.to("meta")
    meta_masks = masks.to("meta")

    def train() -> None:
        F.cross_entropy(meta_model(meta_images), meta_masks, ignore_index=255).backward()

    def forward() -> None:
        with torch.no_grad():
            meta_model.eval()(meta_images)

    return count_flops(train), count_flops(forward)


# ---------------------------------------------------------------------------------------------
# DCGAN contenders
# ---------------------------------------------------------------------------------------------


class _RepeatingImages(Dataset):
    """A long dataset cycling over a fixed pool of images in [-1, 1] (no decoding cost)."""

    def __init__(self, pool: Tensor, length: int) -> None:
        self.pool = pool
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        return self.pool[index % len(self.pool)]


def gan_module(sizes: Sizes, numerics: Numerics) -> nn.Module:
    from gan.module import GANModule

    return GANModule(
        nz=100,
        ngf=sizes.gan_width,
        ndf=sizes.gan_width,
        channels=3,
        image_size=sizes.gan_image,
        channels_last=numerics.channels_last,
        num_sample_images=0,
        fid_every_n_epochs=0,
    )


def ours_gan_stepper(
    sizes: Sizes, numerics: Numerics, pool: Tensor, batch: int
) -> LightningStepper:
    """Our GANModule in a Lightning Trainer on batches of ``batch``, paused after each batch."""
    import lightning.pytorch as pl

    torch.manual_seed(0)
    module = gan_module(sizes, numerics)
    loader = DataLoader(_RepeatingImages(pool, batch * 100_000), batch_size=batch)

    def fit(callback: pl.Callback) -> None:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            precision=numerics.lightning_precision,
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[callback],
        )
        trainer.fit(module, train_dataloaders=loader)

    return LightningStepper(fit, unit="batch")


def classic_gan_step(sizes: Sizes, numerics: Numerics, real: Tensor) -> Callable[[], None]:
    """The classic recipe's training step (only fp32 is the classic recipe itself)."""
    gan = ClassicDCGAN.create(ngf=sizes.gan_width, ndf=sizes.gan_width, nc=3)
    numerics.prepare_module(gan.generator)
    numerics.prepare_module(gan.discriminator)
    real = numerics.prepare_input(real)

    def step() -> None:
        with numerics.autocast():
            gan.train_step(real)

    return step


def gan_train_flops(sizes: Sizes, real: Tensor) -> int:
    """FLOPs of one DCGAN training step (counted on the classic recipe: same layers)."""
    gan = ClassicDCGAN.create(ngf=sizes.gan_width, ndf=sizes.gan_width, nc=3)
    return count_flops(lambda: gan.train_step(real))


def generator_infer_step(
    generator: nn.Module, numerics: Numerics, noise: Tensor
) -> Callable[[], None]:
    generator = numerics.prepare_module(generator).eval()

    def step() -> None:
        with torch.inference_mode(), numerics.autocast():
            generator(noise)

    return step


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def throughput_rows(
    timings: dict[str, Timing],
    meta: dict[str, dict[str, Any]],
    flops: dict[str, float],
    peaks: dict[str, float],
) -> list[dict[str, Any]]:
    """One row per contender: images/s, step time, spread, GFLOP/s and % of the peaks."""
    rows = []
    for name, timing in timings.items():
        row = dict(meta[name])
        row["images/s"] = row["batch"] / timing.median
        row["median s/step"] = timing.median
        row["spread"] = timing.spread
        row["repeats"] = timing.repeats
        step_flops = flops.get(name)
        if step_flops:
            achieved = step_flops / timing.median / 1e9
            row["GFLOP/step"] = step_flops / 1e9
            row["GFLOP/s"] = achieved
            row["% fp32 peak"] = 100 * achieved / peaks["float32"]
            if row.get("numerics") == BF16_CL.name:
                row["% bf16 peak"] = 100 * achieved / peaks["bfloat16"]
        rows.append(row)
    return rows


def add_ratio(rows: list[dict], column: str, baseline_of: Callable[[dict], dict | None]) -> None:
    for row in rows:
        base = baseline_of(row)
        row[column] = row["images/s"] / base["images/s"] if base else None


def find_row(rows: list[dict], **match: Any) -> dict | None:
    for row in rows:
        if all(row.get(key) == value for key, value in match.items()):
            return row
    return None


def fastest_numerics(rows: list[dict], model: str) -> dict:
    return max((row for row in rows if row["model"] == model), key=lambda row: row["images/s"])


def efficiency_finding(row: dict, peaks: dict[str, float], what: str, target: float) -> str:
    """Achieved GFLOP/s of our training step at its fastest numerics against both peaks."""
    achieved = row["GFLOP/s"]
    return (
        f"{what} training efficiency at its fastest numerics ({row['numerics']}): "
        f"{achieved:.1f} GFLOP/s = {100 * achieved / peaks['float32']:.0f}% of the float32 "
        f"matmul peak ({peaks['float32']:.1f}) and {100 * achieved / peaks['bfloat16']:.0f}% of "
        f"the bf16 matmul peak ({peaks['bfloat16']:.2f}); issue target >= {target:.0f}% of the "
        "bf16 peak."
    )


def numerics_finding(rows: list[dict], model: str, what: str) -> str:
    base = find_row(rows, model=model, numerics=FP32.name)
    parts = [
        f"{row['numerics']} {row['images/s'] / base['images/s']:.2f}x"
        for row in rows
        if row["model"] == model and row is not base
    ]
    best = fastest_numerics(rows, model)
    return (
        f"{model} {what}: vs fp32, " + ", ".join(parts) + f" -> fastest numerics: "
        f"{best['numerics']} ({best['images/s']:.3g} images/s)."
    )


TRAIN_COLUMNS = [
    "model", "numerics", "batch", "params (M)", "images/s", "x vs ours fp32",
    "x vs same model fp32", "median s/step", "spread", "repeats", "GFLOP/step", "GFLOP/s",
    "% fp32 peak", "% bf16 peak",
]  # fmt: skip
INFER_COLUMNS = [
    "model", "numerics", "batch", "images/s", "x vs ours fp32", "x vs same model fp32",
    "median s/step", "spread", "repeats", "GFLOP/step", "GFLOP/s", "% fp32 peak",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def _numerics_for(model_is_ours: bool, bf16: str) -> list[Numerics]:
    chosen = [ALL_NUMERICS["fp32"], ALL_NUMERICS["fp32+cl"]]
    if bf16 == "all" or (bf16 == "ours" and model_is_ours):
        chosen.append(BF16_CL)
    return chosen


def _timing_options(sizes: Sizes, names: Sequence[str]) -> dict[str, Any]:
    # A bf16 step on a CPU without native bf16 is so slow (10x float32) that a warm-up call is
    # noise and one timed call decides; timing it again would double the run.
    slow = {name for name in names if BF16_CL.name in name and not cpu_has_native_bf16()}
    return {
        "warmup": {name: 0 if name in slow else sizes.warmup for name in names},
        "repeats": sizes.repeats,
        "min_repeats": {name: 1 if name in slow else sizes.min_repeats for name in names},
        "budget_s": sizes.budget_s,
        "log": log_stderr,
    }


PEAK_PREFIX = "[peak] "


def time_with_peak(
    steps: dict[str, Callable[[], None]], sizes: Sizes, budget_s: float | None = None
) -> tuple[dict[str, Timing], dict[str, float]]:
    """Time ``steps`` alternating, with the peak matmuls of ``bench.peak`` in the same rotation,
    so that the peak and the steps see the same machine load. Returns (timings of ``steps``,
    peak GFLOP/s per dtype)."""
    peak_steps: dict[str, Callable[[], None]] = {}
    peak_flops: dict[str, tuple[str, float]] = {}
    for dtype_name, dtype_sizes in sizes.peak_sizes.items():
        size = dtype_sizes[0]
        if dtype_name == "bfloat16" and cpu_has_native_bf16() and sizes is FULL:
            # Native bf16 (AMX) needs larger matrices to reach its peak: 436 GFLOP/s at 512 but
            # 924 at 1024 on a 2-core Sapphire Rapids (bench.peak); emulated bf16 is too slow
            # for 1024 to fit a rotation.
            size = max(size, 1024)
        name = f"{PEAK_PREFIX}{dtype_name} matmul {size}"
        peak_steps[name] = matmul_step(size, DTYPES[dtype_name])
        peak_flops[name] = (dtype_name, 2.0 * size**3)
    all_steps = {**steps, **peak_steps}
    options = _timing_options(sizes, list(all_steps))
    if budget_s is not None:
        options["budget_s"] = budget_s
    timings = time_alternating(all_steps, followers=set(peak_steps), **options)
    peaks = {
        dtype_name: flops / timings.pop(name).median / 1e9
        for name, (dtype_name, flops) in peak_flops.items()
    }
    return timings, peaks


def _peak_note(peaks: dict[str, float]) -> str:
    return "Matmul peak timed in the same rotation: " + ", ".join(
        f"{name} {value:.1f} GFLOP/s" for name, value in peaks.items()
    )


def run_segmentation(
    sizes: Sizes, bf16: str, models: Sequence[str]
) -> tuple[list[Table], list[str]]:
    generator = torch.Generator().manual_seed(0)
    shape = (sizes.seg_batch, 3, sizes.seg_image, sizes.seg_image)
    images = torch.rand(shape, generator=generator)
    masks = torch.randint(0, sizes.seg_classes, shape[:1] + shape[2:], generator=generator)

    train_steps: dict[str, Callable[[], None]] = {}
    infer_steps: dict[str, Callable[[], None]] = {}
    meta: dict[str, dict[str, Any]] = {}
    train_flops: dict[str, int] = {}
    infer_flops: dict[str, int] = {}
    names = [SEG_MODELS[key][0] for key in models]
    for key in models:
        model_name, build = SEG_MODELS[key]
        log_stderr(f"building {model_name}")
        torch.manual_seed(0)
        reference = build(sizes.seg_classes)
        params = sum(p.numel() for p in reference.parameters()) / 1e6
        step_flops, forward_flops = seg_flops(reference, images, masks)
        for numerics in _numerics_for(model_name == OURS_FCN, bf16):
            name = f"{model_name} | {numerics.name}"
            meta[name] = {
                "model": model_name,
                "numerics": numerics.name,
                "batch": sizes.seg_batch,
                "params (M)": params,
            }
            train_steps[name] = seg_train_step(copy.deepcopy(reference), numerics, images, masks)
            infer_steps[name] = seg_infer_step(copy.deepcopy(reference), numerics, images)
            train_flops[name] = step_flops
            infer_flops[name] = forward_flops
        del reference

    log_stderr("segmentation training")
    train_timings, train_peaks = time_with_peak(train_steps, sizes)
    train_steps.clear()  # free the optimiser states before inference
    log_stderr("segmentation inference")
    infer_timings, infer_peaks = time_with_peak(infer_steps, sizes)

    tables, findings = [], []
    batch = sizes.seg_batch
    for what, timings, flops, columns, peaks in (
        ("training", train_timings, train_flops, TRAIN_COLUMNS, train_peaks),
        ("inference", infer_timings, infer_flops, INFER_COLUMNS, infer_peaks),
    ):
        rows = throughput_rows(timings, meta, flops, peaks)
        ours_fp32 = find_row(rows, model=OURS_FCN, numerics=FP32.name)
        add_ratio(rows, "x vs ours fp32", lambda row, base=ours_fp32: base)
        add_ratio(
            rows,
            "x vs same model fp32",
            lambda row, rows=rows: find_row(rows, model=row["model"], numerics=FP32.name),
        )
        tables.append(
            Table(
                f"Segmentation {what}: {sizes.seg_image}x{sizes.seg_image}, batch {batch}, "
                f"{sizes.seg_classes} classes",
                columns,
                rows,
                note=(
                    (
                        "Same plain loop for every network (SGD-momentum, cross-entropy). "
                        "GFLOP counted with torch.utils.flop_counter (2 FLOPs per multiply-add, "
                        "convolutions and matmuls only). "
                        if what == "training"
                        else "model.eval() under torch.inference_mode(), argmax included. "
                    )
                    + _peak_note(peaks)
                ),
            )
        )
        if OURS_FCN in names:
            findings.append(numerics_finding(rows, OURS_FCN, what))
            ours_best = fastest_numerics(rows, OURS_FCN)
            if what == "training":
                findings.append(efficiency_finding(ours_best, peaks, "FCN-8s", 50))
            for peer in names:
                if peer == OURS_FCN:
                    continue
                peer_best = fastest_numerics(rows, peer)
                findings.append(
                    f"Segmentation {what}, each at its fastest numerics: ours "
                    f"{ours_best['images/s']:.3g} images/s ({ours_best['numerics']}) vs {peer} "
                    f"{peer_best['images/s']:.3g} ({peer_best['numerics']}): "
                    f"{ours_best['images/s'] / peer_best['images/s']:.2f}x."
                )
    return tables, findings


def run_dcgan(sizes: Sizes, bf16: str) -> tuple[list[Table], list[str]]:
    generator = torch.Generator().manual_seed(0)
    image_shape = (3, sizes.gan_image, sizes.gan_image)
    pool = torch.rand((sizes.gan_batch * 4, *image_shape), generator=generator) * 2 - 1
    noise = torch.randn(sizes.gan_batch, 100, generator=generator)
    flops_per_image = gan_train_flops(sizes, pool[: sizes.gan_batch]) / sizes.gan_batch

    from gan.models import Generator

    forward_flops_per_image = (
        count_flops(lambda: Generator(100, sizes.gan_width, 3, sizes.gan_image).eval()(noise))
        / sizes.gan_batch
    )

    def batch_for(numerics: Numerics) -> int:
        if numerics == BF16_CL and not cpu_has_native_bf16():
            return min(sizes.gan_batch, sizes.gan_bf16_batch)
        return sizes.gan_batch

    train_steps: dict[str, Callable[[], None]] = {}
    infer_steps: dict[str, Callable[[], None]] = {}
    train_flops: dict[str, float] = {}
    infer_flops: dict[str, float] = {}
    steppers: list[LightningStepper] = []
    meta: dict[str, dict[str, Any]] = {}

    def register(model: str, numerics: Numerics, params: int) -> str:
        name = f"{model} | {numerics.name}"
        batch = batch_for(numerics)
        meta[name] = {
            "model": model,
            "numerics": numerics.name,
            "batch": batch,
            "params (M)": params / 1e6,
        }
        train_flops[name] = flops_per_image * batch
        infer_flops[name] = forward_flops_per_image * batch
        return name

    classic = ClassicDCGAN.create(ngf=sizes.gan_width, ndf=sizes.gan_width, nc=3)
    classic_params = sum(
        p.numel() for net in (classic.generator, classic.discriminator) for p in net.parameters()
    )
    for numerics in _numerics_for(False, bf16):
        name = register(CLASSIC_GAN, numerics, classic_params)
        batch = meta[name]["batch"]
        train_steps[name] = classic_gan_step(sizes, numerics, pool[:batch].clone())
        torch.manual_seed(0)
        infer_steps[name] = generator_infer_step(
            ClassicDCGAN.create(ngf=sizes.gan_width, nc=3).generator,
            numerics,
            noise[:batch].view(-1, 100, 1, 1),
        )
    try:
        for numerics in _numerics_for(True, bf16):
            module = gan_module(sizes, numerics)
            params = sum(
                p.numel()
                for net in (module.generator, module.discriminator)
                for p in net.parameters()
            )
            name = register(OURS_GAN, numerics, params)
            batch = meta[name]["batch"]
            log_stderr(f"starting {name} (first batch untimed)")
            stepper = ours_gan_stepper(sizes, numerics, pool, batch)
            steppers.append(stepper)
            train_steps[name] = stepper.step
            torch.manual_seed(0)
            infer_steps[name] = generator_infer_step(
                Generator(100, sizes.gan_width, 3, sizes.gan_image), numerics, noise[:batch]
            )
        log_stderr("DCGAN training")
        # Few, costly contenders whose ratio is a target: more repetitions than the others.
        train_timings, train_peaks = time_with_peak(train_steps, sizes, 2.5 * sizes.budget_s)
    finally:
        for stepper in steppers:
            stepper.close()
    log_stderr("DCGAN generator inference")
    infer_timings, infer_peaks = time_with_peak(infer_steps, sizes)

    tables, findings = [], []
    for what, timings, flops, columns, peaks in (
        ("training", train_timings, train_flops, TRAIN_COLUMNS, train_peaks),
        ("generator inference", infer_timings, infer_flops, INFER_COLUMNS, infer_peaks),
    ):
        rows = throughput_rows(timings, meta, flops, peaks)
        classic_fp32 = find_row(rows, model=CLASSIC_GAN, numerics=FP32.name)
        add_ratio(rows, "x vs classic fp32", lambda row, base=classic_fp32: base)
        add_ratio(
            rows,
            "x vs same model fp32",
            lambda row, rows=rows: find_row(rows, model=row["model"], numerics=FP32.name),
        )
        columns = [
            "x vs classic fp32" if column == "x vs ours fp32" else column for column in columns
        ]
        tables.append(
            Table(
                f"DCGAN {what}: {sizes.gan_image}x{sizes.gan_image}, ngf = ndf = "
                f"{sizes.gan_width}, batch {sizes.gan_batch}",
                columns,
                rows,
                note=(
                    (
                        "Ours: GANModule.training_step inside Trainer.fit (one D and one G step, "
                        "EMA update, logging), timed from the end of one batch to the end of "
                        "the next. Classic: the pytorch/examples DCGAN step. FLOPs counted on "
                        "the classic step (same layers). "
                        if what == "training"
                        else "Generator forward in eval mode under torch.inference_mode(). "
                    )
                    + _peak_note(peaks)
                ),
            )
        )
        findings.append(numerics_finding(rows, OURS_GAN, f"DCGAN {what}"))
        best = fastest_numerics(rows, OURS_GAN)
        if what == "training":
            findings.append(efficiency_finding(best, peaks, "DCGAN", 70))
        findings.append(
            f"DCGAN {what}: ours at its fastest numerics ({best['numerics']}) is "
            f"{best['x vs classic fp32']:.2f}x the classic float32 recipe"
            + (" (target >= 1.5x)." if what == "training" else ".")
        )
    return tables, findings


def main(argv: Sequence[str] | None = None) -> BenchmarkReport:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--bf16",
        choices=("ours", "all", "none"),
        default="ours",
        help="which contenders also run in bf16+channels-last (default: ours; on CPUs without "
        "native bf16 a bf16 step takes minutes for the large peers)",
    )
    parser.add_argument(
        "--part", choices=("all", "seg", "gan"), default="all", help="which comparisons to run"
    )
    parser.add_argument(
        "--seg-models",
        nargs="+",
        choices=list(SEG_MODELS),
        default=list(SEG_MODELS),
        metavar="NAME",
        help=f"segmentation contenders (default: all of {', '.join(SEG_MODELS)})",
    )
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    report = BenchmarkReport(
        name="throughput" if args.part == "all" else f"throughput_{args.part}",
        title="Training and inference throughput: ours vs peers",
        settings={
            "threads": args.threads,
            "quick": args.quick,
            "bf16": args.bf16,
            "part": args.part,
            **{key: value for key, value in vars(sizes).items() if key != "peak_sizes"},
        },
    )
    recorded = read_results("peak")
    if recorded is not None and not args.quick:
        report.settings["peak_gflops_bench_peak"] = {
            k: round(v, 2) for k, v in recorded["settings"]["peak_gflops"].items()
        }
    if args.part in ("all", "seg"):
        tables, findings = run_segmentation(sizes, args.bf16, args.seg_models)
        report.tables += tables
        report.findings += findings
    if args.part in ("all", "gan"):
        tables, findings = run_dcgan(sizes, args.bf16)
        report.tables += tables
        report.findings += findings
    report.publish(args.results_dir)
    return report


if __name__ == "__main__":
    main()
