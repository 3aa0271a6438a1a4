"""Stopping folder inference on SIGTERM or Ctrl+C without losing work.

A scheduler sends SIGTERM and, after a grace period, SIGKILL; a user presses Ctrl+C. On the first
signal folder inference reads no further image, writes the outputs already computed (each file
atomically), reports what it did and exits with status 128 + signal; running the same command
again finishes the rest. A second signal ends the process at once, as the signal would have
without this handler. Nothing is lost either way: an output that exists is complete.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

_HANDLED = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Set by SIGTERM / SIGINT while ``handling_signals`` is active: ``signum`` and ``name`` of
    the first signal received (None until then)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        """Whether the run must stop before its next image."""
        return self.signum is not None

    @property
    def name(self) -> str | None:
        """``"SIGTERM"``, ``"SIGINT"`` or None."""
        return signal.Signals(self.signum).name if self.signum is not None else None

    def request(self, signum: int) -> None:
        """Ask the run to stop as if ``signum`` had been received (another rank's signal)."""
        if self.signum is None:
            self.signum = signum

    @property
    def exit_status(self) -> int | None:
        """128 + the signal's number once one was received."""
        return 128 + self.signum if self.signum is not None else None

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # the second signal: end at once, as without a handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after the images in progress are "
            "written; run the same command again to finish (a second signal stops at once)",
            file=sys.stderr,
        )


@contextlib.contextmanager
def handling_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """Route SIGTERM and SIGINT to ``stop`` while the block runs (from the main thread; elsewhere
    signals keep their handlers), then restore the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.getsignal(signum) for signum in _HANDLED}
    for signum in _HANDLED:
        signal.signal(signum, stop._on_signal)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
