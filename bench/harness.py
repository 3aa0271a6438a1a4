"""What every benchmark shares: options, the machine record, alternating timing and one report type.

Each benchmark measures its contenders side by side in one process, alternating one repetition of
each (A B C A B C ...) so that a change in the machine's load hits all of them alike, and writes
``<results-dir>/<name>.json`` and ``<name>.md`` (atomically) with the machine, the command line,
the date and the load average. The Markdown body comes from ``bench/templates/<name>.md``: the
benchmark's prose, with ``{findings}``, ``{tables}`` and the report's values as placeholders, so
that explanatory sections survive a rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from upsample.core.io import atomic_path

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
RUNS_DIR = REPO / "bench" / "runs"
TEMPLATES_DIR = REPO / "bench" / "templates"
#: CamVid as the project's machines keep it, beside the repository
CAMVID = REPO.parent / "shared" / "data" / "camvid"
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")


# --------------------------------------------------------------------------- machine and command


def _cpuinfo_field(name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
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
    return {
        "cpu_model": _cpuinfo_field("model name") or platform.processor() or "unknown",
        # CPUs of one name differ (an "AMD EPYC" may or may not compute bf16 natively)
        "cpu_vendor": _cpuinfo_field("vendor_id"),
        "cpu_family": _cpuinfo_field("cpu family"),
        "cpu_model_number": _cpuinfo_field("model"),
        "cpu_flags": [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "lightning": _version("lightning"),
        "segmentation_models_pytorch": _version("segmentation-models-pytorch"),
        "cuda_available": torch.cuda.is_available(),
        "accelerator": _accelerator(),
    }


def _accelerator() -> str:
    """The GPU a run could use (name, memory, CUDA version), or "none"."""
    if not torch.cuda.is_available():
        return "none"
    properties = torch.cuda.get_device_properties(0)
    return (
        f"{properties.name} ({properties.total_memory / 2**30:.0f} GiB, CUDA "
        f"{torch.version.cuda}, {torch.cuda.device_count()} device(s))"
    )


def command_line() -> str:
    """The command that is running, as a user would type it (``python -m bench.x --flag``)."""
    return shlex.join(["python", *getattr(sys, "orig_argv", sys.argv)[1:]])


def utc_now() -> str:
    """The time now in UTC, ISO 8601, whole seconds."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def log(message: str) -> None:
    """A progress line on stderr (stdout gets the report)."""
    print(message, file=sys.stderr, flush=True)


def shown_path(path: Path) -> Path:
    """``path`` relative to the repository when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


# --------------------------------------------------------------------------- options


def base_parser(doc: str | None, threads: int = 2) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--quick``, ``--threads`` and
    ``--results-dir``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--threads", type=int, default=threads, help="torch intra-op threads")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where <name>.json and <name>.md are written (default: bench/results)",
    )
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` and give torch the requested threads (one inter-op thread). A ``--quick``
    smoke run writes its results to ``bench/runs/quick`` unless told where, so that it never
    overwrites the committed ones."""
    args = parser.parse_args(argv)
    if args.quick and Path(args.results_dir).resolve() == RESULTS_DIR:
        args.results_dir = RUNS_DIR / "quick"
    torch.set_num_threads(args.threads)
    # set_num_interop_threads raises once inter-op work has started in this process.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return args


def work_dir(args: argparse.Namespace, name: str) -> Path:
    """A scratch folder of this benchmark: under ``bench/runs`` for the committed results, beside
    the results otherwise; emptied."""
    base = RUNS_DIR if Path(args.results_dir).resolve() == RESULTS_DIR else args.results_dir
    folder = Path(base) / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# --------------------------------------------------------------------------- timing


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

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (minimum or maximum with fewer than four samples)."""
        ordered = sorted(self.seconds)
        if len(ordered) < 4:
            return ordered[0] if q < 0.5 else ordered[-1]
        return statistics.quantiles(ordered, n=4, method="inclusive")[round(q * 4) - 1]

    @property
    def spread(self) -> float:
        """(upper quartile - lower quartile) / median: 0.05 means the middle half lies within 5%."""
        spread = self.quantile(0.75) - self.quantile(0.25)
        return spread / self.median if self.median > 0 else float("nan")


def time_alternating(
    contenders: Mapping[str, Callable[[], object]],
    *,
    warmup: int | Mapping[str, int] = 1,
    repeats: int = 5,
    min_repeats: int | Mapping[str, int] = 2,
    budget_s: float | None = None,
    followers: Collection[str] = (),
    cpu: dict[str, Timing] | None = None,
) -> dict[str, Timing]:
    """Time each contender's callable, one call of each in turn (A B C A B C ...).

    ``warmup`` untimed calls of each come first (a mapping: per contender). A contender leaves the
    rotation once it has ``min_repeats`` samples and its timed calls add up to more than
    ``budget_s``; the rotation ends when only ``followers`` (contenders that only accompany the
    others, such as a reference measurement) are left, or after ``repeats`` rounds. ``cpu``,
    when given, receives each timed call's CPU seconds too (``time.process_time``: all threads
    of this process), by contender.
    """

    def per_name(value: int | Mapping[str, int]) -> dict[str, int]:
        return dict(value) if isinstance(value, Mapping) else dict.fromkeys(contenders, value)

    warmups, minimums = per_name(warmup), per_name(min_repeats)
    if any(not 1 <= minimums.get(name, 1) <= repeats for name in contenders):
        raise ValueError(f"need 1 <= min_repeats <= repeats, got {min_repeats=} {repeats=}")
    for round_index in range(max(warmups.values(), default=0)):
        for name, function in contenders.items():
            if round_index < warmups.get(name, 0):
                function()
    timings = {name: Timing(name) for name in contenders}
    if cpu is not None:
        cpu.update({name: Timing(name) for name in contenders})
    active = list(contenders)
    for round_index in range(repeats):
        for name in list(active):
            start, start_cpu = time.perf_counter(), time.process_time()
            contenders[name]()
            timing = timings[name]
            timing.seconds.append(time.perf_counter() - start)
            if cpu is not None:
                cpu[name].seconds.append(time.process_time() - start_cpu)
            log(f"  round {round_index + 1}/{repeats} {name}: {timing.seconds[-1]:.3f} s")
            spent = budget_s is not None and sum(timing.seconds) > budget_s
            if spent and timing.repeats >= minimums.get(name, 1):
                active.remove(name)
        if all(name in followers for name in active):
            break
    return timings


# --------------------------------------------------------------------------- tables and reports


@dataclass
class Table:
    """A titled table: ``rows`` are dicts keyed by ``columns`` (missing keys print as blank)."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    note: str = ""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        for bound, spec in ((100, ",.0f"), (10, ".1f"), (0.1, ".2f")):
            if abs(value) >= bound:
                return format(value, spec)
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """A ``Table`` as GitHub-flavoured Markdown under a level-3 title."""
    lines = [f"### {table.title}", ""] + ([table.note, ""] if table.note else [])
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += [
        "| " + " | ".join(_cell(row.get(c)) for c in table.columns) + " |" for row in table.rows
    ]
    return "\n".join(lines)


def _bullets(markdown: str, title: str) -> list[str]:
    """The bullet lines of the section ``## <title>`` of ``markdown``, without the dashes."""
    section = re.search(rf"^## {title}\n\n((?:- .*(?:\n|$))+)", markdown, re.MULTILINE)
    return [line[2:] for line in section.group(1).splitlines()] if section else []


@dataclass
class Report:
    """The figures of one benchmark run and where, when and how they were measured.

    The Markdown body is the template ``bench/templates/<template or name>.md``, whose prose may
    hold ``{findings}`` (the ``findings`` as bullets), ``{tables}`` and any key of ``settings``
    and ``values``; the JSON's ``method`` and ``findings`` are the bullets of the filled-in
    template's sections of those names, and ``data`` is written to the JSON beside them.
    """

    name: str
    title: str
    settings: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine_info)
    command: str = field(default_factory=command_line)
    started: str = field(default_factory=utc_now)
    load_average_start: list[float] | None = field(default_factory=load_average)
    finished: str | None = None
    load_average_end: list[float] | None = None

    @classmethod
    def start(
        cls, args: argparse.Namespace, name: str, title: str, template: str = "", **settings: Any
    ) -> Report:
        """A report whose settings begin with the run's ``threads`` and ``quick``."""
        settings = {"threads": args.threads, "quick": args.quick, **settings}
        return cls(name, title, settings, template=template)

    def header(self) -> str:
        """Title, command, dates, machine, load and settings (``templates/header.md``)."""
        flags = ", ".join(self.machine["cpu_flags"]) or "none of interest"
        settings = ", ".join(f"{key}={value}" for key, value in self.settings.items())
        return (
            (TEMPLATES_DIR / "header.md")
            .read_text()
            .format_map({**vars(self), **self.machine, "flags": flags, "settings": settings})
        )

    def body(self) -> str:
        """The benchmark's template filled in (its findings and tables where it says)."""
        path = TEMPLATES_DIR / f"{self.template or self.name}.md"
        template = path.read_text() if path.is_file() else "## Findings\n\n{findings}\n\n{tables}\n"
        return template.format_map(
            {
                **self.settings,
                **self.values,
                "findings": "\n".join(f"- {line}" for line in self.findings),
                "tables": "\n\n".join(markdown_table(table) for table in self.tables),
            }
        )

    def to_markdown(self) -> str:
        """The ``<name>.md`` file: the header, then the filled-in template."""
        text = self.header().strip() + "\n\n" + self.body().strip() + "\n"
        return re.sub(r"\n{3,}", "\n\n", text)

    def to_json(self) -> dict[str, Any]:
        """The ``<name>.json`` file: where, when and how, settings, findings, tables, data."""
        body = self.body()
        return {
            "name": self.name,
            "title": self.title,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "load_average_start": self.load_average_start,
            "load_average_end": self.load_average_end,
            "machine": self.machine,
            "settings": self.settings,
            "method": _bullets(body, "Method"),
            "findings": _bullets(body, "Findings"),
            "tables": [vars(table) for table in self.tables],
            **self.data,
        }

    def write(self, results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
        """Write ``<results_dir>/<name>.json`` and ``.md`` atomically, print the Markdown and
        say where the files went."""
        self.finished, self.load_average_end = utc_now(), load_average()
        json_path, markdown_path = (Path(results_dir) / f"{self.name}{s}" for s in (".json", ".md"))
        write_json(json_path, self.to_json())
        with atomic_path(markdown_path) as temporary:
            temporary.write_text(self.to_markdown())
        print(self.to_markdown())
        log(f"wrote {json_path} and {markdown_path}")
        return json_path, markdown_path


def write_json(path: Path, content: Any) -> None:
    """Write ``content`` as indented JSON, atomically, making the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(content, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or ``None`` when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None


def read_results(name: str, results_dir: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """The JSON written by an earlier run of benchmark ``name``, or ``None`` if there is none."""
    return read_json(Path(results_dir) / f"{name}.json")
