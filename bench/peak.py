"""Measured matrix-multiply peak of this CPU in float32 and bfloat16 (GFLOP/s).

Large square matmuls, one per timed repetition, float32 and bfloat16 alternating. The peak of a
dtype is the best median over the sizes tried; it is the yardstick for the achieved GFLOP/s of the
training steps in ``bench.throughput``. float16 is deliberately absent: on CPUs it is emulated and
orders of magnitude slower, so no toolkit default may use it.

Usage: ``python -m bench.peak [--quick] [--threads 2]``
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from bench.harness import (
    BenchmarkReport,
    Table,
    base_parser,
    configure_threads,
    log_stderr,
    time_alternating,
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# bfloat16 has no native matmul on CPUs without AVX-512-BF16/AMX, where large sizes take minutes.
FULL_SIZES = {"float32": (1024, 2048, 3072), "bfloat16": (512, 1024)}
QUICK_SIZES = {"float32": (128,), "bfloat16": (64,)}


def matmul_step(size: int, dtype: torch.dtype, seed: int = 0) -> Callable[[], torch.Tensor]:
    """A callable computing one ``size x size`` matmul in ``dtype`` (2 * size**3 FLOPs)."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.randn(size, size, generator=generator).to(dtype)
    right = torch.randn(size, size, generator=generator).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    return lambda: torch.mm(left, right, out=out)


def measure_peak(
    sizes: dict[str, Sequence[int]],
    *,
    warmup: int = 1,
    repeats: int = 5,
    budget_s: float = 20.0,
    log: Callable[[str], None] | None = log_stderr,
) -> tuple[dict[str, float], list[dict]]:
    """Time the matmuls alternating and return (peak GFLOP/s per dtype name, table rows)."""
    contenders = {}
    flops = {}
    for dtype_name, dtype_sizes in sizes.items():
        for size in dtype_sizes:
            name = f"{dtype_name} {size}"
            contenders[name] = matmul_step(size, DTYPES[dtype_name])
            flops[name] = (dtype_name, size, 2.0 * size**3)
    timings = time_alternating(
        contenders,
        warmup=warmup,
        repeats=repeats,
        min_repeats=min(2, repeats),
        budget_s=budget_s,
        log=log,
    )
    rows = []
    peaks: dict[str, float] = {}
    for name, timing in timings.items():
        dtype_name, size, count = flops[name]
        gflops = count / timing.median / 1e9
        peaks[dtype_name] = max(peaks.get(dtype_name, 0.0), gflops)
        rows.append(
            {
                "dtype": dtype_name,
                "size": size,
                "GFLOP/s (median)": gflops,
                "GFLOP/s (best)": count / min(timing.seconds) / 1e9,
                "median s": timing.median,
                "spread": timing.spread,
                "repeats": timing.repeats,
            }
        )
    return peaks, rows


def main(argv: Sequence[str] | None = None) -> BenchmarkReport:
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    report = BenchmarkReport(
        name="peak",
        title="Matmul peak of this CPU",
        settings={"threads": args.threads, "quick": args.quick, "sizes": sizes},
    )
    peaks, rows = measure_peak(
        sizes, warmup=1, repeats=2 if args.quick else 5, budget_s=1.0 if args.quick else 20.0
    )
    report.tables.append(
        Table(
            "Square matmul throughput",
            [
                "dtype",
                "size",
                "GFLOP/s (median)",
                "GFLOP/s (best)",
                "median s",
                "spread",
                "repeats",
            ],
            rows,
            note="2 * n^3 FLOPs per n x n matmul; torch.mm into a preallocated output.",
        )
    )
    report.settings["peak_gflops"] = peaks
    ratio = peaks["bfloat16"] / peaks["float32"]
    report.findings.append(
        "Peak: "
        + ", ".join(f"{name} {value:.1f} GFLOP/s" for name, value in peaks.items())
        + f" (bfloat16 / float32 = {ratio:.3g})."
    )
    report.publish(args.results_dir)
    return report


if __name__ == "__main__":
    main()
