"""How the segmentation network is optimised: SGD-momentum or AdamW, a poly or constant
learning rate. One factory for the Lightning module and for any loop that trains outside it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

OptimizerKind = Literal["sgd", "adamw"]
LRSchedule = Literal["poly", "constant"]


def poly_factor(step: int, total_steps: int, power: float) -> float:
    """The poly schedule's learning-rate factor ``(1 - step / total_steps) ** power``, 0 from
    ``total_steps`` on (DeepLab's schedule, also FCN's reimplementations)."""
    return (1.0 - min(step, total_steps) / total_steps) ** power


@dataclass(frozen=True)
class OptimizerSettings:
    """The optimiser and learning-rate schedule of a segmentation network.

    Args:
        optimizer: "sgd" (with ``momentum``) or "adamw".
        lr: the base learning rate; weight_decay: L2 (SGD) or decoupled (AdamW) decay.
        lr_schedule: "poly" (``lr * poly_factor(step, total_steps, poly_power)``, stepped every
            optimiser step) or "constant".
    """

    optimizer: OptimizerKind = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: LRSchedule = "poly"
    poly_power: float = 0.9

    def __post_init__(self) -> None:
        if self.optimizer not in get_args(OptimizerKind):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.lr_schedule not in get_args(LRSchedule):
            raise ValueError(f"lr_schedule must be 'poly' or 'constant', got {self.lr_schedule!r}")

    def build(
        self,
        parameters: Iterable[nn.Parameter],
        total_steps: int | Callable[[], int] | None = None,
    ) -> tuple[Optimizer, LambdaLR | None]:
        """The optimiser over the trainable ``parameters`` and its per-step scheduler (None for
        a constant learning rate; "poly" needs ``total_steps``, the optimiser steps of the run,
        or a function giving them, asked once at the first step after the initial one).
        """
        trainable = [p for p in parameters if p.requires_grad]
        optimizer: Optimizer
        if self.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                trainable, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        else:
            optimizer = torch.optim.AdamW(trainable, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer, None
        if total_steps is None:
            raise ValueError("lr_schedule 'poly' needs total_steps, the optimiser steps of the run")
        return optimizer, LambdaLR(optimizer, _poly_lambda(total_steps, self.poly_power))


def _poly_lambda(total_steps: int | Callable[[], int], power: float) -> Callable[[int], float]:
    """``poly_factor`` of a step, with the run's total steps given, or asked for when first
    needed (a Lightning module's total is known only once its training data is set up). A
    plain function, so that a checkpoint stores nothing of it: a resumed run's total is its
    own."""
    resolved: list[int] = []

    def factor(step: int) -> float:
        if step == 0:
            return 1.0
        if not resolved:
            total = total_steps() if callable(total_steps) else total_steps
            resolved.append(max(1, int(total)))
        return poly_factor(step, resolved[0], power)

    return factor
