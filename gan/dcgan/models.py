"""DCGAN generator and discriminator from the shared blocks (Radford, Metz & Chintala 2016)."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from upsample.blocks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    GeneratorUpStack,
    MultiScaleEncoder,
    build_encoder,
    dcgan_init_,
    discriminator_unit,
)
from upsample.blocks.generator import STAGES_FOR_SIZE, ImageSize
from upsample.blocks.upsample import UpsamplerKind


def _check_image_size(image_size: int) -> int:
    if image_size not in STAGES_FOR_SIZE:
        raise ValueError(f"image_size must be 32, 64 or 128, got {image_size!r}")
    return image_size


def _check_images(critic: nn.Module, images: Tensor) -> None:
    """Raise naming the critic when ``images`` are not ``(N, channels, size, size)``."""
    expected = (critic.channels, critic.image_size, critic.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"{type(critic).__name__} expects (N, {', '.join(map(str, expected))}), "
            f"got {tuple(images.shape)}"
        )


class Generator(nn.Module):
    """DCGAN generator: noise -> image in [-1, 1].

    A 4x4 transposed convolution projects the noise, then stride-2 upsamplings with batch norm
    and ReLU halve the width down to ``ngf``, and a last upsampling with tanh (no batch norm)
    makes the image. ``upsampler`` chooses transposed convolutions (DCGAN) or the
    checkerboard-free resize-conv / pixel-shuffle alternatives. Weights are N(0, 0.02).

    forward: (N, nz) or (N, nz, 1, 1) -> (N, channels, image_size, image_size).
    """

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        channels: int = 1,
        image_size: ImageSize = 32,
        upsampler: UpsamplerKind = "transposed",
    ) -> None:
        super().__init__()
        _check_image_size(image_size)
        self.nz, self.ngf, self.channels, self.image_size = nz, ngf, channels, image_size
        self.upsampler = upsampler
        self.net = GeneratorUpStack(nz, ngf, channels, image_size, upsampler=upsampler)
        dcgan_init_(self)

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        """The names of the constructor arguments, which :meth:`config` holds."""
        return tuple(inspect.signature(cls.__init__).parameters)[1:]

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this architecture (saved in checkpoints)."""
        return {key: getattr(self, key) for key in self.config_keys()}

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Generator:
        """The (untrained) generator that ``values`` describe: a :meth:`config`, or any mapping
        that holds its keys (checkpoint hyperparameters)."""
        return cls(**{key: values[key] for key in cls.config_keys()})

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """DCGAN discriminator: image -> one real/fake logit per image.

    Stride-2 4x4 convolutions with LeakyReLU(0.2) halve the image down to 4x4 while the width
    doubles from ``ndf``; batch norm on every layer but the first; no pooling and no fully
    connected hidden layer; a last 4x4 convolution gives the logit. Weights are N(0, 0.02).
    With ``spectral_norm`` every convolution is spectrally normalised instead of batch-normalised
    (Miyato et al. 2018), which keeps the critic's Lipschitz constant in check.

    forward: (N, channels, image_size, image_size) -> (N,) logits.
    """

    def __init__(
        self,
        ndf: int = 64,
        channels: int = 1,
        image_size: ImageSize = 32,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_image_size(image_size)
        self.ndf, self.channels, self.image_size = ndf, channels, image_size
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = channels
        for i in range(STAGES_FOR_SIZE[image_size]):
            out_channels = ndf * 2**i
            unnormalised = i == 0 or spectral_norm
            layers[f"down{i + 1}"] = discriminator_unit(
                in_channels, out_channels, first=unnormalised
            )
            in_channels = out_channels
        layers["to_logit"] = nn.Conv2d(in_channels, 1, kernel_size=4, stride=1, padding=0)
        self.net = nn.Sequential(layers)
        dcgan_init_(self)
        if spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, nn.Conv2d):
                    torch.nn.utils.parametrizations.spectral_norm(module)

    def forward(self, images: Tensor) -> Tensor:
        _check_images(self, images)
        return self.net(images).flatten()


class EncoderDiscriminator(nn.Module):
    """Discriminator on a multi-scale encoder, e.g. an ImageNet-pretrained timm backbone:
    image -> one real/fake logit per image.

    Images in [-1, 1] are brought to [0, 1] and normalised with the encoder's statistics (a timm
    encoder's pretrained configuration; ImageNet's otherwise); a 1x1 convolution scores the
    deepest feature (stride 32) at every position and the scores are averaged. The head is
    initialised N(0, 0.02) as in DCGAN; the encoder keeps its own weights. Every parameter takes
    part in every step, so DDP needs no ``find_unused_parameters``.

    forward: (N, channels, image_size, image_size) -> (N,) logits.
    """

    def __init__(self, encoder: MultiScaleEncoder, channels: int, image_size: ImageSize) -> None:
        super().__init__()
        _check_image_size(image_size)
        if encoder.in_channels != channels:
            raise ValueError(
                f"encoder takes {encoder.in_channels} channels, images have {channels}"
            )
        self.channels, self.image_size = channels, image_size
        self.encoder = encoder
        mean = getattr(encoder, "mean", None) or _default_statistics(channels)[0]
        std = getattr(encoder, "std", None) or _default_statistics(channels)[1]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.to_logit = nn.Conv2d(encoder.out_channels[-1], 1, kernel_size=1)
        dcgan_init_(self.to_logit)

    def forward(self, images: Tensor) -> Tensor:
        _check_images(self, images)
        x = ((images + 1) / 2 - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        return self.to_logit(self.encoder(x)[-1]).mean(dim=(1, 2, 3))


def _default_statistics(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (0.5,) * channels, (0.25,) * channels


def build_discriminator(
    ndf: int = 64,
    channels: int = 1,
    image_size: ImageSize = 32,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    spectral_norm: bool = False,
) -> nn.Module:
    """The DCGAN ``Discriminator``, or with ``encoder`` (a ``blocks.build_encoder`` name such as
    "timm-tf_efficientnet_lite0") an ``EncoderDiscriminator``; ``encoder_weights`` ("imagenet"
    or a weight file) is resolved for timm encoders by ``upsample.core.pretrained`` (local copies
    first) and passed as it is to the others."""
    if encoder is None:
        if encoder_weights is not None:
            raise ValueError("encoder_weights needs an encoder for the discriminator")
        return Discriminator(ndf, channels, image_size, spectral_norm)
    from upsample.blocks.encoders.timm_adapter import timm_model_name

    weights: object = encoder_weights
    model_name = timm_model_name(encoder)
    if model_name is not None and encoder_weights is not None:
        from upsample.core.pretrained import resolve_encoder_weights

        weights = resolve_encoder_weights(model_name, encoder_weights).state_dict
    backbone = build_encoder(encoder, in_channels=channels, output_stride=32, weights=weights)
    return EncoderDiscriminator(backbone, channels, image_size)
