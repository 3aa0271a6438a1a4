"""The Inception Score against an independent computation of its formula on known class
probabilities, in validation as ``gan fid`` computes it, and an honest message where the standard
network's logits are not at hand."""

from __future__ import annotations

import builtins
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gan.fid.features import to_uint8
from gan.fid.inception_score import (
    InceptionScoreUnavailableError,
    inception_score,
    load_inception_logits,
)
from gan.fid.metric import interleave_ranks
from tests.gan.conftest import fit_args


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


def test_ranks_interleave_back_into_the_order_of_one_process() -> None:
    values = torch.arange(7.0).unsqueeze(1).repeat(1, 2)  # 7 images over 3 ranks
    parts = [values[rank::3] for rank in range(3)]  # as the unpadded evaluation sampler deals
    assert torch.equal(interleave_ranks(parts), values)
    assert torch.equal(interleave_ranks([values]), values)


class PixelLogits(nn.Module):
    """A stand-in for the standard network's logits: fixed random weights over the pixels of
    8-bit images ``(N, 3, 32, 32)`` -> ``(N, 5)``."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.randn(3 * 32 * 32, 5, generator=torch.Generator().manual_seed(0))
        self.register_buffer("weight", weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float().flatten(1) / 255 - 0.5) @ self.weight


@pytest.mark.slow
def test_validation_logs_the_score_of_the_images_gan_fid_generates(
    trained_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gan validate --model.inception_score true`` logs ``val/is``: the score of the images
    the EMA generator makes from FID's index-seeded noise, as ``gan fid`` scores them. The
    checkpoint was trained without the score: evaluation options come from the command line."""
    from gan.cli import run_cli
    from gan.dcgan.network_io import load_generator
    from gan.fid import FIDEvaluator

    monkeypatch.setattr("gan.core.adversarial.load_inception_logits", PixelLogits)
    data = trained_checkpoint.parents[4] / "images"
    args = fit_args(tmp_path, data, f"--ckpt_path={trained_checkpoint}")
    args[0] = "validate"
    fid = ["--model.fid_features=random", "--model.kid_subset_size=2"]
    cli = run_cli([*args, *fid, "--model.inception_score=true"])
    metrics = cli.trainer.callback_metrics
    count = int(metrics["val/fid_num_fake"])
    generator = load_generator(trained_checkpoint)
    evaluator = FIDEvaluator("random")
    images = evaluator.generated_images(generator, range(count), generator.nz)
    expected = inception_score((to_uint8(batch) for batch in images), PixelLogits())
    assert float(metrics["val/is"]) == pytest.approx(expected["is_mean"], rel=1e-5)
    assert float(metrics["val/is_std"]) == pytest.approx(expected["is_std"], rel=1e-4, abs=1e-6)


def test_validation_without_the_logits_warns_and_logs_fid_alone(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gan.cli import run_cli

    def unavailable() -> nn.Module:
        raise InceptionScoreUnavailableError("the weight file is not here")

    monkeypatch.setattr("gan.core.adversarial.load_inception_logits", unavailable)
    options = ["--model.fid_every_n_epochs=1", "--model.fid_features=random"]
    options += ["--model.kid_subset_size=2", "--model.inception_score=true"]
    with pytest.warns(UserWarning, match="val/is.*the weight file is not here"):
        cli = run_cli(fit_args(tmp_path, image_folder, *options))
    metrics = cli.trainer.callback_metrics
    assert "val/fid" in metrics and "val/is" not in metrics
