"""Shared pieces of the quality benchmarks: CPU-time budgets, Lightning trainers and result files.

Training budgets are CPU seconds of the training process (``time.process_time``: every thread of
the process, data loading included because loaders run with ``num_workers=0``), not wall time, so
that runs on a shared machine stay comparable however busy it is. Work that is not training
(snapshots, checkpoint writes) is timed separately and left out of the budget.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image, ImageDraw

from bench.harness import (
    RESULTS_DIR,
    Table,
    command_line,
    load_average,
    machine_info,
    markdown_table,
    utc_now,
)
from common.io import atomic_path, save_image_atomic

BUDGET_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
IMAGES_DIR = RESULTS_DIR / "images"
RUNS_DIR = Path(__file__).resolve().parent / "runs"


class CpuClock:
    """CPU seconds used by this process since ``start()``, minus the spans run under
    ``excluded()`` (e.g. writing a snapshot)."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._wall_start = 0.0
        self.excluded_s = 0.0

    def start(self) -> None:
        self._start = time.process_time()
        self._wall_start = time.perf_counter()
        self.excluded_s = 0.0

    @property
    def started(self) -> bool:
        return self._start is not None

    def used(self) -> float:
        if self._start is None:
            return 0.0
        return time.process_time() - self._start - self.excluded_s

    def wall(self) -> float:
        return time.perf_counter() - self._wall_start if self._start is not None else 0.0

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        begin = time.process_time()
        try:
            yield
        finally:
            self.excluded_s += time.process_time() - begin


@dataclass
class BudgetMark:
    """The state of a run when it crossed ``fraction`` of its CPU budget."""

    fraction: float
    cpu_s: float
    wall_s: float
    batches: int

    def to_json(self) -> dict[str, Any]:
        return {
            "fraction": self.fraction,
            "cpu_s": round(self.cpu_s, 2),
            "wall_s": round(self.wall_s, 2),
            "batches": self.batches,
        }


@dataclass
class BudgetTracker:
    """Counts batches against a CPU budget and fires marks at fractions of it.

    ``step()`` after every training batch returns True once the budget is spent; ``on_mark`` is
    called (outside the budget) when a fraction is crossed, ``on_every`` every ``every_n``
    batches. Used by :class:`CpuBudget` (Lightning) and by plain training loops alike.
    """

    budget_s: float
    fractions: Sequence[float] = BUDGET_FRACTIONS
    on_mark: Callable[[BudgetMark], None] | None = None
    every_n: int = 0
    on_every: Callable[[int], None] | None = None
    clock: CpuClock = field(default_factory=CpuClock)
    batches: int = 0
    marks: list[BudgetMark] = field(default_factory=list)

    def start(self) -> None:
        self.clock.start()
        self.batches = 0
        self.marks = []

    @property
    def fraction_used(self) -> float:
        return min(1.0, self.clock.used() / self.budget_s) if self.budget_s > 0 else 1.0

    def _fire(self, fraction: float) -> None:
        mark = BudgetMark(fraction, self.clock.used(), self.clock.wall(), self.batches)
        self.marks.append(mark)
        if self.on_mark is not None:
            with self.clock.excluded():
                self.on_mark(mark)

    def _pending(self) -> list[float]:
        done = {mark.fraction for mark in self.marks}
        return [fraction for fraction in sorted(self.fractions) if fraction not in done]

    def step(self) -> bool:
        """Count one finished batch; True when the budget is spent (all marks fired)."""
        self.batches += 1
        if self.every_n and self.on_every is not None and self.batches % self.every_n == 0:
            with self.clock.excluded():
                self.on_every(self.batches)
        used = self.clock.used()
        for fraction in self._pending():
            if used >= fraction * self.budget_s:
                self._fire(fraction)
        return used >= self.budget_s

    def finish(self) -> None:
        """Fire the marks not reached (a run that ended before its budget)."""
        for fraction in self._pending():
            self._fire(fraction)

    def summary(self) -> dict[str, Any]:
        used = self.marks[-1].cpu_s if self.marks else self.clock.used()
        wall = self.marks[-1].wall_s if self.marks else self.clock.wall()
        return {
            "budget_cpu_s": self.budget_s,
            "train_cpu_s": round(used, 2),
            "train_wall_s": round(wall, 2),
            "excluded_cpu_s": round(self.clock.excluded_s, 2),
            "batches": self.batches,
            "cpu_s_per_batch": used / self.batches if self.batches else None,
            "marks": [mark.to_json() for mark in self.marks],
        }


class CpuBudget(Callback):
    """Stops ``trainer.fit`` (``trainer.should_stop``) once the training process has used its
    CPU budget; see :class:`BudgetTracker` for the marks."""

    def __init__(self, tracker: BudgetTracker) -> None:
        self.tracker = tracker

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tracker.start()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.tracker.step():
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tracker.finish()


def budget_trainer(
    root: Path, precision: str | int, callbacks: Sequence[Callback], max_epochs: int = 100_000
) -> pl.Trainer:
    """A one-process CPU trainer that only trains: no validation, checkpoints, loggers or progress
    bar (the same for every contender), stopped by a :class:`CpuBudget` callback."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        max_epochs=max_epochs,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
        callbacks=list(callbacks),
    )


def evaluation_trainer(root: Path, precision: str | int, **overrides: Any) -> pl.Trainer:
    """A CPU trainer for ``validate``/``test`` only (``overrides``: more ``Trainer`` arguments,
    such as ``limit_test_batches``)."""
    return pl.Trainer(
        **overrides,
        accelerator="cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
    )


def forward_gflops(module: torch.nn.Module, example: torch.Tensor) -> float:
    """GFLOPs of one forward pass on ``example`` (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(example)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / 1e9


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------


def labelled_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str],
    scale: int = 2,
    gap: int = 4,
    title_height: int = 16,
) -> Image.Image:
    """Tile uint8 (H, W, 3) panels into rows under a line of column titles (white background);
    each panel is enlarged ``scale`` times with nearest-neighbour sampling."""
    height, width = rows[0][0].shape[:2]
    cell_h, cell_w = height * scale, width * scale
    columns = max(len(row) for row in rows)
    canvas = Image.new(
        "RGB",
        (columns * cell_w + (columns + 1) * gap, title_height + len(rows) * (cell_h + gap) + gap),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(column_titles):
        draw.text((gap + column * (cell_w + gap) + 2, 2), title, fill="black")
    for row_index, row in enumerate(rows):
        for column, panel in enumerate(row):
            tile = Image.fromarray(panel).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            canvas.paste(
                tile,
                (gap + column * (cell_w + gap), title_height + gap + row_index * (cell_h + gap)),
            )
    return canvas


def save_picture(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(image, path)
    return path


# ---------------------------------------------------------------------------------------------
# Result files
# ---------------------------------------------------------------------------------------------


@dataclass
class QualityReport:
    """Figures of a quality benchmark and where, when and how they were measured."""

    name: str
    title: str
    settings: dict[str, Any]
    method: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    pictures: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine_info)
    command: str = field(default_factory=command_line)
    started: str = field(default_factory=utc_now)
    load_average_start: list[float] | None = field(default_factory=load_average)
    finished: str | None = None
    load_average_end: list[float] | None = None

    def to_markdown(self) -> str:
        machine = self.machine
        header = [
            f"# {self.title}",
            "",
            f"Command: `{self.command}`  ",
            f"Date (UTC): {self.started} to {self.finished}  ",
            f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores (shared "
            f"with other work), CPU flags {', '.join(machine['cpu_flags']) or 'none of interest'}"
            f", torch CPU capability {machine['torch_cpu_capability']}  ",
            f"Software: Python {machine['python']}, torch {machine['torch']}, torchvision "
            f"{machine['torchvision']}, lightning {machine['lightning']}, "
            f"segmentation-models-pytorch {machine['segmentation_models_pytorch']}  ",
            f"Load average (1/5/15 min) at start {self.load_average_start}, "
            f"at end {self.load_average_end}  ",
            "Settings: " + ", ".join(f"{key}={value}" for key, value in self.settings.items()),
        ]
        parts = ["\n".join(header)]
        if self.method:
            parts.append("## Method\n\n" + "\n".join(f"- {line}" for line in self.method))
        if self.findings:
            parts.append("## Findings\n\n" + "\n".join(f"- {line}" for line in self.findings))
        parts += [markdown_table(table) for table in self.tables]
        if self.pictures:
            parts.append("## Pictures\n\n" + "\n\n".join(self.pictures))
        return "\n\n".join(parts) + "\n"

    def to_json(self) -> dict[str, Any]:
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
            "method": self.method,
            "findings": self.findings,
            "tables": [
                {"title": t.title, "columns": t.columns, "rows": t.rows, "note": t.note}
                for t in self.tables
            ],
            **self.data,
        }

    def write(self, results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
        """Write ``<results_dir>/<name>.json`` and ``.md`` atomically."""
        self.finished = utc_now()
        self.load_average_end = load_average()
        results_dir.mkdir(parents=True, exist_ok=True)
        json_path = results_dir / f"{self.name}.json"
        markdown_path = results_dir / f"{self.name}.md"
        with atomic_path(json_path) as temporary:
            temporary.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        with atomic_path(markdown_path) as temporary:
            temporary.write_text(self.to_markdown())
        return json_path, markdown_path


def write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(content, indent=2, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    return json.loads(path.read_text()) if path.is_file() else None
