"""The Inception Score against an independent computation of its formula on known class
probabilities, and an honest message where the standard network's logits are not at hand."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest
import torch
from torch import nn

from gan.fid.inception_score import (
    InceptionScoreUnavailableError,
    inception_score,
    load_inception_logits,
)


class KnownLogits(nn.Module):
    """Image ``i`` (its first pixel holds ``i``) -> the log of row ``i`` of ``probabilities``."""

    def __init__(self, probabilities: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(np.log(probabilities), dtype=torch.float64))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[images[:, 0, 0, 0].long()]


def reference_is(probabilities: np.ndarray) -> float:
    """exp(mean over images of KL(p(y|x) || p(y))), p(y) the mean over the images."""
    marginal = probabilities.mean(axis=0)
    kl = (probabilities * (np.log(probabilities) - np.log(marginal))).sum(axis=1)
    return math.exp(kl.mean())


def images_of(count: int) -> list[torch.Tensor]:
    images = torch.zeros(count, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(count, dtype=torch.uint8)
    return list(images.split(3))


def test_one_split_is_the_formula() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.full(5, 0.3), size=12)
    scores = inception_score(images_of(12), KnownLogits(probabilities), splits=1)
    assert scores["is_mean"] == pytest.approx(reference_is(probabilities), rel=1e-5)
    assert scores["is_std"] != scores["is_std"] or scores["is_std"] == 0  # one split: no spread


def test_confident_distinct_classes_score_their_number_and_a_constant_one() -> None:
    distinct = np.full((4, 4), 1e-9) + np.eye(4)
    distinct /= distinct.sum(axis=1, keepdims=True)
    assert inception_score(images_of(4), KnownLogits(distinct), splits=1)["is_mean"] == (
        pytest.approx(4.0, rel=1e-4)
    )
    constant = np.tile([0.7, 0.2, 0.1], (6, 1))
    assert inception_score(images_of(6), KnownLogits(constant), splits=1)["is_mean"] == (
        pytest.approx(1.0)
    )


def test_splits_average_the_per_split_scores() -> None:
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.full(3, 0.5), size=10)
    scores = inception_score(images_of(10), KnownLogits(probabilities), splits=2, seed=3)
    again = inception_score(images_of(10), KnownLogits(probabilities), splits=2, seed=3)
    assert scores == again  # the split order is drawn from the seed
    with torch.random.fork_rng():
        torch.manual_seed(3)
        order = torch.randperm(10).numpy()
    halves = np.array_split(probabilities[order], 2)
    assert scores["is_mean"] == pytest.approx(np.mean([reference_is(h) for h in halves]), rel=1e-5)


def test_without_torch_fidelity_the_score_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = builtins.__import__

    def no_fidelity(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("torch_fidelity"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fidelity)
    with pytest.raises(InceptionScoreUnavailableError, match="needs torch-fidelity"):
        load_inception_logits()
