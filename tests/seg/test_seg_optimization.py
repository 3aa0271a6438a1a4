"""The segmentation optimiser factory: what the module and a bare training loop both build."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seg.optimization import OptimizerSettings, poly_factor


def test_poly_schedule_decays_to_zero_per_step() -> None:
    network = nn.Conv2d(3, 2, 1)
    optimizer, scheduler = OptimizerSettings("sgd", lr=0.1, poly_power=0.9).build(
        network.parameters(), total_steps=10
    )
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.9
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1)
    assert rates[5] == pytest.approx(0.1 * poly_factor(5, 10, 0.9))
    assert rates[10:] == [0.0, 0.0]


def test_constant_adamw_has_no_scheduler_and_skips_frozen_parameters() -> None:
    network = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1))
    network[0].requires_grad_(False)
    optimizer, scheduler = OptimizerSettings("adamw", lr=1e-3, lr_schedule="constant").build(
        network.parameters()
    )
    assert isinstance(optimizer, torch.optim.AdamW) and scheduler is None
    assert len(optimizer.param_groups[0]["params"]) == 2


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adamw'"):
        OptimizerSettings("adam")
    with pytest.raises(ValueError, match="lr_schedule must be"):
        OptimizerSettings(lr_schedule="cosine")
    with pytest.raises(ValueError, match="needs total_steps"):
        OptimizerSettings().build(nn.Conv2d(1, 1, 1).parameters())
