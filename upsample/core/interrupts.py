"""SIGTERM and Ctrl+C during training: stop together, write ``last.ckpt``, and always exit.

A scheduler (SLURM, Kubernetes) sends SIGTERM and then waits a grace period before SIGKILL; a user
presses Ctrl+C. :class:`GracefulShutdown` makes either end the job within seconds:

1. The first signal marks a stop as pending (on whichever rank received it). After the current
   training batch every rank learns of it through one small all-reduce that all ranks call at the
   same point, so all ranks stop after the same step. Rank 0 then writes ``last.ckpt`` (no
   collective: a rank that stopped elsewhere cannot block it) and the job exits with status
   128 + signal number (143 for SIGTERM, 130 for Ctrl+C).
2. If the job cannot get there, because a rank hangs in a collective or a long validation is
   running, a second signal, or the grace period (``--shutdown_grace``, 15 s by default) after the
   first, ends the process at once with a message. No checkpoint is written then; those on disk
   were written atomically, so the last good one stays intact.
3. A DDP worker whose launching process is gone (killed, or exited on a signal) exits too,
   instead of waiting in a collective forever.
4. In ``validate``, ``test`` and ``predict`` (no training state to save) each rank stops before
   its next batch, with the same exit status; the grace period applies as well.

Lightning's own SIGTERM handler is replaced while a stage runs: it broadcasts from inside the
signal handler, a collective that the other ranks do not call at that moment, so a signalled job
hung. The main thread cannot run Python signal handlers while it is blocked in a collective, so the
signals are also read by a watcher thread through ``signal.set_wakeup_fd``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from upsample.core.callbacks import (
    last_checkpoint_target,
    newest_checkpoint,
    record_last_checkpoint,
)
from upsample.core.distributed import collective_failure_message, is_collective_failure

DEFAULT_GRACE_S = 15.0
_HANDLED = (signal.SIGTERM, signal.SIGINT)
# Signals closer together than this are one event (a terminal sends Ctrl+C to every process of
# the job, a scheduler may signal each rank and the launcher too).
_SAME_EVENT_S = 1.0
_PARENT_POLL_S = 0.5

# The signal that stopped the last run (read by the CLI to choose the exit status).
stopped_by_signal: int | None = None


def signal_name(signum: int) -> str:
    return "Ctrl+C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


def _reset_wakeup_fd_in_child() -> None:
    # Forked data-loader workers inherit the wakeup socket; their signals are not the job's.
    with contextlib.suppress(ValueError):  # not the main thread
        signal.set_wakeup_fd(-1)


_fork_hook_registered = False


#: under DDP on accelerators, batches between two agreements on a stop (a fraction of a second)
DECISION_EVERY_N_BATCHES = 8


class GracefulShutdown(Callback):
    """Stop all ranks together on SIGTERM / SIGINT, write ``last.ckpt``, and never hang.

    Args:
        grace_s: seconds after the first signal before the process exits regardless.
        watch_parent: in a DDP worker launched by another rank's process, exit when that process
            is gone.
    """

    def __init__(self, grace_s: float = DEFAULT_GRACE_S, watch_parent: bool = True) -> None:
        if grace_s <= 0:
            raise ValueError(f"--shutdown_grace must be positive, got {grace_s}")
        self.grace_s = grace_s
        self.watch_parent = watch_parent
        self._pending: int | None = None
        self._first_signal_at: float | None = None
        self._stopped = threading.Event()
        self._previous_handlers: dict[int, Any] = {}
        self._reader: socket.socket | None = None
        self._writer: socket.socket | None = None
        self._previous_wakeup_fd = -1
        self._rank_text = "rank 0"
        self._trainer: pl.Trainer | None = None
        self._agree_on_stop = True

    # ------------------------------------------------------------------ installing the handlers
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning registered its own handlers (it does so after on_fit_start).
        self._install(trainer, agree_on_stop=True)

    def _on_evaluation_start(self, trainer: pl.Trainer) -> None:
        # validate / test / predict on their own: ranks may run different numbers of batches, so
        # there is no point where they could agree; each stops at its next batch.
        if trainer.state.fn != TrainerFn.FITTING and self._writer is None:
            self._install(trainer, agree_on_stop=False)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._on_evaluation_start(trainer)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._on_evaluation_start(trainer)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._on_evaluation_start(trainer)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    def _install(self, trainer: pl.Trainer, agree_on_stop: bool) -> None:
        global stopped_by_signal
        stopped_by_signal = None
        self._agree_on_stop = agree_on_stop
        self._pending, self._first_signal_at = None, None
        self._stopped.clear()
        self._rank_text = f"rank {trainer.global_rank}"
        self._trainer = trainer
        if threading.current_thread() is not threading.main_thread():
            return
        global _fork_hook_registered
        if not _fork_hook_registered:
            os.register_at_fork(after_in_child=_reset_wakeup_fd_in_child)
            _fork_hook_registered = True
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(
            self._writer.fileno(), warn_on_full_buffer=False
        )
        for signum in _HANDLED:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        threading.Thread(target=self._watch_signals, name="signal-watcher", daemon=True).start()
        parent = os.getppid()
        if self.watch_parent and os.environ.get("LOCAL_RANK", "0") != "0":
            threading.Thread(
                target=self._watch_parent, args=(parent,), name="parent-watcher", daemon=True
            ).start()

    def _restore(self) -> None:
        self._stopped.set()
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous_handlers.items():
            # Only where ours is still installed: Lightning's teardown may have restored its
            # predecessors already.
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers = {}
        if self._writer is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._writer.close()
            self._writer = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    # ------------------------------------------------------------------ receiving signals
    def _on_signal(self, signum: int, frame: Any) -> None:
        # Main thread, between two Python instructions: only mark the stop as pending. The
        # watcher thread counts signals and enforces the grace period.
        if self._pending is None:
            self._pending = signum
        if not self._agree_on_stop and self._trainer is not None:
            global stopped_by_signal
            stopped_by_signal = signum
            # Lightning's evaluation loop raises SIGTERMException before the next batch.
            self._trainer._signal_connector.received_sigterm = True

    def _watch_signals(self) -> None:
        reader = self._reader
        assert reader is not None
        while not self._stopped.is_set():
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                reader.close()
                return
            for signum in data:
                if signum in _HANDLED:
                    self._signal_received(signum)

    def _signal_received(self, signum: int) -> None:
        now = time.monotonic()
        if self._first_signal_at is None:
            self._first_signal_at = now
            if self._pending is None:
                self._pending = signum
            self._say(
                f"{signal_name(signum)} received: stopping after the current batch and writing "
                f"last.ckpt (at most {self.grace_s:g} s; send it again to stop at once)"
            )
            timer = threading.Timer(self.grace_s, self._grace_expired, args=(signum,))
            timer.daemon = True
            timer.start()
        elif now - self._first_signal_at > _SAME_EVENT_S:
            self._force_exit(signum, f"second {signal_name(signum)}")

    def _grace_expired(self, signum: int) -> None:
        if not self._stopped.is_set():
            self._force_exit(
                signum, f"still running {self.grace_s:g} s after {signal_name(signum)}"
            )

    def _watch_parent(self, parent: int) -> None:
        while not self._stopped.wait(_PARENT_POLL_S):
            if os.getppid() != parent:
                self._force_exit(
                    signal.SIGTERM, f"the launching process (pid {parent}) of this job is gone"
                )

    def _force_exit(self, signum: int, reason: str) -> None:
        self._say(
            f"{reason}: exiting now without an interrupt checkpoint (a rank may be stuck in a "
            f"collective); {self._checkpoint_hint()}"
        )
        sys.stderr.flush()
        os._exit(128 + int(signum))

    def _say(self, message: str, prefix: bool = True) -> None:
        # On a line of its own: a progress bar may be mid-line.
        text = f"[{self._rank_text}] {message}" if prefix else message
        print(f"\n{text}", file=sys.stderr, flush=True)

    def _checkpoint_hint(self) -> str:
        path = newest_checkpoint(self._trainer) if self._trainer is not None else ""
        return f"the last good checkpoint {path} is intact" if path else "no checkpoint yet"

    # ------------------------------------------------------------------ stopping together
    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        # Called by every rank after every batch: the one place where a stop is agreed on. Under
        # DDP on accelerators the agreement is a collective read back to the host, which waits
        # for the step: there it is made every few batches (every rank counts them alike).
        on_cpu = trainer.strategy.root_device.type == "cpu"
        every = 1 if trainer.world_size == 1 or on_cpu else DECISION_EVERY_N_BATCHES
        if (trainer.fit_loop.total_batch_idx + 1) % every:
            return
        if trainer.strategy.reduce_boolean_decision(self._pending is not None, all=False):
            global stopped_by_signal
            stopped_by_signal = self._pending or signal.SIGTERM
            # Lightning raises SIGTERMException right after this batch, on every rank alike.
            trainer._signal_connector.received_sigterm = True

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        try:
            fitting = trainer.state.fn == TrainerFn.FITTING
            if isinstance(exception, SIGTERMException | KeyboardInterrupt) and fitting:
                self._save_interrupt_checkpoint(trainer)
            elif is_collective_failure(exception):
                # Said first thing: the launcher may kill this process once a worker has died.
                message = collective_failure_message(
                    exception, trainer.global_rank, trainer.world_size
                )
                self._say(message, prefix=False)
        finally:
            self._restore()

    def _save_interrupt_checkpoint(self, trainer: pl.Trainer) -> None:
        """Rank 0 writes ``last.ckpt`` without a barrier (``trainer.save_checkpoint`` has one)."""
        target = last_checkpoint_target(trainer)
        if target is None:
            return
        path, keepers = target
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if trainer.is_global_zero:
            trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
            record_last_checkpoint(keepers, path, trainer.global_step)
            self._say(f"last.ckpt written at step {trainer.global_step}: {path}")
