"""Alternating timing: contenders measured side by side in one process, one call of each in turn
(A B C A B C ...), so that a change in the machine's load hits all of them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.progress import log


@dataclass
class Timing:
    """Wall-clock seconds of the measured repetitions of one contender."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def repeats(self) -> int:
        return len(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (minimum or maximum with fewer than four samples)."""
        ordered = sorted(self.seconds)
        if len(ordered) < 4:
            return ordered[0] if q < 0.5 else ordered[-1]
        return statistics.quantiles(ordered, n=4, method="inclusive")[round(q * 4) - 1]

    @property
    def spread(self) -> float:
        """(upper quartile - lower quartile) / median: 0.05 means the middle half lies within 5%."""
        spread = self.quantile(0.75) - self.quantile(0.25)
        return spread / self.median if self.median > 0 else float("nan")


def time_alternating(
    contenders: Mapping[str, Callable[[], object]],
    *,
    warmup: int = 1,
    repeats: int = 5,
    min_repeats: int = 2,
    budget_s: float | None = None,
) -> dict[str, Timing]:
    """Time each contender's callable, one call of each in turn (A B C A B C ...), after
    ``warmup`` untimed calls of each; ``repeats`` rounds. A contender leaves the rotation once it
    has ``min_repeats`` samples and its timed calls add up to more than ``budget_s``."""
    if not 1 <= min_repeats <= repeats:
        raise ValueError(f"need 1 <= min_repeats <= repeats, got {min_repeats=} {repeats=}")
    for _ in range(warmup):
        for function in contenders.values():
            function()
    timings = {name: Timing(name) for name in contenders}
    active = list(contenders)
    for round_index in range(repeats):
        for name in list(active):
            start = time.perf_counter()
            contenders[name]()
            timing = timings[name]
            timing.seconds.append(time.perf_counter() - start)
            log(f"  round {round_index + 1}/{repeats} {name}: {timing.seconds[-1]:.3f} s")
            spent = budget_s is not None and sum(timing.seconds) > budget_s
            if spent and timing.repeats >= min_repeats:
                active.remove(name)
    return timings
