"""What matrix-multiply rate does this CPU reach in float32 and bfloat16 (GFLOP/s)?

Large square matmuls, one per timed repetition, the dtypes alternating; a dtype's peak is the best
median over its sizes, the yardstick of the training steps' GFLOP/s in ``bench.throughput_gan``.
float16 is absent: on CPUs it is emulated and orders of magnitude slower.

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


def matmul_step(size: int, dtype: torch.dtype) -> Callable[[], torch.Tensor]:
    """A callable computing one ``size x size`` matmul in ``dtype`` into a preallocated output."""
    generator = torch.Generator().manual_seed(0)
    left = torch.randn(size, size, generator=generator).to(dtype)
    right = torch.randn(size, size, generator=generator).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    return lambda: torch.mm(left, right, out=out)


def matmul_contenders(sizes: dict[str, Sequence[int]], prefix: str = "") -> dict[str, Callable]:
    """``"<prefix><dtype> <size>"`` -> one matmul, for every dtype and size."""
    return {
        f"{prefix}{dtype} {size}": matmul_step(size, DTYPES[dtype])
        for dtype, dtype_sizes in sizes.items()
        for size in dtype_sizes
    }


def gflops(name: str, seconds: float) -> tuple[str, int, float]:
    """(dtype, size, GFLOP/s) of the ``matmul_contenders`` matmul ``name`` taking ``seconds``."""
    dtype, size = name.split()[-2:]
    return dtype, int(size), 2.0 * int(size) ** 3 / seconds / 1e9


def peaks_of(timings: dict[str, Timing]) -> dict[str, float]:
    """The best median GFLOP/s per dtype of timed ``matmul_contenders``."""
    peaks: dict[str, float] = {}
    for dtype, _, value in (gflops(name, timing.median) for name, timing in timings.items()):
        peaks[dtype] = max(peaks.get(dtype, 0.0), value)
    return peaks


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
    return timings, peaks_of({name: timings.pop(name) for name in peak})


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the matmuls and write ``peak.json`` / ``peak.md``."""
    args = parse(base_parser(__doc__), argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    report = Report.start(args, "peak", "Matmul peak of this CPU", sizes=sizes)
    timings = time_alternating(
        matmul_contenders(sizes),
        repeats=2 if args.quick else 5,
        budget_s=1.0 if args.quick else 20.0,
    )
    rows = []
    for name, t in timings.items():
        dtype, size, median = gflops(name, t.median)
        figures = [median, gflops(name, min(t.seconds))[2], t.median, t.spread, t.repeats]
        rows.append(dict(zip(COLUMNS, [dtype, size, *figures], strict=True)))
    note = "2 * n^3 FLOPs per n x n matmul; torch.mm into a preallocated output."
    report.tables.append(Table("Square matmul throughput", COLUMNS, rows, note))
    report.settings["peak_gflops"] = peaks = peaks_of(timings)
    report.values = {**peaks, "ratio": peaks["bfloat16"] / peaks["float32"]}
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
