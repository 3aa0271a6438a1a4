"""Load the bare segmentation network from a training checkpoint, for use outside Lightning."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from common.checkpoint import (
    CheckpointError,
    hyperparameters,
    load_checkpoint,
    load_state_strict,
    sub_state_dict,
)
from seg.models import FCN, build_fcn

#: prefix of the network's parameters in the LightningModule's state dict.
NETWORK_PREFIX = "network."

#: SegmentationModule hyperparameters that define the network's architecture.
ARCHITECTURE_HPARAMS = (
    "encoder",
    "width",
    "upsampler",
    "in_channels",
    "mean",
    "std",
)
ATROUS_HPARAMS = (
    "output_stride",
    "context",
    "context_channels",
    "context_rates",
    "decoder_variant",
)


def network_from_hparams(hparams: Mapping[str, Any], pretrained: bool = True) -> FCN:
    """Build the FCN described by ``SegmentationModule`` hyperparameters.

    ``pretrained=False`` ignores ``encoder_weights`` (the weights then come from a checkpoint and
    nothing is read or downloaded); the input normalisation is the stored ``mean``/``std`` when
    the hyperparameters hold them (``SegmentationModule`` stores the resolved ones).
    """
    variant = hparams.get("variant", "fcn8s")
    kwargs = {key: hparams[key] for key in ARCHITECTURE_HPARAMS if key in hparams}
    if variant == "atrous":
        kwargs.update({key: hparams[key] for key in ATROUS_HPARAMS if key in hparams})
    if pretrained and hparams.get("encoder_weights"):
        kwargs["encoder_weights"] = hparams["encoder_weights"]
    return build_fcn(variant, int(hparams["num_classes"]), **kwargs)


def load_network_and_hparams(
    checkpoint_path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[FCN, dict[str, Any]]:
    """Like ``load_network`` but also return the checkpoint's hyperparameters."""
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path, map_location=map_location)
    hparams = hyperparameters(checkpoint, path)
    if "num_classes" not in hparams:
        raise CheckpointError(
            f"{path}: hyperparameters have no 'num_classes'; not a segmentation checkpoint "
            f"(keys: {sorted(hparams)[:10]})"
        )
    try:
        network = network_from_hparams(hparams, pretrained=False)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(
            f"{path}: cannot rebuild the network from its hyperparameters: {error}"
        ) from error
    state = sub_state_dict(checkpoint["state_dict"], NETWORK_PREFIX)
    if not state:
        raise CheckpointError(
            f"{path}: the state dict holds no '{NETWORK_PREFIX}*' keys; not a segmentation "
            "checkpoint"
        )
    load_state_strict(network, state, path)
    # What the dataset's classes are called and drawn in, for inference outputs (an exported
    # ONNX model carries the same in its metadata).
    network.class_names = hparams.get("class_names")
    network.palette = hparams.get("palette")
    return network.eval(), hparams


def load_network(checkpoint_path: str | Path, map_location: str | torch.device = "cpu") -> FCN:
    """The trained ``FCN`` (an ``nn.Module`` in eval mode) stored in a ``seg fit`` checkpoint.

    The architecture comes from the checkpoint's hyperparameters and the weights from its
    ``network.*`` entries (the prefix is removed), so no Lightning object is needed to use it:
    ``load_network("best.ckpt")(images)`` with images (N, 3, H, W) in [0, 1] gives logits
    (N, K, H, W). Its attributes ``class_names`` and ``palette`` (class colours) are the
    dataset's, when the checkpoint names them (None otherwise).

    Raises:
        CheckpointError: naming the file, when it is missing, corrupt, not a segmentation
            checkpoint, or its weights do not match the architecture (which keys or shapes).
    """
    return load_network_and_hparams(checkpoint_path, map_location)[0]
