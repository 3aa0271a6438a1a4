"""FCN variants: forward/backward on odd sizes, padding/cropping, errors, builders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seg.models import FCN, build_fcn, fcn8s, fcn16s, fcn32s, fcn_atrous
from seg.network_io import load_network

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
    network = fcn8s(4, width=TINY).eval()
    images = torch.rand(1, 3, 64, 96)
    normalised = (images - network.mean) / network.std
    features = network.encoder(normalised)[1:]
    direct = network.decoder(features, (64, 96))
    torch.testing.assert_close(network(images), direct)


def test_odd_input_equals_explicitly_padded_input_cropped() -> None:
    """Internal padding is zero after normalisation, i.e. the mean colour before it."""
    torch.manual_seed(0)
    network = fcn16s(3, width=TINY).eval()
    images = torch.rand(1, 3, 45, 70)
    mean = network.mean.view(1, 3, 1, 1)
    padded = mean.expand(1, 3, 64, 96).clone()  # the mean normalises to the zero padding
    padded[..., :45, :70] = images
    torch.testing.assert_close(network(images), network(padded)[..., :45, :70])


def test_too_small_input_gives_clear_error() -> None:
    network = fcn32s(3, width=TINY)
    with pytest.raises(ValueError, match=r"1x1 is too small.*>= 32"):
        network(torch.rand(1, 3, 1, 1))
    assert network(torch.rand(1, 3, 32, 33)).shape == (1, 3, 32, 33)
    atrous = fcn_atrous(3, encoder="resnet18s", width=TINY, output_stride=8)
    assert atrous.min_input_size == 8
    assert atrous(torch.rand(1, 3, 8, 9)).shape == (1, 3, 8, 9)


def test_wrong_channels_error() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        fcn8s(3, width=TINY)(torch.rand(1, 1, 40, 40))


def test_torchvision_adapter_builds_without_weights() -> None:
    network = fcn8s(4, encoder="tv_resnet18")
    assert isinstance(network, FCN)
    with torch.no_grad():
        assert network(torch.rand(1, 3, 50, 41)).shape == (1, 4, 50, 41)


def test_registry_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="variant must be one of"):
        build_fcn("fcn4s", 3)
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        fcn_atrous(3, width=TINY, output_stride=32)
    with pytest.raises(ValueError, match="context must be"):
        fcn_atrous(3, width=TINY, context="pyramid")


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
