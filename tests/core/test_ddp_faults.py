"""Two-rank DDP jobs that go wrong end within a bounded time, say why, and resume.

A rank that stops making progress (``ToyModule(stall_at_step=...)`` sleeps on one rank while the
other waits in the gradient all-reduce), a SIGTERM to such a job, a kill -9 of one rank, and a
SIGTERM to a healthy job. Every command runs under a hard timeout that kills all its processes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests import processes
from upsample.core.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

# 32 samples, batch 8, two ranks: 2 steps per epoch; epoch 0 ends at step 2, epoch 1 at step 4.
STALL_STEP = 5


def _toy_fit(root: Path, *extra: str) -> list[str]:
    return processes.python_command(
        "tests.core.toy",
        "fit",
        f"--trainer.default_root_dir={root / 'runs'}",
        "--trainer.accelerator=cpu",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.max_epochs=4",
        "--trainer.callbacks+=ModelCheckpoint",
        "--trainer.callbacks.save_last=true",
        *extra,
    )


def _last_checkpoint(root: Path) -> Path:
    return root / "runs" / "toy" / "version_0" / "checkpoints" / "last.ckpt"


def _start_stalled(root: Path, *extra: str) -> tuple:
    """Start a job whose rank 1 stalls at STALL_STEP; return (process, log, start time, pid of
    the stalled rank) once it has stalled."""
    marker = root / "stalled.pid"
    log = root / "stalled.log"
    started = time.monotonic()
    process = processes.start(
        _toy_fit(
            root,
            f"--model.stall_at_step={STALL_STEP}",
            f"--model.stall_marker={marker}",
            *extra,
        ),
        root,
        processes.ddp_env(),
        log,
    )
    while not marker.exists():
        if process.poll() is not None or time.monotonic() - started > 120:
            processes.kill_group(process)
            raise AssertionError(f"the job did not reach the stall:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    time.sleep(1.0)  # rank 0 is now waiting in the all-reduce of step STALL_STEP
    return process, log, started, int(marker.read_text())


def _resume_and_finish(root: Path) -> None:
    """``--ckpt_path last`` continues from the checkpoint on disk and trains to the end."""
    before = load_checkpoint(_last_checkpoint(root))["global_step"]
    finished = processes.run(_toy_fit(root, "--ckpt_path=last"), root, timeout=240)
    assert finished.returncode == 0, finished.output[-4000:]
    assert load_checkpoint(_last_checkpoint(root))["global_step"] == 8 > before
    assert not (root / "runs" / "toy" / "version_1").exists()


def _assert_all_ranks_gone(process, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while processes.session_pids(process) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes.session_pids(process), "a rank outlived the job"


def test_collective_timeout_fails_with_rank_and_collective(tmp_path: Path) -> None:
    # The timeout also bounds the start-up rendezvous, where a loaded machine may keep the
    # second rank importing for many seconds: not much lower than this.
    process, log, started, _ = _start_stalled(tmp_path, "--collective_timeout=30")
    finished = processes.wait(process, log, timeout=240, started=started)
    assert finished.returncode != 0
    assert "rank 0 of 2 gave up waiting in" in finished.output, finished.output[-4000:]
    assert "all-reduce" in finished.output or "all_reduce" in finished.output
    _assert_all_ranks_gone(process)
    # The checkpoint of epoch 1 (step 4) is intact, and the run resumes from it.
    assert load_checkpoint(_last_checkpoint(tmp_path))["global_step"] == 4
    _resume_and_finish(tmp_path)


def test_sigterm_ends_a_stuck_job_within_the_grace_period(tmp_path: Path) -> None:
    process, log, started, _ = _start_stalled(tmp_path, "--shutdown_grace=3")
    signalled = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)  # as Kubernetes does: the main process only
    finished = processes.wait(process, log, timeout=60, started=started)
    assert time.monotonic() - signalled < 30, finished.output[-3000:]
    assert finished.returncode == 128 + signal.SIGTERM, finished.output[-4000:]
    assert "exiting now without an interrupt checkpoint" in finished.output
    _assert_all_ranks_gone(process)
    assert load_checkpoint(_last_checkpoint(tmp_path))["global_step"] == 4
    _resume_and_finish(tmp_path)


def test_kill_of_one_rank_ends_the_other_with_a_clear_error(tmp_path: Path) -> None:
    process, log, started, stalled_pid = _start_stalled(tmp_path)
    os.kill(stalled_pid, signal.SIGKILL)
    finished = processes.wait(process, log, timeout=60, started=started)
    assert finished.returncode != 0
    assert (
        "gave up waiting in" in finished.output or "terminated with code -9" in finished.output
    ), finished.output[-4000:]
    _assert_all_ranks_gone(process)
    _resume_and_finish(tmp_path)


def test_sigterm_to_a_healthy_job_stops_all_ranks_after_the_same_step(tmp_path: Path) -> None:
    # Rank 1 alone receives the signal during step 5; the ranks agree on it after that step.
    finished = processes.run(
        _toy_fit(tmp_path, "--model.sigterm_at_step=5", "--model.sigterm_rank=1"),
        tmp_path,
        timeout=120,
    )
    assert finished.returncode == 128 + signal.SIGTERM, finished.output[-4000:]
    assert "last.ckpt written at step 6" in finished.output
    assert "resume with --ckpt_path last" in finished.output
    assert load_checkpoint(_last_checkpoint(tmp_path))["global_step"] == 6
    _resume_and_finish(tmp_path)
