"""An FCN segmenter on a multi-scale encoder as a per-pixel discriminator: images in [-1, 1] ->
logits over ``num_outputs`` classes at the image's size (OASIS's N + 1: the classes and "fake").

The encoder (e.g. an ImageNet-pretrained timm backbone from ``build_encoder``) sees the images
normalised with its own statistics; the FCN-8s skip decoder (``FCNDecoder``) scores its stride-8,
16 and 32 features and upsamples them back. Images are padded (replicating the border) to a
multiple of 32 and the logits cropped back, so any size works. The encoder's batch-norm layers
keep their running statistics (evaluation mode) while the rest trains: a discriminator that
normalised each batch with its own statistics could tell a batch of generated images from a
batch of real ones by those statistics alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks.checks import check_images
from upsample.blocks.encoders.base import IMAGENET_MEAN, IMAGENET_STD, MultiScaleEncoder
from upsample.blocks.fcn_decoder import FCNDecoder, FCNVariant


class FCNDiscriminator(nn.Module):
    """Image (N, C, H, W) in [-1, 1] -> per-pixel logits (N, num_outputs, H, W).

    Args:
        encoder: a multi-scale encoder with output stride 32 (features at strides 4..32).
        num_outputs: classes scored at every pixel.
        variant: the FCN decoder's skip fusion ("8s", "16s" or "32s").
    """

    def __init__(
        self, encoder: MultiScaleEncoder, num_outputs: int, variant: FCNVariant = "8s"
    ) -> None:
        super().__init__()
        if encoder.output_stride != 32:
            raise ValueError(f"the encoder needs output stride 32, got {encoder.output_stride}")
        self.encoder, self.num_outputs = encoder, num_outputs
        self.in_channels = encoder.in_channels
        mean = getattr(encoder, "mean", None) or IMAGENET_MEAN
        std = getattr(encoder, "std", None) or IMAGENET_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.decoder = FCNDecoder(
            encoder.out_channels[1:], num_outputs, variant, encoder.strides[1:]
        )

    def train(self, mode: bool = True) -> FCNDiscriminator:
        super().train(mode)
        for module in self.encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()  # running statistics only (see the module docstring)
        return self

    def forward(self, images: Tensor) -> Tensor:
        check_images(images, self.in_channels, "FCNDiscriminator")
        height, width = images.shape[-2:]
        x = ((images + 1) / 2 - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        padded_height, padded_width = (height + 31) // 32 * 32, (width + 31) // 32 * 32
        x = F.pad(x, (0, padded_width - width, 0, padded_height - height), mode="replicate")
        features = list(self.encoder(x))[1:]
        return self.decoder(features, (padded_height, padded_width))[..., :height, :width]
