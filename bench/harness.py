"""The harness every benchmark imports: the options and folders of a run, defined here, and the
names of its parts, each a module of one purpose, so that a benchmark imports from one place:

- ``bench.timing``: alternating timing (``Timing``, ``time_alternating``);
- ``bench.report``: the one report type (``Report``, ``Table``) and its JSON files;
- ``bench.machine``: where, when and how a run was measured;
- ``bench.progress``: progress lines on stderr (``log``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.machine import command_line, machine_info
from bench.progress import log
from bench.report import RESULTS_DIR, TEMPLATES_DIR, Report, Table, read_json, write_json
from bench.timing import Timing, time_alternating

__all__ = [
    "CAMVID", "REPO", "RESULTS_DIR", "RUNS_DIR", "TEMPLATES_DIR", "Report", "Table", "Timing",
    "base_parser", "command_line", "log", "machine_info", "parse", "read_json", "run_root",
    "shown_path", "slug", "time_alternating", "work_dir", "write_json",
]  # fmt: skip

REPO = Path(__file__).resolve().parent.parent
RUNS_DIR = REPO / "bench" / "runs"
#: CamVid as the project's machines keep it, beside the repository
CAMVID = REPO.parent / "shared" / "data" / "camvid"


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


def run_root(name: str, quick: bool) -> Path:
    """Where benchmark ``name`` keeps the runs it resumes from (``<name>_quick`` for smoke
    runs), under ``bench/runs``."""
    return RUNS_DIR / (f"{name}_quick" if quick else name)


def shown_path(path: Path) -> Path:
    """``path`` relative to the repository when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def slug(name: str) -> str:
    """``name`` as part of a file name: lower case, runs of other characters as one ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
