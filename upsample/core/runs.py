"""Run directories: ``<root>/<run name>/version_<n>``, one per run, shared by every logger."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Set by the launching process so that DDP worker processes, which re-run the command line,
# agree on the run directory instead of each picking the next free version.
RUN_VERSION_ENV = "UPSAMPLE_TOOLKIT_RUN_VERSION"

_VERSION = re.compile(r"^version_(\d+)$")


def existing_versions(root: str | Path, name: str) -> list[int]:
    """Version numbers already present under ``root/name``, ascending."""
    folder = Path(root) / name
    if not folder.is_dir():
        return []
    found = (_VERSION.match(child.name) for child in folder.iterdir() if child.is_dir())
    return sorted(int(match.group(1)) for match in found if match)


def latest_resumable_version(root: str | Path, name: str) -> int | None:
    """The newest version under ``root/name`` holding ``checkpoints/last*.ckpt``, if any."""
    for version in reversed(existing_versions(root, name)):
        checkpoints = Path(root) / name / f"version_{version}" / "checkpoints"
        if any(checkpoints.glob("last*.ckpt")):
            return version
    return None


def _is_spawned_worker() -> bool:
    """True in a DDP worker that Lightning launched from this command (local rank above 0); the
    launching process itself, and later runs in the same Python process, choose afresh."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


def choose_run_version(root: str | Path, name: str, resume_last: bool) -> str:
    """Pick the run folder name (``version_<n>``) for a new or resumed run.

    A resumed run (``--ckpt_path last``) reuses the newest version that has a last checkpoint; any
    other run gets a fresh version, so two runs never write into the same folder. The choice is
    stored in the environment for DDP worker processes launched later by this process.
    """
    inherited = os.environ.get(RUN_VERSION_ENV)
    if inherited and _is_spawned_worker():
        return inherited
    resumable = latest_resumable_version(root, name) if resume_last else None
    if resumable is not None:
        version = resumable
    else:
        versions = existing_versions(root, name)
        version = versions[-1] + 1 if versions else 0
    chosen = f"version_{version}"
    (Path(root) / name / chosen).mkdir(parents=True, exist_ok=True)
    os.environ[RUN_VERSION_ENV] = chosen
    return chosen
