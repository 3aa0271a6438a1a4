"""FCN skip-fusion decoder (Long, Shelhamer & Darrell 2015): FCN-32s, 16s and 8s."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal, get_args

from torch import Tensor, nn

from upsample.blocks.upsample import UpsamplerKind, make_upsampler

FCNVariant = Literal["32s", "16s", "8s"]
FCN_VARIANTS: tuple[str, ...] = get_args(FCNVariant)
_USED_FEATURES = {"32s": (2,), "16s": (1, 2), "8s": (0, 1, 2)}
#: nominal strides of the three features the decoder reads; its layers are named after them
#: (``score8``, ``to16``, ...).
FEATURE_STRIDES: tuple[int, int, int] = (8, 16, 32)


def _crop_to(x: Tensor, size: Sequence[int], what: str) -> Tensor:
    h, w = size[0], size[1]  # no int(): it would fix an exported graph to the example's size
    if x.shape[-2] < h or x.shape[-1] < w:
        raise ValueError(
            f"FCNDecoder: {what} is {x.shape[-2]}x{x.shape[-1]}, smaller than the required "
            f"{h}x{w}; pad the input so that its height and width are multiples of the "
            "encoder's output stride"
        )
    return x[..., :h, :w]


class FCNDecoder(nn.Module):
    """Score the stride-8/16/32 features with 1x1 convs, fuse them coarse to fine and upsample.

    * "32s": upsample score32 to the output size;
    * "16s": upsample score32 x2, add score16, upsample x16;
    * "8s": then upsample x2, add score8, upsample x8.

    ``strides`` are the actual strides of the three features: with an atrous encoder equal
    strides (e.g. (8, 8, 8)) are fused without upsampling and the final upsampling is by the
    stride of the finest feature used. Upsampled maps are cropped (top-left, as the upsamplers
    are aligned at the origin) to the skip / output size; a map smaller than required raises
    ``ValueError`` (pad the input to a multiple of the output stride).

    The skip score layers start at zero (as in FCN), so a 16s/8s decoder starts out computing
    the coarser decoder's output. Only the layers the variant uses are created.

    forward(features: the 3 maps (N, in_channels[i], H_i, W_i) at strides ``strides``,
    output_size: (H, W)) -> logits (N, num_classes, H, W).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        variant: FCNVariant = "8s",
        strides: Sequence[int] = (8, 16, 32),
        upsampler: UpsamplerKind = "transposed",
    ) -> None:
        super().__init__()
        if variant not in FCN_VARIANTS:
            raise ValueError(f"variant must be one of {FCN_VARIANTS}, got {variant!r}")
        if len(in_channels) != 3 or len(strides) != 3:
            raise ValueError(
                f"in_channels and strides describe the 3 features at strides 8, 16, 32; got "
                f"{tuple(in_channels)} and {tuple(strides)}"
            )
        for fine, coarse in itertools.pairwise(strides):
            if fine < 1 or coarse % fine:
                raise ValueError(f"each stride must divide the next, got strides {tuple(strides)}")
        self.in_channels = tuple(in_channels)
        self.num_classes = num_classes
        self.variant = variant
        self.strides = tuple(strides)
        self.used = _USED_FEATURES[variant]
        self.score = nn.ModuleDict()
        for i in self.used:
            layer = nn.Conv2d(in_channels[i], num_classes, 1)
            if i != 2:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            self.score[f"score{FEATURE_STRIDES[i]}"] = layer
        self.fuse_up = nn.ModuleDict()
        for coarse, fine in zip(self.used[::-1][:-1], self.used[::-1][1:], strict=True):
            factor = strides[coarse] // strides[fine]
            if factor > 1:
                self.fuse_up[f"to{FEATURE_STRIDES[fine]}"] = make_upsampler(
                    upsampler, num_classes, num_classes, factor
                )
        final = strides[self.used[0]]
        self.final_up = (
            make_upsampler(upsampler, num_classes, num_classes, final)
            if final > 1
            else nn.Identity()
        )

    def forward(self, features: Sequence[Tensor], output_size: Sequence[int]) -> Tensor:
        if len(features) != 3:
            raise ValueError(
                f"FCNDecoder expects 3 feature maps (strides 8, 16, 32), got {len(features)}"
            )
        for i in self.used:
            if features[i].shape[1] != self.in_channels[i]:
                raise ValueError(
                    f"FCNDecoder: feature {i} (stride {self.strides[i]}) has "
                    f"{features[i].shape[1]} channels, expected {self.in_channels[i]}"
                )
        coarsest = self.used[-1]
        x = self.score[f"score{FEATURE_STRIDES[coarsest]}"](features[coarsest])
        for i in self.used[-2::-1]:
            skip = self.score[f"score{FEATURE_STRIDES[i]}"](features[i])
            key = f"to{FEATURE_STRIDES[i]}"
            if key in self.fuse_up:
                x = self.fuse_up[key](x)
            x = _crop_to(
                x, skip.shape[-2:], f"the upsampled scores fused with score{FEATURE_STRIDES[i]}"
            )
            x = x + skip
        x = self.final_up(x)
        return _crop_to(x, output_size, "the upsampled output")
