"""Peer segmentation networks (segmentation-models-pytorch, torchvision) behind the FCN's contract,
so that a peer trains, is tested and predicts through the same ``SegmentationModule``, CLI and
``load_network`` as the toolkit's FCNs.

The contract: images (N, 3, H, W) float in [0, 1] -> logits (N, num_classes, H, W) for any H, W.
In a config (``num_classes`` must be given: it is not linked into a module's arguments)::

    model:
      network:
        class_path: seg.peers.SmpNetwork
        init_args: {num_classes: 11, architecture: FPN, encoder: tf_efficientnet_lite0}

smp is an optional dependency: ``pip install -c constraints.txt -e ".[bench]"``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks import IMAGENET_MEAN, IMAGENET_STD


class PeerNetwork(nn.Module):
    """Wraps a network with the FCN's contract: the input is normalised with ``mean``/``std``,
    a torchvision ``{"out": logits}`` dictionary is unwrapped, and an input whose sides are not
    multiples of ``divisor`` is padded at the bottom and right by repeating its edge, the logits
    cropped back (as the FCN pads inside).

    (N, 3, H, W) in [0, 1] -> (N, K, H, W).
    """

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


class SmpNetwork(PeerNetwork):
    """An smp ``architecture`` (``Unet``, ``FPN``, ``DeepLabV3Plus``...) on the timm encoder
    ``encoder`` (smp's ``tu-<encoder>``), with the ImageNet weights the toolkit's own timm
    encoders start from (``upsample.core.pretrained.resolve_encoder_weights``: offline first,
    checked loaded) and the normalisation of timm's pretrained configuration.

    ``init_args`` records the arguments, so that a checkpoint rebuilds the network.
    """

    def __init__(
        self,
        num_classes: int,
        architecture: str = "Unet",
        encoder: str = "tf_efficientnet_lite0",
        encoder_weights: str | None = "imagenet",
    ) -> None:
        import segmentation_models_pytorch as smp

        builder = getattr(smp, architecture, None)
        if not isinstance(builder, type) or not issubclass(builder, nn.Module):
            raise ValueError(
                f"architecture {architecture!r} is not a segmentation-models-pytorch model "
                "(e.g. Unet, FPN, DeepLabV3Plus)"
            )
        network = builder(f"tu-{encoder}", encoder_weights=None, classes=num_classes)
        timm_model = network.encoder.model  # smp's tu- encoders wrap a timm features_only model
        if encoder_weights is not None:
            load_timm_weights(timm_model, encoder, encoder_weights)
        config = getattr(timm_model, "pretrained_cfg", None) or {}
        divisor = 32 if getattr(network, "requires_divisible_input_shape", True) else 1
        super().__init__(
            network,
            mean=tuple(config.get("mean", IMAGENET_MEAN)),
            std=tuple(config.get("std", IMAGENET_STD)),
            divisor=divisor,
        )
        self.init_args: dict[str, Any] = {
            "num_classes": num_classes,
            "architecture": architecture,
            "encoder": encoder,
            "encoder_weights": encoder_weights,
        }


class TorchvisionNetwork(PeerNetwork):
    """A torchvision segmentation model by name (``fcn_resnet50``, ``deeplabv3_resnet50``...),
    from scratch (no weights are downloaded), without its auxiliary head; ImageNet
    normalisation.

    ``init_args`` records the arguments, so that a checkpoint rebuilds the network.
    """

    def __init__(self, num_classes: int, name: str = "fcn_resnet50") -> None:
        from torchvision.models import get_model

        network = get_model(name, weights=None, weights_backbone=None, num_classes=num_classes)
        super().__init__(network)
        self.init_args: dict[str, Any] = {"num_classes": num_classes, "name": name}


def load_timm_weights(model: nn.Module, model_name: str, weights: str) -> None:
    """Load ``weights`` ("imagenet" or a file) of timm model ``model_name`` into ``model`` (a
    timm model, or its ``features_only`` form, which lacks the classifier).

    Raises:
        RuntimeError: naming the tensors, when any tensor of ``model`` is not in the weights or
            differs from them after loading.
    """
    from upsample.core.pretrained import resolve_encoder_weights

    state = resolve_encoder_weights(model_name, weights).state_dict
    model.load_state_dict(state, strict=False)  # a features_only model has no classifier
    loaded = model.state_dict()
    wrong = [key for key in loaded if key not in state or not torch.equal(loaded[key], state[key])]
    if wrong:
        raise RuntimeError(
            f"{len(wrong)} tensors of {model_name} differ from its {weights} weights: {wrong[:3]}"
        )
