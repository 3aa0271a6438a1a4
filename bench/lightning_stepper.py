"""Run a Lightning ``Trainer.fit`` one batch (or one epoch) at a time, so that it can alternate
with other contenders in ``bench.harness.time_alternating``.

The fit runs in a background thread; a callback pauses it at the end of every unit (batch or
epoch) until ``step()`` is called. While paused, the fit thread does nothing, so the other
contenders run alone. A timed unit spans from the end of the previous unit to the end of this
one and so includes everything the loop does in between (the rest of the previous unit's hooks,
logging, fetching and augmenting the next batch, the optimiser step, ...), each exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

import lightning.pytorch as pl

Unit = Literal["batch", "epoch"]


class _StepperStoppedError(Exception):
    """Raised in the fit thread's callback to end the fit when the benchmark is done."""


class _TurnTaking(pl.Callback):
    def __init__(self, stepper: LightningStepper) -> None:
        self.stepper = stepper

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.stepper.unit == "batch":
            self.stepper._pause(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stepper.unit == "epoch":
            self.stepper._pause(trainer)


class LightningStepper:
    """Drive ``fit(callback)`` in a thread, one unit per ``step()`` call.

    Args:
        fit: starts the training, e.g. ``lambda cb: Trainer(callbacks=[cb], ...).fit(model, dm)``;
            it must add the given callback to its Trainer and run at least as many units as
            will be requested (plus the first, which is the warm-up done in the constructor).
        unit: ``"batch"`` or ``"epoch"``.

    The constructor returns after the first unit (untimed warm-up: set-up, first batch).
    ``close()`` ends the fit (the trainer stops at the next pause point).
    """

    def __init__(self, fit: Callable[[pl.Callback], object], unit: Unit = "batch") -> None:
        if unit not in ("batch", "epoch"):
            raise ValueError(f"unit must be 'batch' or 'epoch', got {unit!r}")
        self.unit = unit
        self.units_done = 0
        self._turn = threading.Semaphore(0)
        self._paused = threading.Semaphore(0)
        self._stopping = False
        self._finished = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fit,), daemon=True)
        self._thread.start()
        self._wait_for_pause()

    def _run(self, fit: Callable[[pl.Callback], object]) -> None:
        try:
            fit(_TurnTaking(self))
        except _StepperStoppedError:
            pass
        except BaseException as error:  # handed to the main thread by _wait_for_pause
            self._error = error
        finally:
            self._finished = True
            self._paused.release()

    def _pause(self, trainer: pl.Trainer) -> None:
        self.units_done += 1
        self._paused.release()
        self._turn.acquire()
        if self._stopping:
            raise _StepperStoppedError

    def _wait_for_pause(self) -> None:
        self._paused.acquire()
        if self._error is not None:
            raise RuntimeError("the Lightning fit failed") from self._error
        if self._finished and not self._stopping:
            raise RuntimeError(
                f"the Lightning fit ended after {self.units_done} {self.unit}(es); "
                "give it more steps/epochs than the benchmark requests"
            )

    def step(self) -> None:
        """Let the fit run one more unit and wait until it has."""
        self._turn.release()
        self._wait_for_pause()

    def close(self, timeout: float = 60.0) -> None:
        """Stop the fit and wait for its thread."""
        if self._finished:
            return
        self._stopping = True
        self._turn.release()
        self._thread.join(timeout)
