"""What a folder prediction did, for people (``report``) and machines (``summary.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upsample.core.io import atomic_path


@dataclass
class PredictionSummary:
    """The outcome of one prediction (one process, or every rank together after ``merge``).

    ``written``: inputs whose outputs this process wrote (``written_elsewhere``: how many other
    processes wrote; ``num_written`` counts both); ``skipped``: (input, reason) of the inputs
    that failed (unreadable, or their outputs could not be written), which are reported and
    skipped; ``already_complete``: inputs whose outputs a previous run had completed, left as
    they were; ``total``: the inputs of the run's share; ``wall_time_s``: seconds from listing
    the inputs to the last file written; ``stopped_by``: the signal that stopped the run early.
    """

    written: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written_elsewhere: int = 0
    already_complete: int = 0
    total: int = 0
    wall_time_s: float = 0.0
    stopped_by: str | None = None

    @property
    def ok(self) -> bool:
        """True when no input failed."""
        return not self.skipped

    @property
    def num_written(self) -> int:
        """Inputs whose outputs the run wrote, on every process."""
        return len(self.written) + self.written_elsewhere

    @property
    def not_done(self) -> int:
        """Inputs that neither have outputs nor failed (a run stopped early)."""
        done = self.num_written + len(self.skipped) + self.already_complete
        return max(0, self.total - done)

    @property
    def images_per_s(self) -> float:
        """Images written per second of the run."""
        return self.num_written / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def report(self) -> str:
        """The counts, then one line per failed input with the reason."""
        line = f"{self.num_written} image(s) written, {len(self.skipped)} skipped"
        if self.already_complete:
            line += (
                f", {self.already_complete} already complete (left as they were; "
                "--overwrite redoes them)"
            )
        if self.stopped_by:
            line += f"; stopped by {self.stopped_by} with {self.not_done} not done: run the same "
            line += "command again to finish"
        lines = [line] + [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The summary as ``summary.json`` holds it."""
        return {
            "images": self.total,
            "written": self.num_written,
            "already_complete": self.already_complete,
            "failed": len(self.skipped),
            "not_done": self.not_done,
            "failures": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "wall_time_s": round(self.wall_time_s, 3),
            "images_per_s": round(self.images_per_s, 3),
            "stopped_by": self.stopped_by,
        }

    def write_json(self, path: str | Path, **extra: Any) -> Path:
        """Write ``to_json()`` (and ``extra`` entries) to ``path`` atomically."""
        path = Path(path)
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps({**self.to_json(), **extra}, indent=2) + "\n")
        return path
