"""Where, when and how a run was measured: the machine and software, the command, the time and
the load average, as every report's header records them."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")


def _cpuinfo_field(name: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the OS does not report them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Describe the machine and software the figures were measured on."""
    flags = (_cpuinfo_field("flags") or "").split()
    return {
        "cpu_model": _cpuinfo_field("model name") or platform.processor() or "unknown",
        # CPUs of one name differ (an "AMD EPYC" may or may not compute bf16 natively)
        "cpu_vendor": _cpuinfo_field("vendor_id"),
        "cpu_family": _cpuinfo_field("cpu family"),
        "cpu_model_number": _cpuinfo_field("model"),
        "cpu_flags": [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "lightning": _version("lightning"),
        "segmentation_models_pytorch": _version("segmentation-models-pytorch"),
        "cuda_available": torch.cuda.is_available(),
        "accelerator": _accelerator(),
    }


def _accelerator() -> str:
    """The GPU a run could use (name, memory, CUDA version), or "none"."""
    if not torch.cuda.is_available():
        return "none"
    properties = torch.cuda.get_device_properties(0)
    return (
        f"{properties.name} ({properties.total_memory / 2**30:.0f} GiB, CUDA "
        f"{torch.version.cuda}, {torch.cuda.device_count()} device(s))"
    )


def command_line() -> str:
    """The command that is running, as a user would type it (``python -m bench.x --flag``)."""
    return shlex.join(["python", *getattr(sys, "orig_argv", sys.argv)[1:]])


def utc_now() -> str:
    """The time now in UTC, ISO 8601, whole seconds."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
