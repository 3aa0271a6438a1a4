"""Shared benchmark helpers: machine description, alternating timing, ratio tables, result files.

Every benchmark in ``bench/`` measures its contenders side by side in one process, alternating one
repetition of each (A B C A B C ...), so that a change in the machine's load hits all contenders
alike; it reports medians with their spread and ratios against a named baseline, and writes the
figures with the machine, the command line and the load average to
``bench/results/<name>.json`` and ``bench/results/<name>.md`` (each written atomically).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.io import atomic_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")


# ---------------------------------------------------------------------------------------------
# Machine and command
# ---------------------------------------------------------------------------------------------


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the OS does not report them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Describe the machine and software the figures were measured on."""
    flags = (_cpuinfo_field("flags") or "").split()
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = os.cpu_count()
    return {
        "cpu_model": _cpuinfo_field("model name") or platform.processor() or "unknown",
        "cpu_flags": [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _package_version("torchvision"),
        "lightning": _package_version("lightning"),
        "segmentation_models_pytorch": _package_version("segmentation-models-pytorch"),
        "cuda_available": torch.cuda.is_available(),
    }


def command_line() -> str:
    """The command that is running, as a user would type it (``python -m bench.x --flag``)."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    return shlex.join(["python", *argv[1:]])


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------
# Command-line options shared by every benchmark
# ---------------------------------------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--quick``, ``--threads`` and ``--results-dir``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and one repetition: a smoke run"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch intra-op threads (default: 2)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where <name>.json and <name>.md are written (default: bench/results)",
    )
    return parser


def configure_threads(threads: int) -> None:
    """Fix the intra-op and inter-op thread counts so that every contender gets the same."""
    torch.set_num_threads(threads)
    # set_num_interop_threads raises once inter-op work has started in this process.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall-clock seconds of the measured repetitions of one contender."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def repeats(self) -> int:
        return len(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        """Lower quartile (the minimum with fewer than four samples)."""
        return _quantile(self.seconds, 0.25)

    @property
    def high(self) -> float:
        """Upper quartile (the maximum with fewer than four samples)."""
        return _quantile(self.seconds, 0.75)

    @property
    def spread(self) -> float:
        """(upper quartile - lower quartile) / median: 0.05 means the middle half lies within 5%."""
        return (self.high - self.low) / self.median if self.median > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "q25_s": self.low,
            "q75_s": self.high,
            "min_s": min(self.seconds),
            "max_s": max(self.seconds),
            "spread": self.spread,
            "repeats": self.repeats,
        }


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) < 4:
        return ordered[0] if q < 0.5 else ordered[-1]
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def time_alternating(
    contenders: Mapping[str, Callable[[], object]],
    *,
    warmup: int | Mapping[str, int] = 1,
    repeats: int = 5,
    min_repeats: int | Mapping[str, int] = 2,
    budget_s: float | None = None,
    followers: Collection[str] = (),
    log: Callable[[str], None] | None = None,
) -> dict[str, Timing]:
    """Time each contender's callable, one call of each in turn (A B C A B C ...).

    Args:
        contenders: name -> a callable doing one unit of work (e.g. one training step).
        warmup: untimed calls of each contender first (also alternating); a mapping gives each
            contender its own count (e.g. none for one so slow that a warm-up call is noise).
        repeats: at most this many timed calls of each contender.
        min_repeats: at least this many timed calls of each contender (a mapping: per contender).
        budget_s: a contender leaves the rotation once it has ``min_repeats`` samples and its timed
            calls add up to more than this; so a very slow contender cannot dominate the run. The
            others keep alternating among themselves.
        followers: contenders that only accompany the others (e.g. a reference measurement
            that must see the same machine load): the rotation ends when only they are left.
        log: called with a progress line after each timed call (e.g. ``print`` to stderr).

    Returns:
        name -> ``Timing`` with the timed calls' wall-clock seconds in the order they ran.
    """
    minimums = (
        min_repeats if isinstance(min_repeats, Mapping) else dict.fromkeys(contenders, min_repeats)
    )
    if any(not 1 <= minimums.get(name, 1) <= repeats for name in contenders):
        raise ValueError(f"need 1 <= min_repeats <= repeats, got {min_repeats=} {repeats=}")
    timings = {name: Timing(name) for name in contenders}
    warmups = warmup if isinstance(warmup, Mapping) else dict.fromkeys(contenders, warmup)
    for round_index in range(max(warmups.values(), default=0)):
        for name, function in contenders.items():
            if round_index < warmups.get(name, 0):
                function()
    active = list(contenders)
    for round_index in range(repeats):
        for name in list(active):
            start = time.perf_counter()
            contenders[name]()
            elapsed = time.perf_counter() - start
            timing = timings[name]
            timing.seconds.append(elapsed)
            if log is not None:
                log(f"  round {round_index + 1}/{repeats} {name}: {elapsed:.3f} s")
            if (
                budget_s is not None
                and timing.repeats >= minimums.get(name, 1)
                and sum(timing.seconds) > budget_s
            ):
                active.remove(name)
        if all(name in followers for name in active):
            break
    return timings


def log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Tables and result files
# ---------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A titled table: ``rows`` are dicts keyed by ``columns`` (missing keys print as blank)."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    note: str = ""


def add_ratio_column(
    rows: list[dict[str, Any]],
    *,
    value: str,
    baseline: str,
    key: str = "name",
    column: str | None = None,
    higher_is_better: bool = True,
) -> str:
    """Add ``value / value(baseline row)`` to every row; returns the new column's name.

    With ``higher_is_better=False`` (e.g. seconds) the ratio is inverted, so that > 1 always means
    "faster than the baseline".
    """
    column = column or f"x vs {baseline}"
    base_rows = [row for row in rows if row.get(key) == baseline]
    if len(base_rows) != 1:
        raise ValueError(f"baseline {baseline!r} must name exactly one row by {key!r}")
    base = base_rows[0][value]
    for row in rows:
        current = row.get(value)
        if current is None or not base:
            row[column] = None
        else:
            row[column] = current / base if higher_is_better else base / current
    return column


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        if magnitude >= 0.1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """Render a ``Table`` as GitHub-flavoured Markdown."""
    lines = [f"### {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_format_cell(row.get(c)) for c in table.columns) + " |")
    return "\n".join(lines)


@dataclass
class BenchmarkReport:
    """Everything a benchmark writes: figures plus where, when and how they were measured."""

    name: str
    title: str
    settings: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)
    command: str = field(default_factory=command_line)
    started: str = field(default_factory=utc_now)
    load_average_start: list[float] | None = field(default_factory=load_average)
    finished: str | None = None
    load_average_end: list[float] | None = None

    def finish(self) -> None:
        self.finished = utc_now()
        self.load_average_end = load_average()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        machine = self.machine
        header = [
            f"# {self.title}",
            "",
            f"Command: `{self.command}`  ",
            f"Date (UTC): {self.started} to {self.finished}  ",
            f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, "
            f"CPU flags {', '.join(machine['cpu_flags']) or 'none of interest'}, "
            f"torch CPU capability {machine['torch_cpu_capability']}, "
            f"{machine['torch_threads']} torch threads  ",
            f"Software: Python {machine['python']}, torch {machine['torch']}, torchvision "
            f"{machine['torchvision']}, lightning {machine['lightning']}, "
            f"segmentation-models-pytorch {machine['segmentation_models_pytorch']}  ",
            f"Load average (1/5/15 min) at start {self.load_average_start}, "
            f"at end {self.load_average_end}  ",
            "Settings: " + ", ".join(f"{key}={value}" for key, value in self.settings.items()),
            "",
            "Timings alternate between contenders (A B C A B C ...) after a warm-up; figures are "
            "medians, spread = (q75 - q25) / median of the per-repetition times.",
        ]
        parts = ["\n".join(header)]
        if self.findings:
            parts.append("## Findings\n\n" + "\n".join(f"- {line}" for line in self.findings))
        parts += [markdown_table(table) for table in self.tables]
        return "\n\n".join(parts) + "\n"

    def write(self, results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
        """Write ``<results_dir>/<name>.json`` and ``.md`` atomically; returns both paths."""
        if self.finished is None:
            self.finish()
        results_dir = Path(results_dir)
        json_path = results_dir / f"{self.name}.json"
        markdown_path = results_dir / f"{self.name}.md"
        with atomic_path(json_path) as temporary:
            temporary.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        with atomic_path(markdown_path) as temporary:
            temporary.write_text(self.to_markdown())
        return json_path, markdown_path

    def publish(self, results_dir: Path = RESULTS_DIR) -> None:
        """Write the result files, print the Markdown to stdout and say where they went."""
        json_path, markdown_path = self.write(results_dir)
        print(self.to_markdown())
        log_stderr(f"wrote {json_path} and {markdown_path}")


def read_results(name: str, results_dir: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """The JSON written by an earlier run of benchmark ``name``, or ``None`` if there is none."""
    path = Path(results_dir) / f"{name}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())
