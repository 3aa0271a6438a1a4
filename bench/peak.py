"""Measured matrix-multiply peak of this CPU in float32 and bfloat16 (GFLOP/s).

Large square matmuls, one per timed repetition, float32 and bfloat16 alternating. The peak of a
dtype is the best median over the sizes tried; it is the yardstick for the achieved GFLOP/s of the
training steps in ``bench.throughput``. float16 is deliberately absent: on CPUs it is emulated and
orders of magnitude slower, so no toolkit default may use it.

Usage: ``python -m bench.peak [--quick] [--threads 2]``
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from bench.harness import Report, Table, Timing, base_parser, parse, time_alternating

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# bfloat16 has no native matmul on CPUs without AVX-512-BF16/AMX, where large sizes take minutes.
FULL_SIZES = {"float32": (1024, 2048, 3072), "bfloat16": (512, 1024)}
QUICK_SIZES = {"float32": (128,), "bfloat16": (64,)}
COLUMNS = ["dtype", "size", "GFLOP/s (median)", "GFLOP/s (best)", "median s", "spread", "repeats"]


def matmul_step(size: int, dtype: torch.dtype, seed: int = 0) -> Callable[[], torch.Tensor]:
    """A callable computing one ``size x size`` matmul in ``dtype`` (2 * size**3 FLOPs)."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.randn(size, size, generator=generator).to(dtype)
    right = torch.randn(size, size, generator=generator).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    return lambda: torch.mm(left, right, out=out)


def matmul_contenders(sizes: dict[str, Sequence[int]], prefix: str = "") -> dict[str, Callable]:
    """``"<prefix><dtype> <size>"`` -> one matmul, for every dtype and size."""
    return {f"{prefix}{dtype} {size}": matmul_step(size, DTYPES[dtype])
            for dtype, dtype_sizes in sizes.items() for size in dtype_sizes}  # fmt: skip


def gflops(name: str, timing: Timing) -> tuple[str, int, float]:
    """(dtype, size, GFLOP/s at the median) of a ``matmul_contenders`` timing."""
    dtype, size = name.split()[-2:]
    return dtype, int(size), 2.0 * int(size) ** 3 / timing.median / 1e9


def time_with_peak(
    steps: dict[str, Callable[[], object]],
    peak_sizes: dict[str, Sequence[int]],
    slow: set[str],
    warmup: int,
    min_repeats: int,
    **options: Any,
) -> tuple[dict[str, Timing], dict[str, float]]:
    """Time ``steps`` alternating, with peak matmuls in the same rotation, so that the peak and
    the steps see the same machine load; ``slow`` steps get no warm-up and one repetition at
    least. Returns (timings of ``steps``, peak GFLOP/s per dtype)."""
    peak = matmul_contenders(peak_sizes, "[peak] ")
    every = [*steps, *peak]
    timings = time_alternating(
        {**steps, **peak},
        warmup={name: 0 if name in slow else warmup for name in every},
        min_repeats={name: 1 if name in slow else min_repeats for name in every},
        followers=set(peak),
        **options,
    )
    peaks = {}
    for name in peak:
        dtype, _, value = gflops(name, timings.pop(name))
        peaks[dtype] = max(peaks.get(dtype, 0.0), value)
    return timings, peaks


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the matmuls and write ``peak.json`` / ``peak.md``."""
    args = parse(base_parser(__doc__), argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    report = Report.start(args, "peak", "Matmul peak of this CPU", sizes=sizes)
    timings = time_alternating(matmul_contenders(sizes), repeats=2 if args.quick else 5,
                               budget_s=1.0 if args.quick else 20.0)  # fmt: skip
    rows, peaks = [], dict.fromkeys(DTYPES, 0.0)
    for name, timing in timings.items():
        dtype, size, median = gflops(name, timing)
        peaks[dtype] = max(peaks[dtype], median)
        best = 2.0 * size**3 / min(timing.seconds) / 1e9
        rows.append(dict(zip(COLUMNS, [dtype, size, median, best, timing.median, timing.spread,
                                       timing.repeats], strict=True)))  # fmt: skip
    note = "2 * n^3 FLOPs per n x n matmul; torch.mm into a preallocated output."
    report.tables.append(Table("Square matmul throughput", COLUMNS, rows, note))
    report.settings["peak_gflops"] = peaks
    report.values = {**peaks, "ratio": peaks["bfloat16"] / peaks["float32"]}
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
