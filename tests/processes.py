"""Run multi-process (DDP) commands in tests under a hard timeout that kills every rank.

``subprocess.run(timeout=...)`` kills only the launching process; a hung DDP worker would outlive
it and keep CI waiting. These helpers start the command in its own session and kill the whole
process group on timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from upsample.core.runs import RUN_VERSION_ENV

REPO = Path(__file__).resolve().parents[1]


def ddp_env(**overrides: str) -> dict[str, str]:
    """The environment of a test command: this checkout importable, offline, one thread, no
    inherited run version; W&B offline without a key, as a user without an account has it."""
    # WANDB_SERVICE: a W&B service that an in-process test started would otherwise be shared,
    # and a resumed run's id found "in use" there.
    dropped = (RUN_VERSION_ENV, "WANDB_API_KEY", "WANDB_SERVICE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}",
        NO_ALBUMENTATIONS_UPDATE="1",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class Finished:
    """A finished command: exit status, combined output, seconds it ran."""

    returncode: int
    output: str
    seconds: float


def start(command: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``command`` in a new session, its output (both streams) going to ``log``."""
    stream = open(log, "w")  # noqa: SIM115 - closed by the OS when the child exits
    return subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdout=stream,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL every process of the command's session (all ranks, data-loader workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait(process: subprocess.Popen, log: Path, timeout: float, started: float) -> Finished:
    """Wait for ``process``; on timeout kill its whole group and fail with its output."""
    try:
        process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise AssertionError(
            f"timed out after {timeout:.0f} s (all ranks killed):\n{log.read_text()[-6000:]}"
        ) from None
    return Finished(process.returncode, log.read_text(), time.monotonic() - started)


def run(
    command: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> Finished:
    """Run ``command`` to the end under a hard timeout (every rank killed when it passes)."""
    log = cwd / f"output-{time.monotonic_ns()}.log"
    started = time.monotonic()
    process = start(command, cwd, env or ddp_env(), log)
    try:
        return wait(process, log, timeout, started)
    finally:
        if process.poll() is None:
            kill_group(process)


def python_command(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def session_pids(process: subprocess.Popen) -> list[int]:
    """Pids of the live processes in the command's session (Linux ``/proc``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and os.getsid(int(entry.name)) == process.pid:
                pids.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return pids
