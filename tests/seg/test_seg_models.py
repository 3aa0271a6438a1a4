"""FCN variants: forward/backward on odd sizes, padding/cropping, errors, builders; networks
through the Lightning module and back from checkpoints of either layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from seg.models import FCN, IMAGENET_MEAN, FCNConfig, build_fcn
from seg.module import SegmentationModule
from seg.network_io import load_network
from tests.seg.helpers import one_step_trainer
from upsample.core.checkpoint import CheckpointError

TINY = 0.0625  # VGG widths 4, 8, 16, 32, 32

VARIANTS = [
    ("fcn32s", {"encoder": "vgg"}),
    ("fcn16s", {"encoder": "vgg"}),
    ("fcn8s", {"encoder": "vgg"}),
    ("fcn8s", {"encoder": "vgg_bn", "upsampler": "resize_conv"}),
    ("fcn16s", {"encoder": "resnet18s", "upsampler": "pixel_shuffle"}),
    ("atrous", {"encoder": "resnet18s", "output_stride": 8, "context": "aspp"}),
    ("atrous", {"encoder": "resnet18s", "output_stride": 16, "context": "dilated"}),
    ("atrous", {"encoder": "vgg_bn", "output_stride": 16, "decoder_variant": "8s"}),
]


@pytest.mark.parametrize(("variant", "kwargs"), VARIANTS, ids=lambda v: str(v))
def test_forward_backward_odd_size(variant: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    network = build_fcn(variant, 5, width=TINY, **kwargs)
    images = torch.rand(2, 3, 97, 131)
    logits = network(images)
    assert logits.shape == (2, 5, 97, 131)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    grads = [p.grad for p in network.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_stride_multiple_input_is_not_padded() -> None:
    """An input whose size is a multiple of the output stride goes straight through: its
    logits equal a direct normalise -> encoder -> decoder pass."""
    torch.manual_seed(0)
    network = build_fcn("fcn8s", 4, width=TINY).eval()
    images = torch.rand(1, 3, 64, 96)
    normalised = (images - network.mean) / network.std
    features = network.encoder(normalised)[1:]
    direct = network.decoder(features, (64, 96))
    torch.testing.assert_close(network(images), direct)


def test_odd_input_equals_explicitly_padded_input_cropped() -> None:
    """Internal padding is zero after normalisation, i.e. the mean colour before it."""
    torch.manual_seed(0)
    network = build_fcn("fcn16s", 3, width=TINY).eval()
    images = torch.rand(1, 3, 45, 70)
    mean = network.mean.view(1, 3, 1, 1)
    padded = mean.expand(1, 3, 64, 96).clone()  # the mean normalises to the zero padding
    padded[..., :45, :70] = images
    torch.testing.assert_close(network(images), network(padded)[..., :45, :70])


def test_too_small_input_gives_clear_error() -> None:
    network = build_fcn("fcn32s", 3, width=TINY)
    with pytest.raises(ValueError, match=r"1x1 is too small.*>= 32"):
        network(torch.rand(1, 3, 1, 1))
    assert network(torch.rand(1, 3, 32, 33)).shape == (1, 3, 32, 33)
    atrous = build_fcn("atrous", 3, encoder="resnet18s", width=TINY, output_stride=8)
    assert atrous.min_input_size == 8
    assert atrous(torch.rand(1, 3, 8, 9)).shape == (1, 3, 8, 9)


def test_wrong_channels_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        build_fcn("fcn8s", 3, width=TINY)(torch.rand(1, 1, 40, 40))


def test_torchvision_adapter_builds_without_weights() -> None:
    network = build_fcn("fcn8s", 4, encoder="tv_resnet18")
    assert isinstance(network, FCN)
    with torch.no_grad():
        assert network(torch.rand(1, 3, 50, 41)).shape == (1, 4, 50, 41)


def test_registry_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="variant must be one of"):
        build_fcn("fcn4s", 3)
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        build_fcn("atrous", 3, width=TINY, output_stride=32)
    with pytest.raises(ValueError, match="context must be"):
        build_fcn("atrous", 3, width=TINY, context="pyramid")


CHECKPOINTS = Path(__file__).parent / "checkpoints"


def test_load_network_rebuilds_a_checkpoint_with_flat_hyperparameters() -> None:
    """A checkpoint written before the network had its own config (architecture spread over
    the module's hyperparameters) still loads, with its stored normalisation and class names,
    and computes what it computed when it was written."""
    path = CHECKPOINTS / "flat_hparams_atrous.ckpt"
    assert "variant" in torch.load(path, weights_only=False)["hyper_parameters"]
    network = load_network(path)
    expected = torch.load(CHECKPOINTS / "flat_hparams_atrous.expected.pt")
    torch.testing.assert_close(network.mean.flatten(), torch.full((3,), 0.5))
    assert network.output_stride == 16
    assert network.class_names == ["background", "red", "green"]
    assert network.palette == [[0, 0, 0], [200, 40, 40], [40, 200, 40]]
    with torch.no_grad():
        torch.testing.assert_close(network(expected["images"]), expected["logits"])


def test_load_from_checkpoint_reads_flat_hyperparameters() -> None:
    """``SegmentationModule.load_from_checkpoint`` (Lightning's loader) reads a checkpoint of an
    earlier version too: the architecture moves under ``network`` and the module computes the
    stored logits."""
    module = SegmentationModule.load_from_checkpoint(CHECKPOINTS / "flat_hparams_atrous.ckpt")
    expected = torch.load(CHECKPOINTS / "flat_hparams_atrous.expected.pt")
    assert module.hparams.network["variant"] == "atrous" and "variant" not in module.hparams
    assert module.class_names == ["background", "red", "green"]
    with torch.no_grad():
        torch.testing.assert_close(module.eval()(expected["images"]), expected["logits"])


@pytest.mark.parametrize("given", ["config", "network"])
def test_load_network_rebuilds_the_network_config_of_a_checkpoint(
    given: str, tmp_path: Path
) -> None:
    """The module stores the config of its FCN (given as a config, or built from one) with the
    normalisation in use; the checkpoint alone rebuilds the same network."""
    config = FCNConfig(
        variant="atrous", encoder="resnet18s", width=TINY, output_stride=16, context="dilated"
    )
    torch.manual_seed(0)
    network = config if given == "config" else config.build(4)
    module = SegmentationModule(num_classes=4, network=network, channels_last=False).eval()
    stored = module.hparams["network"]
    assert stored["context"] == "dilated" and stored["mean"] == pytest.approx(IMAGENET_MEAN)
    path = tmp_path / "network_config.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    images = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        torch.testing.assert_close(load_network(path)(images), module.network(images))


class PixelClassifier(nn.Module):
    """A peer network with the FCN's contract, nothing of ours inside."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def test_a_peer_network_trains_through_the_module(tmp_path: Path) -> None:
    """Any module with the FCN's contract trains and validates with the module's loss,
    optimiser and metrics; the checkpoint names its class, and load_network says it cannot
    rebuild it."""
    batches = [
        {
            "image": torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8),
            "mask": torch.randint(0, 3, (2, 24, 24)),
            "name": ["a", "b"],
        }
    ]
    module = SegmentationModule(num_classes=3, network=PixelClassifier(3), optimizer="adamw")
    before = [p.detach().clone() for p in module.network.parameters()]
    trainer = one_step_trainer(default_root_dir=tmp_path)  # the validation overlays go there
    loader = DataLoader(batches, batch_size=None)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    assert "val/miou" in trainer.callback_metrics
    assert any(
        not torch.equal(a, b) for a, b in zip(before, module.network.parameters(), strict=True)
    )
    assert module.hparams["network"] == {"class_path": f"{__name__}.PixelClassifier"}
    path = tmp_path / "peer.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    with pytest.raises(CheckpointError, match=r"given as a module.*PixelClassifier"):
        load_network(path)
