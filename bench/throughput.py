"""Training and inference throughput of our models against their peers, and achieved GFLOP/s.

Segmentation (256x256 inputs, same batch, threads and numerics for all; random weights):
our FCN-8s with VGG16 widths vs torchvision ``fcn_resnet50`` vs segmentation-models-pytorch
``Unet(resnet34)`` and ``DeepLabV3(resnet50)``. Each model trains with the same plain loop
(forward, cross-entropy, backward, SGD-momentum step), so the comparison is between networks.

DCGAN (64x64, ngf = ndf = 64, batch 64): our ``GANModule`` trained by a Lightning ``Trainer``
(its real loop, stepped one batch at a time) vs the classic PyTorch DCGAN recipe in float32
(``bench.dcgan_classic``).

Numerics: fp32 and fp32+channels-last for all, bf16 autocast + channels-last for ours (all with
``--bf16 all``). Efficiency: FLOPs per training step (``torch.utils.flop_counter``) per median step
time, against the matmul peak timed in the same rotation (``bench.peak``).

Usage: ``python -m bench.throughput [--quick] [--threads 2] [--bf16 ours|all|none]``
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from bench.budget import count_flops, cpu_trainer, parameter_count
from bench.dcgan_classic import ClassicDCGAN
from bench.harness import Report, Table, base_parser, log, parse, read_results
from bench.lightning_stepper import LightningStepper
from bench.numerics import (
    ALL_NUMERICS,
    BF16_CL,
    Numerics,
    classic_training,
    inference,
    seg_training,
)
from bench.peak import time_with_peak
from bench.seg_peers import smp_peer, tv_fcn_resnet50
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
    peak_sizes: dict[str, tuple[int, ...]] = field(compare=False)


FULL = Sizes(256, 2, 21, 64, 64, 8, 64, 1, 5, 2, 10.0, {"float32": (2048,), "bfloat16": (512,)})
QUICK = Sizes(32, 2, 5, 64, 4, 4, 8, 0, 1, 1, 0.0, {"float32": (128,), "bfloat16": (64,)})


def _ours_fcn8s(num_classes: int) -> nn.Module:
    from seg.models import build_fcn

    return build_fcn("fcn8s", num_classes, encoder="vgg")


# Command-line key -> (display name, builder(num_classes)); peers take the input as it is.
SEG_MODELS: dict[str, tuple[str, Callable[[int], nn.Module]]] = {
    "ours": (OURS_FCN, _ours_fcn8s),
    "tv_fcn_resnet50": ("torchvision fcn_resnet50", lambda k: tv_fcn_resnet50(k, False)),
    "smp_unet_resnet34": ("smp Unet (resnet34)", lambda k: smp_peer("Unet", "resnet34", k, False)),
    "smp_deeplabv3_resnet50": (
        "smp DeepLabV3 (resnet50)",
        lambda k: smp_peer("DeepLabV3", "resnet50", k, False),
    ),
}


@dataclass
class Contender:
    """One model in one numerics: its training and inference units and their FLOPs."""

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


def numerics_for(ours: bool, bf16: str) -> list[Numerics]:
    """fp32 and fp32+cl for all; bf16+cl for ours (``--bf16 ours``) or all (``--bf16 all``)."""
    extra = [BF16_CL] if bf16 == "all" or (bf16 == "ours" and ours) else []
    return [ALL_NUMERICS["fp32"], ALL_NUMERICS["fp32+cl"], *extra]


def seg_contenders(sizes: Sizes, bf16: str, models: Sequence[str]) -> list[Contender]:
    """Every segmentation model in every numerics, on the same random batch."""
    generator = torch.Generator().manual_seed(0)
    shape = (sizes.seg_batch, 3, sizes.seg_image, sizes.seg_image)
    images = torch.rand(shape, generator=generator)
    masks = torch.randint(0, sizes.seg_classes, shape[:1] + shape[2:], generator=generator)
    meta_images, meta_masks = images.to("meta"), masks.to("meta")
    contenders = []
    for key in models:
        model_name, build = SEG_MODELS[key]
        log(f"building {model_name}")
        torch.manual_seed(0)
        reference = build(sizes.seg_classes)
        meta = copy.deepcopy(reference).to("meta")  # FLOPs counted without computing
        train_flops = count_flops(
            lambda m=meta: F.cross_entropy(m.train()(meta_images), meta_masks).backward()
        )
        with torch.no_grad():
            infer_flops = count_flops(lambda m=meta: m.eval()(meta_images))
        for numerics in numerics_for(model_name == OURS_FCN, bf16):
            contenders.append(Contender(
                model_name, numerics, sizes.seg_batch, parameter_count(reference),
                seg_training(copy.deepcopy(reference), numerics, images, masks),
                inference(copy.deepcopy(reference), numerics, images, argmax=True),
                train_flops, infer_flops,
            ))  # fmt: skip
    return contenders


class Cycle(Dataset):
    """A long dataset cycling over a fixed pool of images (no decoding cost)."""

    def __init__(self, pool: Tensor, length: int) -> None:
        self.pool, self.length = pool, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        return self.pool[index % len(self.pool)]


def gan_stepper(sizes: Sizes, numerics: Numerics, pool: Tensor, batch: int) -> LightningStepper:
    """Our GANModule in a Lightning Trainer on batches of ``batch``, paused after each batch."""
    from gan.module import GANModule

    torch.manual_seed(0)
    module = GANModule(nz=100, ngf=sizes.gan_width, ndf=sizes.gan_width, channels=3,
                       image_size=sizes.gan_image, channels_last=numerics.channels_last,
                       num_sample_images=0, fid_every_n_epochs=0)  # fmt: skip
    loader = DataLoader(Cycle(pool, batch * 100_000), batch_size=batch)

    def fit(callback: Any) -> None:
        trainer = cpu_trainer(".", numerics.lightning_precision, max_epochs=1,
                              num_sanity_val_steps=0, callbacks=[callback])  # fmt: skip
        trainer.fit(module, train_dataloaders=loader)

    return LightningStepper(fit, unit="batch")


def gan_contenders(sizes: Sizes, bf16: str, steppers: list[LightningStepper]) -> list[Contender]:
    """The classic recipe and our GANModule in every numerics (started steppers go to
    ``steppers``, to be closed by the caller)."""
    from gan.models import Discriminator, Generator

    generator = torch.Generator().manual_seed(0)
    shape = (sizes.gan_batch * 4, 3, sizes.gan_image, sizes.gan_image)
    pool = torch.rand(shape, generator=generator) * 2 - 1
    noise = torch.randn(sizes.gan_batch, 100, generator=generator)
    width, image = sizes.gan_width, sizes.gan_image

    def classic() -> ClassicDCGAN:
        return ClassicDCGAN.create(ngf=width, ndf=width, nc=3)

    def ours() -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        return Generator(100, width, 3, image), Discriminator(width, 3, image)

    # FLOPs counted on the classic recipe: the same layers as ours.
    train_flops = count_flops(lambda: classic().train_step(pool[: sizes.gan_batch]))
    infer_flops = count_flops(lambda: ours()[0].eval()(noise))
    runs = [(CLASSIC_GAN, n) for n in numerics_for(False, bf16)]
    contenders = []
    for model, numerics in runs + [(OURS_GAN, n) for n in numerics_for(True, bf16)]:
        slow_bf16 = numerics == BF16_CL and not cpu_has_native_bf16()
        batch = min(sizes.gan_batch, sizes.gan_bf16_batch) if slow_bf16 else sizes.gan_batch
        if model == CLASSIC_GAN:
            networks = (gan := classic()).generator, gan.discriminator
            train = classic_training(gan, numerics, pool[:batch].clone())
            inputs = noise[:batch].view(-1, 100, 1, 1)
        else:
            networks, inputs = ours(), noise[:batch]
            log(f"starting {model} | {numerics.name} (first batch untimed)")
            steppers.append(gan_stepper(sizes, numerics, pool, batch))
            train = steppers[-1].step
        infer = inference(copy.deepcopy(networks[0]), numerics, inputs, argmax=False)
        contenders.append(Contender(
            model, numerics, batch, parameter_count(*networks), train, infer,
            train_flops * batch / sizes.gan_batch, infer_flops * batch / sizes.gan_batch,
        ))  # fmt: skip
    return contenders


TRAIN_COLUMNS = [
    "model", "numerics", "batch", "params (M)", "images/s", "x vs BASE fp32",
    "x vs same model fp32", "median s/step", "spread", "repeats", "GFLOP/step", "GFLOP/s",
    "% fp32 peak", "% bf16 peak",
]  # fmt: skip
INFER_COLUMNS = [c for c in TRAIN_COLUMNS if c not in ("params (M)", "% bf16 peak")]


def rows_of(contenders: list[Contender], timings: dict, peaks: dict, training: bool) -> list[dict]:
    """One row per contender: images/s, step time, spread, GFLOP/s and % of the peaks."""
    rows = []
    for c in contenders:
        timing = timings[c.name]
        achieved = (c.train_flops if training else c.infer_flops) / timing.median / 1e9
        rows.append({
            "model": c.model, "numerics": c.numerics.name, "batch": c.batch,
            "params (M)": c.params / 1e6, "images/s": c.batch / timing.median,
            "median s/step": timing.median, "spread": timing.spread, "repeats": timing.repeats,
            "GFLOP/step": achieved * timing.median, "GFLOP/s": achieved,
            "% fp32 peak": 100 * achieved / peaks["float32"],
            "% bf16 peak": 100 * achieved / peaks["bfloat16"] if c.numerics == BF16_CL else None,
        })  # fmt: skip
    for row in rows:
        same = next(r for r in rows if r["model"] == row["model"] and r["numerics"] == "fp32")
        row["x vs same model fp32"] = row["images/s"] / same["images/s"]
    return rows


def fastest(rows: list[dict], model: str) -> dict:
    """The row of ``model`` at its fastest numerics."""
    return max((row for row in rows if row["model"] == model), key=lambda row: row["images/s"])


def findings_of(rows: list[dict], part: Part, what: str, peaks: dict[str, float]) -> list[str]:
    """Which numerics is fastest for ours, its efficiency, and ours against the others."""
    ours = fastest(rows, part.ours)
    speedups = ", ".join(f"{r['numerics']} {r['x vs same model fp32']:.2f}x" for r in rows
                         if r["model"] == part.ours and r["numerics"] != "fp32")  # fmt: skip
    lines = [f"{part.ours} {part.prefix}{what}: vs fp32, {speedups} -> fastest numerics: "
             f"{ours['numerics']} ({ours['images/s']:.3g} images/s)."]  # fmt: skip
    if what == "training":
        achieved = ours["GFLOP/s"]
        lines.append(
            f"{part.what} training efficiency at its fastest numerics ({ours['numerics']}): "
            f"{achieved:.1f} GFLOP/s = {100 * achieved / peaks['float32']:.0f}% of the float32 "
            f"matmul peak ({peaks['float32']:.1f}) and {100 * achieved / peaks['bfloat16']:.0f}% "
            f"of the bf16 matmul peak ({peaks['bfloat16']:.2f}); issue target >= "
            f"{part.efficiency_target:.0f}% of the bf16 peak."
        )
    for other in dict.fromkeys(row["model"] for row in rows if row["model"] != part.ours):
        best = fastest(rows, other) if other != CLASSIC_GAN else None
        if best is None:  # the classic recipe is float32 by definition
            target = " (target >= 1.5x)." if what == "training" else "."
            lines.append(
                f"DCGAN {what}: ours at its fastest numerics ({ours['numerics']}) is "
                f"{ours[part.ratio_column]:.2f}x the classic float32 recipe{target}"
            )
            continue
        lines.append(
            f"Segmentation {what}, each at its fastest numerics: ours {ours['images/s']:.3g} "
            f"images/s ({ours['numerics']}) vs {other} {best['images/s']:.3g} "
            f"({best['numerics']}): {ours['images/s'] / best['images/s']:.2f}x."
        )
    return lines


@dataclass(frozen=True)
class Part:
    """One comparison: whose figures are ours, which model the ratios are against, the prose."""

    label: str  # "Segmentation", "DCGAN": table titles
    what: str  # "FCN-8s", "DCGAN": the efficiency finding's subject
    prefix: str  # of the numerics finding: "" or "DCGAN "
    ours: str
    baseline: str
    dims: str  # the table titles' sizes: a format string of ``Sizes`` fields
    units: tuple[str, str]  # "training", "inference"
    notes: tuple[str, str]
    efficiency_target: float
    train_budget_factor: float = 1.0

    @property
    def ratio_column(self) -> str:
        return f"x vs {'ours' if self.baseline == self.ours else 'classic'} fp32"


SEG = Part(
    "Segmentation", "FCN-8s", "", OURS_FCN, OURS_FCN,
    "{seg_image}x{seg_image}, batch {seg_batch}, {seg_classes} classes", ("training", "inference"),
    ("Same plain loop for every network (SGD-momentum, cross-entropy). GFLOP counted with "
     "torch.utils.flop_counter (2 FLOPs per multiply-add, convolutions and matmuls only). ",
     "model.eval() under torch.inference_mode(), argmax included. "),
    efficiency_target=50,
)  # fmt: skip
GAN = Part(
    "DCGAN", "DCGAN", "DCGAN ", OURS_GAN, CLASSIC_GAN,
    "{gan_image}x{gan_image}, ngf = ndf = {gan_width}, batch {gan_batch}",
    ("training", "generator inference"),
    ("Ours: GANModule.training_step inside Trainer.fit (one D and one G step, EMA update, "
     "logging), timed from the end of one batch to the end of the next. Classic: the "
     "pytorch/examples DCGAN step. FLOPs counted on the classic step (same layers). ",
     "Generator forward in eval mode under torch.inference_mode(). "),
    efficiency_target=70,
    # Few, costly contenders whose ratio is a target: more repetitions than the others.
    train_budget_factor=2.5,
)  # fmt: skip


def measure(part: Part, contenders: list[Contender], sizes: Sizes) -> tuple[list[Table], list]:
    """Time the training units of every contender, then the inference units; tables and
    findings."""
    tables, findings = [], []
    for training, unit, note in zip((True, False), part.units, part.notes, strict=True):
        log(f"{part.label} {unit}")
        steps = {c.name: c.train if training else c.infer for c in contenders}
        budget_s = sizes.budget_s * (part.train_budget_factor if training else 1.0)
        # A bf16 step on a CPU without native bf16 is so slow (10x float32) that a warm-up call is
        # noise and one timed call decides; timing it again would double the run.
        slow = {n for n in steps if BF16_CL.name in n and not cpu_has_native_bf16()}
        peak_sizes = dict(sizes.peak_sizes)
        if cpu_has_native_bf16() and sizes == FULL:
            # Native bf16 (AMX) needs larger matrices to reach its peak: 436 GFLOP/s at 512 but
            # 924 at 1024 on a 2-core Sapphire Rapids (bench.peak).
            peak_sizes["bfloat16"] = (1024,)
        timings, peaks = time_with_peak(
            steps, peak_sizes, slow, warmup=sizes.warmup, repeats=sizes.repeats,
            min_repeats=sizes.min_repeats, budget_s=budget_s,
        )  # fmt: skip
        rows = rows_of(contenders, timings, peaks, training)
        base = next(r for r in rows if r["model"] == part.baseline and r["numerics"] == "fp32")
        for row in rows:
            row[part.ratio_column] = row["images/s"] / base["images/s"]
        columns = TRAIN_COLUMNS if training else INFER_COLUMNS
        columns = [part.ratio_column if c == "x vs BASE fp32" else c for c in columns]
        note += "Matmul peak timed in the same rotation: " + ", ".join(
            f"{name} {value:.1f} GFLOP/s" for name, value in peaks.items()
        )
        title = f"{part.label} {unit}: {part.dims.format(**vars(sizes))}"
        tables.append(Table(title, columns, rows, note))
        if any(row["model"] == part.ours for row in rows):
            findings += findings_of(rows, part, unit, peaks)
    return tables, findings


def main(argv: Sequence[str] | None = None) -> Report:
    """Measure the chosen parts and write ``throughput[_part].json`` / ``.md``."""
    parser = base_parser(__doc__)
    bf16_help = "which contenders also run in bf16+channels-last (ours, all or none)"
    parser.add_argument("--bf16", choices=("ours", "all", "none"), default="ours", help=bf16_help)
    parser.add_argument("--part", choices=("all", "seg", "gan"), default="all")
    parser.add_argument(
        "--seg-models", nargs="+", choices=list(SEG_MODELS), default=list(SEG_MODELS)
    )
    args = parse(parser, argv)
    sizes = QUICK if args.quick else FULL
    name = "throughput" if args.part == "all" else f"throughput_{args.part}"
    size_settings = {k: v for k, v in vars(sizes).items() if k != "peak_sizes"}
    title = "Training and inference throughput: ours vs peers"
    extra = {"template": "throughput", "bf16": args.bf16, "part": args.part, **size_settings}
    report = Report.start(args, name, title, **extra)
    recorded = read_results("peak")
    if recorded is not None and not args.quick:
        peaks = recorded["settings"]["peak_gflops"]
        report.settings["peak_gflops_bench_peak"] = {k: round(v, 2) for k, v in peaks.items()}
    steppers: list[LightningStepper] = []
    parts = {"seg": (SEG, lambda: seg_contenders(sizes, args.bf16, args.seg_models)),
             "gan": (GAN, lambda: gan_contenders(sizes, args.bf16, steppers))}  # fmt: skip
    try:
        for key, (part, contenders) in parts.items():
            if args.part in ("all", key):
                tables, findings = measure(part, contenders(), sizes)
                report.tables, report.findings = report.tables + tables, report.findings + findings
    finally:
        for stepper in steppers:
            stepper.close()
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
