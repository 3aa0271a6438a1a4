"""The helpers of folder inference's decoding processes and writing threads: how many of each,
and how they give way to the network.

The network is the part that must never wait. Decoding and writing run at a lower scheduling
priority (a higher nice value, Linux), so that on a machine whose cores the network keeps busy
they run in its pauses instead of pre-empting its threads, where one pre-empted thread holds up
all the others of a parallel operator. Decoding processes ignore SIGINT and SIGTERM: the main
process decides when to stop, and finishes the outputs in flight first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Literal

#: how much lower than the network's the priority of decoding and writing is (nice increment).
PIPELINE_NICENESS = 5

Count = int | Literal["auto"]


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pipeline_workers(
    num_workers: Count,
    writer_threads: Count,
    engine_threads: int,
    processes_per_machine: int = 1,
) -> tuple[int, int]:
    """(decoding processes, writing threads): the numbers given, and for ``"auto"`` the cores of
    this process's share of the machine (``processes_per_machine`` ranks share it) that the
    engine leaves (``engine_threads`` of them: the CPU threads of an engine on the CPU, one
    for an accelerator's), split between the two; at least one each."""
    share = max(1, available_cores() // max(1, processes_per_machine))
    spare = max(0, share - engine_threads)
    decoders = max(1, (spare + 1) // 2) if num_workers == "auto" else int(num_workers)
    writers = max(1, spare - decoders) if writer_threads == "auto" else int(writer_threads)
    if decoders < 0 or writers < 1:
        raise ValueError(
            f"need num_workers >= 0 and writer_threads >= 1, got {num_workers} and {writer_threads}"
        )
    return decoders, writers


def parse_count(text: str) -> Count:
    """An argparse type: ``"auto"`` or a whole number >= 0."""
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        import argparse

        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 0, got {text!r}")
    return value


def lower_thread_priority(niceness: int | None = None) -> None:
    """Raise the calling thread's nice value by ``niceness`` (default ``PIPELINE_NICENESS``;
    Linux, where the nice value is per thread; elsewhere nothing is changed)."""
    niceness = PIPELINE_NICENESS if niceness is None else niceness
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))


def decoding_worker_init(worker_id: int) -> None:
    """``worker_init_fn`` of the decoding processes: lower priority, and signals left to the main
    process (which stops them when it is done)."""
    lower_thread_priority()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
