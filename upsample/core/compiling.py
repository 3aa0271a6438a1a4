"""``torch.compile`` for the toolkit's networks (``--model.compile``, ``--model.compile_mode``).

On a GPU a training step of these networks is launch-bound: at the recipe's batch the kernels
finish faster than Python issues them. Compiling fuses them (and with ``compile_mode
reduce-overhead`` replays the step as CUDA graphs, which the fixed training crop allows). On a CPU
compiling gave no speed-up and costs 10-30 s, so the default (``compile: null``) compiles when
fitting on a CUDA device only.

A network is compiled twice, lazily, on first use: for training with static shapes (the fixed
crop, a fixed batch) in the chosen mode, and for evaluation with dynamic shapes, so that full
images of any size (validation, test) reuse one graph instead of compiling one per size. Both
wrap the same module: parameters, state dicts and checkpoints are unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn

#: ``torch.compile`` modes for training (``reduce-overhead``: CUDA graphs).
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def wants_compile(choice: bool | None, device: torch.device, fitting: bool = True) -> bool:
    """Whether to compile: ``choice`` if given, else (``None``, auto) when fitting on a CUDA
    device (a single evaluation pass rarely repays the compilation)."""
    return fitting and device.type == "cuda" if choice is None else bool(choice)


def compiled_for(module: Any, network: nn.Module) -> CompiledNetwork | None:
    """A ``CompiledNetwork`` of ``network`` when the Lightning ``module``'s ``compile`` and
    ``compile_mode`` hyperparameters ask for one where it runs now (its device; fitting or
    not), else None. Called on first use, when the device is known."""
    fitting = module._trainer is not None and module.trainer.state.fn == TrainerFn.FITTING
    if not wants_compile(module.hparams.get("compile"), module.device, fitting):
        return None
    return CompiledNetwork(network, module.hparams.get("compile_mode") or "default")


def check_compile_mode(mode: str) -> None:
    """Raise ``ValueError`` naming ``mode`` unless it is one of :data:`COMPILE_MODES`."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {mode!r}")


class CompiledNetwork:
    """Compiled callables of one network, made on first call: ``train`` (static shapes,
    ``mode``) and ``evaluate`` (dynamic shapes; CUDA graphs are not used there, as they would be
    recorded once per image size). Not an ``nn.Module``, so that holding one adds nothing to a
    module's parameters or state dict.
    """

    def __init__(self, network: nn.Module, mode: str = "default") -> None:
        check_compile_mode(mode)
        self.network, self.mode = network, mode
        self._train: Any = None
        self._evaluate: Any = None

    def train(self, *inputs: Tensor) -> Tensor:
        """The network's output for training inputs of fixed shape."""
        if self._train is None:
            self._train = torch.compile(self.network, mode=self.mode, dynamic=False)
        return self._train(*inputs)

    def evaluate(self, *inputs: Tensor) -> Tensor:
        """The network's output for inputs of any size (one graph for all sizes)."""
        if self._evaluate is None:
            mode = "max-autotune-no-cudagraphs" if self.mode == "max-autotune" else "default"
            self._evaluate = torch.compile(self.network, mode=mode, dynamic=True)
        return self._evaluate(*inputs)

    def __call__(self, *inputs: Tensor) -> Tensor:
        """``train`` while the network is in training mode, ``evaluate`` otherwise."""
        return self.train(*inputs) if self.network.training else self.evaluate(*inputs)
