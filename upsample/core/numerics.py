"""Choose the fastest numerics that keep quality on the hardware at hand.

bf16 mixed precision is the default where the hardware computes bf16 natively: CUDA GPUs that
support it, and CPUs with AVX-512-BF16 or AMX-BF16 instructions (Intel Cooper Lake, Sapphire
Rapids and later; AMD Zen 4 and later). Elsewhere bf16 is emulated and 10-80x slower than float32
(measured in ``bench/results``), so the default is float32. A precision given in a config or on
the command line always wins.

``UPSAMPLE_CPU_BF16=0`` makes this machine's CPU count as one without native bf16 (and ``=1`` as one
with it), whatever its flags say: the test suite runs its precision-sensitive tests that way so
that a bf16 machine also checks what an AVX2-only machine would choose.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

AUTO = "auto"
BF16_MIXED = "bf16-mixed"
FLOAT32 = "32-true"
# /proc/cpuinfo flag names of native bf16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: environment variable that overrides the detection of native bf16 on this machine's CPU
CPU_BF16_ENV = "UPSAMPLE_CPU_BF16"
_CPU_BF16_CHOICES = {"0": False, "1": True, "auto": None, "": None}


@functools.cache
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux reports them; empty where that file does not exist."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_bf16_override() -> bool | None:
    """``$UPSAMPLE_CPU_BF16`` as a choice: ``"0"`` -> False, ``"1"`` -> True, unset or ``"auto"``
    -> None (detect from the CPU's flags)."""
    value = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if value not in _CPU_BF16_CHOICES:
        raise ValueError(f"${CPU_BF16_ENV} must be 0, 1 or auto, got {value!r}")
    return _CPU_BF16_CHOICES[value]


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU executes bf16 matrix arithmetic natively (AVX-512-BF16 or AMX-BF16).

    Args:
        flags: CPU flags to decide from; by default this machine's, where ``$UPSAMPLE_CPU_BF16``
            (``0`` or ``1``) overrides what the flags say.
    """
    if flags is None:
        override = cpu_bf16_override()
        if override is not None:
            return override
        flags = cpu_flags()
    return bool(flags & BF16_CPU_FLAGS)


def auto_precision(accelerator: str | None = AUTO, flags: frozenset[str] | None = None) -> str:
    """The Lightning ``precision`` the toolkit uses when none is given.

    Args:
        accelerator: the trainer's accelerator name (``"auto"``, ``"cpu"``, ``"gpu"``, ...).
        flags: CPU flags to decide from (default: this machine's).

    Returns:
        ``"bf16-mixed"`` on a bf16-capable CUDA device or a CPU with native bf16, else
        ``"32-true"`` (also for MPS and other accelerators).
    """
    if accelerator in (None, AUTO):
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return BF16_MIXED if native else FLOAT32
    if accelerator == "cpu":
        return BF16_MIXED if cpu_has_native_bf16(flags) else FLOAT32
    return FLOAT32


def resolve_precision(precision: str | int | None, accelerator: str | None = AUTO) -> str | int:
    """``precision`` as given, or :func:`auto_precision` when it is ``None`` or ``"auto"``."""
    if precision is None or precision == AUTO:
        return auto_precision(accelerator)
    return precision


def autocast_dtype(precision: str, device_type: str = "cpu") -> torch.dtype | None:
    """The autocast dtype of a toolkit inference precision on ``device_type``: ``"bf16"`` ->
    bfloat16, ``"32"`` -> None (no autocast); ``"auto"`` picks bf16 where that device computes
    it natively."""
    if precision == AUTO:
        precision = "bf16" if auto_precision(device_type) == BF16_MIXED else "32"
    if precision == "bf16":
        return torch.bfloat16
    if precision == "32":
        return None
    raise ValueError(f"precision must be 'auto', '32' or 'bf16', got {precision!r}")
