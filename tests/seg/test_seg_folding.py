"""Batch norm folded into the convolutions for inference (``upsample.core.folding``): the network of
every shipped segmentation config gives the same logits folded and unfolded (within the stated
tolerance) at odd sizes, and folding never changes the network given nor the checkpoint on disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from seg.inference.engines import TorchEngine
from seg.module import SegmentationModule
from upsample.core.folding import count_batch_norms, fold_batch_norms, foldable_pairs

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(path.name for path in (REPO / "configs" / "seg").glob("*.yaml"))
#: folded logits differ from unfolded ones by float rounding only: at most this fraction of the
#: largest logit (measured: 2e-6 for the EfficientNet-Lite0 FCN, below 1e-6 for the others).
RELATIVE_TOLERANCE = 1e-4


def config_network(config: str) -> nn.Module:
    """The config's network without pretrained weights (every config trains from the seed the
    same way), at the smallest width the config's encoder takes, its batch norms given
    statistics and affine parameters far from the identity."""
    model = yaml.safe_load((REPO / "configs" / "seg" / config).read_text())["model"]
    network = model["network"]
    network["encoder_weights"] = None
    if "width" in network:
        network["width"] = 0.0625
    torch.manual_seed(0)
    module = SegmentationModule(**{**model, "num_classes": 5})
    for layer in module.network.modules():
        if isinstance(layer, _BatchNorm):
            layer.running_mean.uniform_(-1.0, 1.0)
            layer.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(layer.weight, 0.5, 1.5)
            nn.init.uniform_(layer.bias, -0.5, 0.5)
    return module.network.eval()


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_network_folds_to_the_same_logits(config: str) -> None:
    network = config_network(config)
    before = {key: value.clone() for key, value in network.state_dict().items()}
    norms = count_batch_norms(network)
    folded = fold_batch_norms(network)
    assert count_batch_norms(folded) == 0, "a batch norm of this network was not folded"
    for shape in ((2, 3, 67, 93), (1, 3, 45, 131)):
        images = torch.rand(*shape)
        with torch.inference_mode():
            reference, logits = network(images), folded(images)
        scale = float(reference.abs().max())
        torch.testing.assert_close(logits, reference, rtol=0, atol=RELATIVE_TOLERANCE * scale)
    # the network given is untouched: same layers, same tensors
    assert count_batch_norms(network) == norms
    for key, value in network.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_only_a_convolution_read_by_its_batch_norm_alone_folds() -> None:
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shared = nn.Conv2d(3, 4, 3, padding=1)
            self.norm = nn.BatchNorm2d(4)
            self.conv = nn.Conv2d(4, 4, 1)
            self.norm2 = nn.BatchNorm2d(4, affine=False)
            self.up = nn.ConvTranspose2d(4, 4, 2, stride=2, bias=False)
            self.norm3 = nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            features = self.shared(x)  # read twice: cannot fold
            y = self.norm(features) + features
            y = self.norm2(self.conv(y))
            return self.norm3(self.up(y))

    torch.manual_seed(0)
    network = Branches().eval()
    for layer in (network.norm, network.norm2, network.norm3):
        layer.running_mean.uniform_(-1.0, 1.0)
        layer.running_var.uniform_(0.5, 2.0)
    pairs = {(pair.convolution, pair.norm) for pair in foldable_pairs(network)}
    assert pairs == {("conv", "norm2"), ("up", "norm3")}
    folded = fold_batch_norms(network)
    images = torch.rand(2, 3, 9, 11)
    torch.testing.assert_close(folded(images), network(images), rtol=1e-5, atol=1e-5)
    assert isinstance(folded.norm, nn.BatchNorm2d) and isinstance(folded.norm3, nn.Identity)


def test_the_engine_runs_folded_and_the_checkpoint_stays_as_it_was(tmp_path: Path) -> None:
    """``TorchEngine`` (what ``seg predict`` runs) folds a copy: its logits match the unfolded
    engine's, and the network and the checkpoint file it came from are unchanged."""
    network = config_network("camvid_fcn8s_lite0.yaml")
    checkpoint = tmp_path / "network.pt"
    torch.save(network.state_dict(), checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    folded = TorchEngine(network, "cpu", "32", channels_last=True)
    unfolded = TorchEngine(config_network("camvid_fcn8s_lite0.yaml"), "cpu", "32", True, False)
    assert count_batch_norms(folded.network) == 0 and count_batch_norms(network) > 0
    images = torch.rand(2, 3, 61, 83)
    with torch.inference_mode():
        reference, logits = unfolded(images), folded(images)
    scale = float(reference.abs().max())
    torch.testing.assert_close(logits, reference, rtol=0, atol=RELATIVE_TOLERANCE * scale)
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == digest
    saved = torch.load(checkpoint)
    assert all(torch.equal(saved[key], value) for key, value in network.state_dict().items())
