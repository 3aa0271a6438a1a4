"""The engines of folder inference: what runs the network on a batch of images.

An engine maps float images (N, C, H, W) in [0, 1] on its ``device`` to float32 logits
(N, K, H, W). ``TorchEngine`` runs a PyTorch module (autocast, channels-last); the ONNX Runtime
engine is ``seg.deploy.OnnxSegmenter``. Tiling, flip TTA and the writers are the same for both.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from upsample.core.folding import fold_batch_norms
from upsample.core.numerics import autocast_dtype

Precision = Literal["auto", "32", "bf16"]


@runtime_checkable
class Engine(Protocol):
    """What folder inference runs: float images (N, C, H, W) in [0, 1] on ``device`` -> float32
    logits (N, K, H, W). ``precision`` ("32" or "bf16") and ``min_input_size`` describe it."""

    device: torch.device
    precision: str
    min_input_size: int

    def __call__(self, images: Tensor) -> Tensor: ...


class TorchEngine:
    """A PyTorch network as an engine: evaluation mode on ``device`` ("auto": CUDA when
    available), bf16 autocast for ``precision`` "bf16" ("auto": where the device computes bf16
    natively, ``upsample.core.numerics``), channels-last inputs when ``channels_last``.

    With ``fold_batch_norm`` (the default) the engine runs a copy of the network whose batch
    norms are folded into the convolutions before them (``upsample.core.folding``): the same
    logits up to float rounding, about a fifth faster for the EfficientNet-Lite0 FCN on a CPU.
    The network given (and a checkpoint saved from it) is not changed then; without folding it
    is put in evaluation mode and moved to the device.
    """

    def __init__(
        self,
        network: nn.Module,
        device: str = "auto",
        precision: Precision = "auto",
        channels_last: bool = True,
        fold_batch_norm: bool = True,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self._autocast_dtype = autocast_dtype(precision, self.device.type)
        self.precision = "32" if self._autocast_dtype is None else "bf16"
        runs = fold_batch_norms(network) if fold_batch_norm else network
        self.network = runs.eval().to(self.device)
        self.channels_last = channels_last
        if channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.min_input_size = int(getattr(network, "min_input_size", 1))
        self.in_channels = getattr(network, "in_channels", None)

    def __call__(self, images: Tensor) -> Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self._autocast_dtype is None:
            return self.network(images).float()
        with torch.autocast(self.device.type, dtype=self._autocast_dtype):
            return self.network(images).float()
