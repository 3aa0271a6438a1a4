"""The training augmentation as batched tensor operations, on whatever device the batch is on.

A batch holds each sample's source region (uint8, padded to a common size) and the parameters
drawn for it on the CPU (``seg.data.augment_params``). Geometry samples only the output crop:
per output row and column, the source coordinate of the scaled, padded, cropped and mirrored
image is computed, and the image is interpolated bilinearly (``grid_sample``) as OpenCV resizes
(pixel centres aligned, edges replicated); the mask takes the source pixel under the same centre
(OpenCV's ``INTER_NEAREST_EXACT``, in integer arithmetic), so labels stay on their pixels.
Outside the scaled image the image is 0 and the mask 255 (ignored). The photometric changes
follow albumentations' definitions (``ColorJitter``, ``RandomBrightnessContrast``,
``RandomGamma``, ``HueSaturationValue``, ``MotionBlur``, ``GaussNoise``) in float32 with values
0..255, clipped after each as uint8 images are; each applies to the samples it was drawn for only
(index tensors sized on the host: no device synchronisation). Gaussian noise comes from a
counter-based hash of (the sample's seed, the value's index), so it is the same on every device
and for every batch composition.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from seg.losses import IGNORE_INDEX

#: ITU-R BT.601 luma, as OpenCV's RGB2GRAY
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_MASK32 = 0xFFFFFFFF


def _axis_coordinates(length: int, params: dict[str, Tensor], axis: int) -> tuple[Tensor, ...]:
    """For output positions 0..length-1 along ``axis`` (0 rows, 1 columns), per sample: the
    bilinear source coordinate and the nearest source index, both relative to the shipped region
    (clamped into it), and whether the position lies on the scaled image (not on padding).
    Shapes (N, length)."""
    source = params["source"][:, axis, None]
    scaled = params["scaled"][:, axis, None]
    offset = params["offset"][:, axis, None]
    extent = params["extent"][:, axis, None]
    region = params["region"][:, axis, None]
    last = params["size"][:, axis, None] - 1
    position = torch.arange(length, device=source.device)[None, :]
    if axis == 1:  # mirror within the crop
        flip = params["flip"][:, None].bool()
        position = torch.where(flip, extent - 1 - position, position)
    scaled_position = offset + position
    valid = (scaled_position >= 0) & (scaled_position < scaled) & (position < extent)
    # OpenCV's INTER_LINEAR: pixel centres aligned, edge pixels replicated
    linear = (scaled_position.float() + 0.5) * (source.float() / scaled.float()) - 0.5
    linear = torch.minimum(linear.clamp(min=0), (source - 1).float()) - region.float()
    linear = torch.minimum(linear.clamp(min=0), last.float())
    # floor((position + 1/2) * source / scaled) in exact integer arithmetic
    nearest = torch.div((2 * scaled_position + 1) * source, 2 * scaled, rounding_mode="floor")
    nearest = (nearest.clamp(min=0).minimum(source - 1) - region).clamp(min=0).minimum(last)
    return linear, nearest, valid


def geometry(
    images: Tensor, masks: Tensor, params: dict[str, Tensor], out_size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Scale, pad, crop and mirror: images uint8 (N, 3, H, W) and masks (N, H, W) (each
    sample's region at the top left) -> images float32 (N, 3, h, w) in 0..255 (0 where padded)
    and masks uint8 (N, h, w) (255 where padded), ``(h, w) = out_size``."""
    count, _, height, width = images.shape
    row_linear, row_nearest, row_valid = _axis_coordinates(out_size[0], params, 0)
    col_linear, col_nearest, col_valid = _axis_coordinates(out_size[1], params, 1)
    # grid_sample's normalised coordinates (align_corners=False): -1 and 1 are the outer edges
    grid_x = ((2 * col_linear + 1) / width - 1)[:, None, :].expand(-1, out_size[0], -1)
    grid_y = ((2 * row_linear + 1) / height - 1)[:, :, None].expand(-1, -1, out_size[1])
    grid = torch.stack((grid_x, grid_y), dim=-1)
    pixels = F.grid_sample(
        images.to(torch.float32, memory_format=torch.contiguous_format),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    valid = row_valid[:, :, None] & col_valid[:, None, :]
    pixels.mul_(valid[:, None])
    batch = torch.arange(count, device=masks.device)[:, None]
    rows = masks.reshape(count * height, width).index_select(
        0, (row_nearest + batch * height).flatten()
    )
    columns = col_nearest[:, None, :].expand(-1, out_size[0], -1)
    labels = rows.reshape(count, out_size[0], width).gather(2, columns)
    return pixels, labels.masked_fill_(~valid, IGNORE_INDEX)


# ------------------------------------------------------------------------------ photometric
# Each takes float32 images (k, 3, h, w) in 0..255 and per-sample parameters (k,), returns the
# changed images clipped to 0..255.


def _per_sample(values: Tensor) -> Tensor:
    return values.float()[:, None, None, None]


def gray(images: Tensor) -> Tensor:
    """Luma (k, 1, h, w) of images (k, 3, h, w)."""
    red, green, blue = images.unbind(1)
    weights = GRAY_WEIGHTS
    return (red * weights[0] + green * weights[1] + blue * weights[2])[:, None]


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """ColorJitter brightness: ``x * factor``."""
    return images.mul(_per_sample(factor)).clamp_(0, 255)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """ColorJitter contrast: blend with the mean luma of the image."""
    mean = gray(images).round_().mean(dim=(1, 2, 3), keepdim=True)
    factor = _per_sample(factor)
    return images.mul(factor).add_(mean * (1 - factor)).clamp_(0, 255)


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """ColorJitter saturation: blend with each pixel's luma."""
    factor = _per_sample(factor)
    return images.mul(factor).add_(gray(images).round_().mul_(1 - factor)).clamp_(0, 255)


def rgb_to_hsv(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(hue in turns [0, 1), saturation [0, 1], value 0..255), each (k, h, w), of images
    (k, 3, h, w) in 0..255."""
    red, green, blue = images.unbind(1)
    value = torch.maximum(red, torch.maximum(green, blue))
    delta = value - torch.minimum(red, torch.minimum(green, blue))
    saturation = delta / value.clamp(min=1e-6)
    safe = delta.clamp(min=1e-6)
    hue = torch.where(
        value == red,
        (green - blue) / safe,
        torch.where(value == green, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    hue = hue.div_(6).remainder_(1.0).masked_fill_(delta <= 0, 0.0)
    return hue, saturation, value


def hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    """Images (k, 3, h, w) in 0..255 from hue (turns), saturation [0, 1] and value 0..255."""
    # 5, 3, 1 for red, green, blue (made on the device: copying host data there would wait)
    sector = 5 - 2 * torch.arange(3, device=hue.device, dtype=hue.dtype)[None, :, None, None]
    k = (hue[:, None] * 6 + sector).remainder_(6)
    ramp = torch.minimum(k, 4 - k).clamp_(0, 1)
    return ramp.mul_(-saturation[:, None]).add_(1).mul_(value[:, None])


def shift_hsv(images: Tensor, hue_shift: Tensor, sat_shift: Tensor | None = None) -> Tensor:
    """Rotate the hue by ``hue_shift`` turns and add ``sat_shift`` (of 255; None: the hue
    alone) to the saturation of coloured pixels (grey ones stay grey): ColorJitter hue,
    HueSaturationValue."""
    hue, saturation, value = rgb_to_hsv(images)
    hue = hue.add_(hue_shift.float()[:, None, None]).remainder_(1.0)
    if sat_shift is not None:
        shifted = (saturation + sat_shift.float()[:, None, None] / 255).clamp_(0, 1)
        saturation = torch.where(saturation > 0, shifted, saturation)
    return hsv_to_rgb(hue, saturation, value).clamp_(0, 255)


def brightness_contrast(images: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """RandomBrightnessContrast: ``x * alpha + beta``."""
    return images.mul(_per_sample(alpha)).add_(_per_sample(beta)).clamp_(0, 255)


def gamma_transform(images: Tensor, gamma: Tensor) -> Tensor:
    """RandomGamma: ``255 * (x / 255) ** gamma``."""
    return images.div(255).pow_(_per_sample(gamma)).mul_(255).clamp_(0, 255)


def motion_blur(images: Tensor, kernels: Tensor) -> Tensor:
    """MotionBlur: correlate each sample with its kernel (k, K, K), edges reflected (OpenCV's
    ``BORDER_REFLECT_101``)."""
    count, _, height, width = images.shape
    side = kernels.shape[-1]
    planes = F.pad(images.reshape(1, count * 3, height, width), [side // 2] * 4, mode="reflect")
    weights = kernels.float().repeat_interleave(3, dim=0)[:, None]
    blurred = F.conv2d(planes, weights, groups=count * 3)
    return blurred.reshape(count, 3, height, width).clamp_(0, 255)


def _hash32(values: Tensor) -> Tensor:
    """A 32-bit integer hash, in place (int64 tensors holding 0..2**32-1; multipliers below
    2**31, so products never leave int64)."""
    values.bitwise_and_(_MASK32)
    values.bitwise_xor_(values >> 16).mul_(0x7FEB352D).bitwise_and_(_MASK32)
    values.bitwise_xor_(values >> 15).mul_(0x5BD1E995).bitwise_and_(_MASK32)
    return values.bitwise_xor_(values >> 16)


def hashed_normal(seeds: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Standard normal float32 (k, *shape): value i of sample s depends only on (seeds[s], i)
    (Box-Muller on the two 16-bit halves of one hash; tails end at 4.9 standard deviations)."""
    count = math.prod(shape)
    index = torch.arange(count, device=seeds.device, dtype=torch.int64)[None, :]
    key = _hash32(seeds.long()[:, None] * 0x9E3779B1 + 0x632BE5AB)
    bits = _hash32(index + key * 0x10001)
    uniform = ((bits & 0xFFFF).float() + 0.5) / 65536
    angle = ((bits >> 16).float() + 0.5) * (2 * math.pi / 65536)
    normal = uniform.log_().mul_(-2).sqrt_().mul_(angle.cos_())
    return normal.reshape(seeds.shape[0], *shape)


def gauss_noise(images: Tensor, std: Tensor, seeds: Tensor) -> Tensor:
    """GaussNoise: add zero-mean noise of ``std`` (of 255), independent per value."""
    noise = hashed_normal(seeds, tuple(images.shape[1:]))
    return images.add(noise.mul_(_per_sample(std))).clamp_(0, 255)


def _apply(
    images: Tensor, index: Tensor, function: Callable[..., Tensor], *values: Tensor
) -> Tensor:
    """``function`` applied to the samples ``index`` only (sizes known on the host)."""
    if index.numel() == 0:
        return images
    if index.numel() == images.shape[0]:  # every sample (indices are sorted)
        return function(images, *values)
    changed = function(images.index_select(0, index), *(v.index_select(0, index) for v in values))
    return images.index_copy_(0, index, changed)  # in place: the batch is this module's own


JITTER_FUNCTIONS = {
    "brightness": adjust_brightness,
    "contrast": adjust_contrast,
    "saturation": adjust_saturation,
}


def photometric(images: Tensor, params: dict[str, Tensor], groups: dict[str, Tensor]) -> Tensor:
    """The drawn photometric changes, in the reference's order: ColorJitter's four operations in
    each sample's random order; or brightness/contrast, gamma, hue/saturation, then motion blur
    or noise (``road_photometric``). Images float32 (N, h, w, 3) in 0..255."""
    for position in range(4):
        for op in ("brightness", "contrast", "saturation", "hue"):
            index = groups[f"jitter{position}_{op}"]
            function = shift_hsv if op == "hue" else JITTER_FUNCTIONS[op]
            images = _apply(images, index, function, params[op])
    images = _apply(
        images, groups["brightness_contrast"], brightness_contrast, params["alpha"], params["beta"]
    )
    images = _apply(images, groups["gamma"], gamma_transform, params["gamma"])
    images = _apply(images, groups["hsv"], shift_hsv, params["hue_shift"], params["sat_shift"])
    images = _apply(images, groups["blur"], motion_blur, params["kernel"])
    return _apply(images, groups["noise"], gauss_noise, params["noise_std"], params["noise_seed"])


def augment_batch(
    images: Tensor,
    masks: Tensor,
    augment: dict[str, dict[str, Tensor]],
    out_size: tuple[int, int],
    cropped: bool = True,
) -> tuple[Tensor, Tensor]:
    """Augment a batch where it is (CPU or GPU).

    Args:
        images: uint8 (N, 3, H, W), each sample's source region at the top left.
        masks: uint8 (N, H, W), 255 = ignore.
        augment: ``{"params": ..., "groups": ...}`` as ``collate_params`` makes them (with
            ``region`` and ``size`` per sample), on the images' device.
        out_size: (h, w) of the output: the crop, or the batch's largest image without one.
        cropped: whether the spec crops. Without a crop, images smaller than ``out_size`` are
            padded with 0 after the photometric changes, as batching pads them after
            albumentations; the contrast change's mean luma still counts that padding.

    Returns:
        images uint8 (N, 3, h, w) (channels-last memory) and masks uint8 (N, h, w).
    """
    params, groups = augment["params"], augment["groups"]
    pixels, labels = geometry(images, masks, params, out_size)
    pixels = photometric(pixels, params, groups)
    if not cropped:
        extent = params["extent"]
        rows = torch.arange(out_size[0], device=pixels.device)[None, :] < extent[:, :1]
        cols = torch.arange(out_size[1], device=pixels.device)[None, :] < extent[:, 1:]
        pixels.mul_((rows[:, :, None] & cols[:, None, :])[:, None])
    return pixels.round_().to(torch.uint8, memory_format=torch.channels_last), labels
