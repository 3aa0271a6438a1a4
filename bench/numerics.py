"""The numerics a benchmark contender runs in (memory format, autocast dtype) and its units of
work in them: a training step or a forward pass.

- ``fp32``: float32, contiguous (NCHW) tensors: what a plain PyTorch user gets.
- ``fp32+cl``: float32, channels-last (NHWC) memory format.
- ``bf16+cl``: channels-last plus ``torch.autocast(dtype=torch.bfloat16)``; what the design
  proposes for CPUs with native bf16 (AVX-512-BF16 / AMX) and for GPUs.

float16 is never used on CPU (emulated, orders of magnitude slower).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.dcgan_classic import ClassicDCGAN
from seg.losses import IGNORE_INDEX


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


def inference(model: nn.Module, numerics: Numerics, inputs: Tensor, argmax: bool) -> Callable:
    """One forward pass in evaluation mode without autograd (``argmax`` over classes)."""
    model = numerics.prepare_module(model).eval()
    inputs = numerics.prepare_input(inputs)

    def step() -> None:
        with torch.inference_mode(), numerics.autocast():
            out = model(inputs)
            if argmax:
                out.argmax(1)

    return step


def seg_training(model: nn.Module, numerics: Numerics, images: Tensor, masks: Tensor) -> Callable:
    """One SGD-momentum step of ``model`` on (images (N, 3, H, W), masks (N, H, W))."""
    model = numerics.prepare_module(model).train()
    images = numerics.prepare_input(images)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with numerics.autocast():
            logits = model(images)
        F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX).backward()
        optimizer.step()

    return step


def classic_training(gan: ClassicDCGAN, numerics: Numerics, real: Tensor) -> Callable:
    """The classic recipe's training step (only fp32 is the classic recipe itself)."""
    numerics.prepare_module(gan.generator), numerics.prepare_module(gan.discriminator)
    real = numerics.prepare_input(real)

    def step() -> None:
        with numerics.autocast():
            gan.train_step(real)

    return step
