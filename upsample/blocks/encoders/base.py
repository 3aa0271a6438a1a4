"""Common interface of the multi-scale encoders."""

from __future__ import annotations

from torch import Tensor, nn

from upsample.blocks.checks import check_images

#: per-channel (R, G, B) normalisation that ImageNet-trained encoders expect of images in [0, 1].
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

OUTPUT_STRIDES: dict[int, tuple[int, int, int, int]] = {
    32: (4, 8, 16, 32),
    16: (4, 8, 16, 16),
    8: (4, 8, 8, 8),
}


def encoder_strides(output_stride: int) -> tuple[int, int, int, int]:
    """Actual strides of the four features for an output stride of 8, 16 or 32."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    return OUTPUT_STRIDES[output_stride]


class MultiScaleEncoder(nn.Module):
    """Base class: ``stages`` is a ModuleList of 4 modules applied in order; the output of
    stage i is the feature of nominal stride (4, 8, 16, 32)[i].

    forward: (N, C, H, W) -> list of 4 tensors (N, out_channels[i], H_i, W_i) with
    ``H_i ~ H / strides[i]`` (the exact rounding is documented by each encoder).
    """

    stages: nn.ModuleList
    out_channels: tuple[int, int, int, int]
    strides: tuple[int, int, int, int]
    in_channels: int
    #: smallest height/width accepted by forward (smaller inputs would vanish).
    min_input_size: int = 1

    def forward(self, x: Tensor) -> list[Tensor]:
        check_images(x, self.in_channels, type(self).__name__)
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"{type(self).__name__} needs height and width >= {self.min_input_size}, "
                f"got {tuple(x.shape[-2:])}"
            )
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    @property
    def output_stride(self) -> int:
        return self.strides[-1]
