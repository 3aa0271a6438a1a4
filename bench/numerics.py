"""The numerics a benchmark contender runs in: memory format and autocast dtype.

- ``fp32``: float32, contiguous (NCHW) tensors: what a plain PyTorch user gets.
- ``fp32+cl``: float32, channels-last (NHWC) memory format.
- ``bf16+cl``: channels-last plus ``torch.autocast(dtype=torch.bfloat16)``; what the design
  proposes for CPUs with native bf16 (AVX-512-BF16 / AMX) and for GPUs.

float16 is never used on CPU (emulated, orders of magnitude slower).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Numerics:
    """Memory format and autocast choice of one contender."""

    name: str
    channels_last: bool
    autocast_dtype: torch.dtype | None

    @property
    def lightning_precision(self) -> str:
        """The matching ``Trainer(precision=...)``."""
        return "bf16-mixed" if self.autocast_dtype == torch.bfloat16 else "32-true"

    def prepare_module(self, module: nn.Module) -> nn.Module:
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def prepare_input(self, images: Tensor) -> Tensor:
        if self.channels_last and images.ndim == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images.contiguous()

    @contextlib.contextmanager
    def autocast(self, device_type: str = "cpu") -> Iterator[None]:
        if self.autocast_dtype is None:
            yield
        else:
            with torch.autocast(device_type, dtype=self.autocast_dtype):
                yield


FP32 = Numerics("fp32", channels_last=False, autocast_dtype=None)
FP32_CL = Numerics("fp32+cl", channels_last=True, autocast_dtype=None)
BF16_CL = Numerics("bf16+cl", channels_last=True, autocast_dtype=torch.bfloat16)
ALL_NUMERICS = {numerics.name: numerics for numerics in (FP32, FP32_CL, BF16_CL)}
