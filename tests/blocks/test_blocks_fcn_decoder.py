"""FCN decoder: output size for every variant, upsampler and atrous strides; clear errors."""

import pytest
import torch

from upsample.blocks import FCNDecoder, ResNetEncoder, VGGEncoder

TINY_VGG = {"widths": (4, 4, 8, 8, 8), "depths": (1, 1, 1, 1, 1)}


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("upsampler", ["transposed", "resize_conv", "pixel_shuffle"])
def test_output_size_for_every_variant(variant: str, upsampler: str) -> None:
    encoder = VGGEncoder(in_channels=1, **TINY_VGG)
    decoder = FCNDecoder(encoder.out_channels[1:], 5, variant, encoder.strides[1:], upsampler)
    x = torch.randn(2, 1, 64, 96)
    logits = decoder(encoder(x)[1:], x.shape[-2:])
    assert logits.shape == (2, 5, 64, 96)
    logits.square().mean().backward()
    for name, p in decoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_atrous_strides(output_stride: int, variant: str) -> None:
    encoder = ResNetEncoder(in_channels=1, base_width=4, output_stride=output_stride)
    decoder = FCNDecoder(encoder.out_channels[1:], 3, variant, encoder.strides[1:])
    # no upsampling between features of equal stride
    assert all(up.scale > 1 for up in decoder.fuse_up.values()), (
        "an upsampler was created between equal strides"
    )
    if output_stride == 8:
        assert len(decoder.fuse_up) == 0
        assert decoder.final_up.scale == 8
    x = torch.randn(2, 1, 97, 131)  # ceil sizes: upsampled maps are larger, then cropped
    logits = decoder(encoder(x)[1:], x.shape[-2:])
    assert logits.shape == (2, 3, 97, 131)


def test_only_used_layers_are_created() -> None:
    decoder = FCNDecoder((4, 8, 16), 3, "32s")
    assert set(decoder.score) == {"score32"}
    assert len(decoder.fuse_up) == 0 and decoder.final_up.scale == 32
    decoder = FCNDecoder((4, 8, 16), 3, "8s")
    assert set(decoder.score) == {"score8", "score16", "score32"}
    assert set(decoder.fuse_up) == {"to16", "to8"}
    # skip score layers start at zero, as in FCN
    assert decoder.score["score8"].weight.abs().max() == 0


def test_too_small_output_raises_clearly() -> None:
    encoder = VGGEncoder(in_channels=1, **TINY_VGG)  # floor sizes: 97 -> 3 at stride 32
    decoder = FCNDecoder(encoder.out_channels[1:], 3, "32s")
    x = torch.randn(1, 1, 97, 131)
    with pytest.raises(ValueError, match=r"96x128, smaller than the required 97x131.*pad"):
        decoder(encoder(x)[1:], x.shape[-2:])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="variant"):
        FCNDecoder((4, 8, 16), 3, "4s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divide"):
        FCNDecoder((4, 8, 16), 3, "8s", strides=(8, 12, 32))
    decoder = FCNDecoder((4, 8, 16), 3, "8s")
    with pytest.raises(ValueError, match="3 feature maps"):
        decoder([torch.randn(1, 4, 8, 8)], (64, 64))
    with pytest.raises(ValueError, match="channels"):
        decoder(
            [torch.randn(1, 5, 8, 8), torch.randn(1, 8, 4, 4), torch.randn(1, 16, 2, 2)], (64, 64)
        )
