"""DCGAN generator and discriminator from the shared blocks (Radford, Metz & Chintala 2016)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import Tensor, nn

from blocks import ConvNormAct, GeneratorUpStack, dcgan_init_

ImageSize = Literal[32, 64, 128]
Upsampler = Literal["transposed", "resize_conv", "pixel_shuffle"]
_DOWNSAMPLINGS = {32: 3, 64: 4, 128: 5}  # stride-2 convs down to 4x4


def _check_image_size(image_size: int) -> int:
    if image_size not in _DOWNSAMPLINGS:
        raise ValueError(f"image_size must be 32, 64 or 128, got {image_size!r}")
    return image_size


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
        upsampler: Upsampler = "transposed",
    ) -> None:
        super().__init__()
        _check_image_size(image_size)
        self.nz, self.ngf, self.channels, self.image_size = nz, ngf, channels, image_size
        self.net = GeneratorUpStack(nz, ngf, channels, image_size, upsampler=upsampler)
        dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """DCGAN discriminator: image -> one real/fake logit per image.

    Stride-2 4x4 convolutions with LeakyReLU(0.2) halve the image down to 4x4 while the width
    doubles from ``ndf``; batch norm on every layer but the first; no pooling and no fully
    connected hidden layer; a last 4x4 convolution gives the logit. Weights are N(0, 0.02).

    forward: (N, channels, image_size, image_size) -> (N,) logits.
    """

    def __init__(self, ndf: int = 64, channels: int = 1, image_size: ImageSize = 32) -> None:
        super().__init__()
        _check_image_size(image_size)
        self.ndf, self.channels, self.image_size = ndf, channels, image_size
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = channels
        for i in range(_DOWNSAMPLINGS[image_size]):
            out_channels = ndf * 2**i
            layers[f"down{i + 1}"] = ConvNormAct(
                in_channels,
                out_channels,
                kernel_size=4,
                stride=2,
                padding=1,
                norm="none" if i == 0 else "batch",
                activation="leaky_relu",
                negative_slope=0.2,
            )
            in_channels = out_channels
        layers["to_logit"] = nn.Conv2d(in_channels, 1, kernel_size=4, stride=1, padding=0)
        self.net = nn.Sequential(layers)
        dcgan_init_(self)

    def forward(self, images: Tensor) -> Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator expects (N, {', '.join(map(str, expected))}), "
                f"got {tuple(images.shape)}"
            )
        return self.net(images).flatten()
