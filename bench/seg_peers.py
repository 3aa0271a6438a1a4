"""Peer segmentation networks (torchvision, segmentation-models-pytorch) behind our FCN's contract:
images (N, 3, H, W) float in [0, 1] -> logits (N, K, H, W), so that a peer trains and is scored by
the same ``SegmentationModule`` as our networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from blocks import IMAGENET_MEAN, IMAGENET_STD

LITE0 = "tf_efficientnet_lite0"


class PeerNetwork(nn.Module):
    """A peer network with our FCN's contract: the input is normalised with ``mean``/``std``, a
    torchvision ``{"out": logits}`` dictionary is unwrapped, and an input whose sides are not
    multiples of ``divisor`` is padded at the bottom and right by repeating its edge, the logits
    cropped back (as our FCN pads inside)."""

    def __init__(
        self,
        network: nn.Module,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        divisor: int = 1,
    ) -> None:
        super().__init__()
        self.network, self.divisor = network, divisor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), False)

    def forward(self, images: Tensor) -> Tensor:
        images = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        height, width = images.shape[-2:]
        pad = (0, -width % self.divisor, 0, -height % self.divisor)
        if any(pad):
            images = F.pad(images, pad, mode="replicate")
        out = self.network(images)
        out = out["out"] if isinstance(out, dict) else out
        return out[..., :height, :width] if any(pad) else out


def tv_fcn_resnet50(num_classes: int) -> PeerNetwork:
    """torchvision ``fcn_resnet50`` with random weights, no auxiliary head."""
    from torchvision.models.segmentation import fcn_resnet50

    return PeerNetwork(fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes))


def smp_lite0(architecture: str, num_classes: int) -> PeerNetwork:
    """smp ``Unet``/``FPN`` on timm's EfficientNet-Lite0 with the ImageNet weights our lite0 FCNs
    start from (checked loaded) and their normalisation (mean = std = 0.5)."""
    import segmentation_models_pytorch as smp

    from common.pretrained import resolve_encoder_weights

    network = getattr(smp, architecture)(f"tu-{LITE0}", encoder_weights=None, classes=num_classes)
    state = resolve_encoder_weights(LITE0, "imagenet").state_dict
    encoder = network.encoder.model  # smp's tu- encoders wrap a timm features_only model
    encoder.load_state_dict(state, strict=False)  # the classifier head is not in features_only
    check_weights(encoder, state, f"smp {architecture}")
    divisor = 32 if network.requires_divisible_input_shape else 1
    return PeerNetwork(network, mean=(0.5,) * 3, std=(0.5,) * 3, divisor=divisor)


def check_weights(module: nn.Module, state: dict[str, Tensor], what: str) -> None:
    """Raise unless every tensor of ``module`` equals the one of that name in ``state``."""
    loaded = module.state_dict()
    wrong = [key for key in loaded if key not in state or not torch.equal(loaded[key], state[key])]
    if wrong:
        raise RuntimeError(f"{len(wrong)} tensors of {what} differ from the weights: {wrong[:3]}")
