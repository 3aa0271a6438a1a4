"""timm feature pyramids behind the encoder interface: strides 4/8/16/32 at every output stride,
weights given as a state dict (renamed feature wrappers, gray input), clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from upsample.blocks import TIMM_PREFIX, TimmEncoder, build_encoder, receptive_field

timm = pytest.importorskip("timm", reason="timm is in the pretrained extra")

# timm's tiny test networks: three different feature wrappers (EfficientNetFeatures, a
# FeatureListNet with the model's own key names, one with flattened stage names).
TINY = ["test_efficientnet", "test_resnet", "test_convnext"]
EXPECTED_STRIDES = {32: (4, 8, 16, 32), 16: (4, 8, 16, 16), 8: (4, 8, 8, 8)}


@pytest.mark.parametrize("output_stride", [32, 16, 8])
@pytest.mark.parametrize("model", TINY)
def test_strides_channels_and_sizes(model: str, output_stride: int) -> None:
    encoder = build_encoder(f"{TIMM_PREFIX}{model}", output_stride=output_stride)
    assert isinstance(encoder, TimmEncoder)
    assert encoder.strides == EXPECTED_STRIDES[output_stride]
    features = encoder(torch.randn(2, 3, 64, 96))
    assert [f.shape[1] for f in features] == list(encoder.out_channels)
    assert [tuple(f.shape[-2:]) for f in features] == [(64 // s, 96 // s) for s in encoder.strides]
    odd = encoder(torch.randn(1, 3, 97, 131))
    # convolutions round up; convnext's patchify stem needs a multiple of 4 (the FCN pads)
    if model != "test_convnext":
        assert [tuple(f.shape[-2:]) for f in odd] == [
            (math.ceil(97 / s), math.ceil(131 / s)) for s in encoder.strides
        ]
    sum(f.mean() for f in features).backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", TINY)
def test_state_dict_of_the_whole_classifier_loads(model: str) -> None:
    """A classifier's state dict (timm's key names, head included) gives the encoder exactly
    those weights, also where the feature wrapper renames the stages."""
    torch.manual_seed(0)
    classifier = timm.create_model(model)
    state = classifier.state_dict()
    encoder = build_encoder(f"{TIMM_PREFIX}{model}", weights=state).eval()
    classifier.eval()
    x = torch.randn(1, 3, 64, 64)
    deepest = encoder(x)[-1]
    expected = classifier.forward_intermediates(x, indices=1, intermediates_only=True)[-1]
    assert deepest.shape == expected.shape
    torch.testing.assert_close(deepest, expected)


def test_normalisation_comes_from_the_pretrained_config() -> None:
    lite = build_encoder(f"{TIMM_PREFIX}tf_efficientnet_lite0")
    assert lite.mean == (0.5, 0.5, 0.5) and lite.std == (0.5, 0.5, 0.5)
    resnet = build_encoder(f"{TIMM_PREFIX}test_efficientnet")
    assert resnet.mean == pytest.approx((0.485, 0.456, 0.406))


def test_gray_input_adapts_the_rgb_stem() -> None:
    """One input channel: timm sums the RGB stem weights, so a gray image gives the same
    features as the RGB network on that image repeated three times."""
    state = timm.create_model("test_resnet").state_dict()
    gray = build_encoder(f"{TIMM_PREFIX}test_resnet", in_channels=1, weights=state).eval()
    rgb = build_encoder(f"{TIMM_PREFIX}test_resnet", weights=state).eval()
    assert gray.mean == (0.5,) and gray.in_channels == 1
    x = torch.rand(1, 1, 64, 64)
    torch.testing.assert_close(gray(x)[-1], rgb(x.repeat(1, 3, 1, 1))[-1], atol=1e-4, rtol=1e-4)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown timm model 'no_such_net'"):
        build_encoder(f"{TIMM_PREFIX}no_such_net")
    with pytest.raises(ValueError, match=r"strides \[16, 16, 16\].*4, 8, 16 and 32"):
        build_encoder(f"{TIMM_PREFIX}test_vit")
    with pytest.raises(ValueError, match="width must be 1.0"):
        build_encoder(f"{TIMM_PREFIX}test_resnet", width=0.5)
    with pytest.raises(TypeError, match="state dict"):
        build_encoder(f"{TIMM_PREFIX}test_resnet", weights="imagenet")
    state = timm.create_model("test_resnet").state_dict()
    first = next(iter(state))
    with pytest.raises(ValueError, match=rf"do not fit.*missing keys {first}"):
        build_encoder(
            f"{TIMM_PREFIX}test_resnet", weights={k: v for k, v in state.items() if k != first}
        )
    wrong = dict(state)
    wrong[first] = torch.zeros(1)
    with pytest.raises(ValueError, match="do not fit"):
        build_encoder(f"{TIMM_PREFIX}test_resnet", weights=wrong)
    with pytest.raises(TypeError, match="receptive field"):
        receptive_field(TimmEncoder("test_resnet"), 64)
