"""Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` over the standard
Inception network's 1008-way logits, mean and standard deviation over 10 splits, computed by
torchmetrics' ``InceptionScore``.

The logits are those of the same 2015-12-05 Inception graph that FID uses, as torch-fidelity
ports it (``logits_unbiased``). The TorchScript file that the FID features come from
(``gan.fid.features``) stops at the 2048 pool features, so the logits need torch-fidelity's
weight file: found in torch's hub cache (``$TORCH_HOME/hub/checkpoints``), else downloaded. Where
neither works (an offline machine without the file), the score is unavailable and says what is
missing; FID and KID are not affected.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from upsample.core.seeding import seeded

#: torch-fidelity's port of the 2015-12-05 Inception weights, with the logits layer
LOGITS_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


class InceptionScoreUnavailableError(RuntimeError):
    """The standard Inception logits cannot be loaded here: the message says what is missing."""


def load_inception_logits() -> nn.Module:
    """The standard Inception network's logits: uint8 (N, 3, H, W) -> (N, 1008).

    Raises:
        InceptionScoreUnavailableError: torch-fidelity is not installed, or its weight file is
            neither in torch's hub cache nor downloadable.
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as error:
        raise InceptionScoreUnavailableError(
            'the Inception Score needs torch-fidelity (pip install -c constraints.txt -e ".[fid]")'
        ) from error
    try:
        network = FeatureExtractorInceptionV3("inception-v3-compat", ["logits_unbiased"])
    except Exception as error:  # a failed download surfaces as any of several error types
        raise InceptionScoreUnavailableError(
            f"the standard Inception logits ({LOGITS_WEIGHTS}) are not in torch's hub cache "
            f"and could not be downloaded ({type(error).__name__}: {error})"
        ) from error
    return _FirstOutput(network.eval())


class _FirstOutput(nn.Module):
    """torch-fidelity returns a tuple of the requested features: the logits alone."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.network(images)[0]


def inception_score(
    batches: Iterable[Tensor], logits: nn.Module, splits: int = 10, seed: int = 0
) -> dict[str, float]:
    """IS mean and standard deviation over ``splits`` of the images in ``batches`` (uint8
    (N, 3, H, W)), ``logits`` mapping such a batch to class logits; the images are split in an
    order drawn from ``seed``."""
    return inception_score_of_logits(torch.cat([logits(batch) for batch in batches]), splits, seed)


def inception_score_of_logits(logits: Tensor, splits: int = 10, seed: int = 0) -> dict[str, float]:
    """IS mean and standard deviation over ``splits`` of images given by their class logits
    ``(N, classes)``, split in an order drawn from ``seed`` (torchmetrics' computation)."""
    from torchmetrics.image.inception import InceptionScore

    metric = InceptionScore(feature=nn.Identity(), splits=splits)
    metric.update(logits)
    with seeded(seed):
        mean, std = metric.compute()
    return {"is_mean": float(mean), "is_std": float(std)}
