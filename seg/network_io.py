"""The segmentation network's description in checkpoints, and loading the bare network from a
training checkpoint for use outside Lightning."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seg.models import FCN, FCNConfig
from upsample.core.checkpoint import (
    CheckpointError,
    UntrustedCheckpointError,
    hyperparameters,
    load_checkpoint,
    load_state_strict,
    sub_state_dict,
)
from upsample.core.renamed import current_class_path
from upsample.core.trust import UntrustedFileError, check_class_path

#: prefix of the network's parameters in the LightningModule's state dict.
NETWORK_PREFIX = "network."
#: ``FCNConfig``'s fields: the FCN's architecture.
FCN_CONFIG_KEYS: tuple[str, ...] = tuple(field.name for field in fields(FCNConfig))


def network_description(network: nn.Module) -> dict[str, Any]:
    """What a checkpoint's ``network`` hyperparameter holds: for an FCN built from an
    ``FCNConfig`` the config with the normalisation in use; for any other module its class
    (``{"class_path": ...}``) and, when the module records them in an ``init_args`` attribute
    (``seg.peers``), its arguments. Either way the checkpoint alone rebuilds the network (its
    weights are in the state dict); a module without ``init_args`` cannot be rebuilt."""
    config = getattr(network, "config", None)
    if isinstance(network, FCN) and isinstance(config, FCNConfig):
        return asdict(config.resolved(network))
    description: dict[str, Any] = {
        "class_path": f"{type(network).__module__}.{type(network).__qualname__}"
    }
    init_args = getattr(network, "init_args", None)
    if isinstance(init_args, Mapping):
        description["init_args"] = dict(init_args)
    return description


def module_from_description(
    description: Mapping[str, Any],
    pretrained: bool,
    trust: bool = False,
    source: str | Path = "the checkpoint",
) -> nn.Module:
    """The module a ``{"class_path": ..., "init_args": {...}}`` description names, untrained;
    unless ``pretrained``, an ``encoder_weights`` argument is set to None (the weights come from
    the checkpoint: nothing is read or downloaded). Unless ``trust``, a class outside the
    trusted packages (``upsample.core.trust.TRUSTED_PACKAGES``) is refused before it is imported.

    Raises:
        UntrustedFileError: the class is outside the trusted packages (``source`` is named).
        ValueError: there are no ``init_args``, or the class is not an ``nn.Module``.
    """
    class_path = current_class_path(str(description["class_path"]))
    if "init_args" not in description:
        raise ValueError(
            f"the network was given as a module ({class_path}) without its arguments, so the "
            "checkpoint cannot rebuild it: build it yourself and load the state dict's "
            f"'{NETWORK_PREFIX}*' entries"
        )
    check_class_path(class_path, source, trust)
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{class_path} is not an nn.Module class")
    init_args = dict(description["init_args"] or {})
    if not pretrained and "encoder_weights" in init_args:
        init_args["encoder_weights"] = None
    return cls(**init_args)


def nest_network_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Checkpoint hyperparameters with the architecture under ``network``.

    Checkpoints written before the network had its own config hold the ``FCNConfig`` fields
    (``variant``, ``encoder``, ``mean``...) beside the module's own options; they move under
    ``network``. Current hyperparameters come back unchanged (as a new dict).
    """
    if "network" in hparams:
        return dict(hparams)
    nested = {key: value for key, value in hparams.items() if key not in FCN_CONFIG_KEYS}
    nested["network"] = {key: hparams[key] for key in FCN_CONFIG_KEYS if key in hparams}
    return nested


def network_from_hparams(
    hparams: Mapping[str, Any],
    pretrained: bool = False,
    trust: bool = False,
    source: str | Path = "the checkpoint",
) -> nn.Module:
    """Build the network that checkpoint hyperparameters (either layout) describe, untrained:
    an ``FCN`` from its config, or a module from its class path and arguments.

    ``pretrained=False`` (the default) ignores ``encoder_weights``: the weights then come from
    the checkpoint and nothing is read or downloaded. The input normalisation is the stored
    ``mean``/``std`` when present (``SegmentationModule`` stores the resolved ones).

    A module's class is imported only from the trusted packages unless ``trust``
    (``module_from_description``).

    Raises:
        UntrustedFileError: the class is outside the trusted packages.
        ValueError: the checkpoint's network was given as a module without its arguments.
    """
    description = nest_network_hparams(hparams)["network"]
    if "class_path" in description:
        return module_from_description(description, pretrained, trust, source)
    return FCNConfig(**description).build(int(hparams["num_classes"]), pretrained=pretrained)


def load_network_and_hparams(
    checkpoint_path: str | Path, map_location: str | torch.device = "cpu", trust: bool = False
) -> tuple[nn.Module, dict[str, Any]]:
    """Like ``load_network`` but also return the checkpoint's hyperparameters (with the
    architecture under ``network``, whichever layout the file has)."""
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path, map_location=map_location, trust=trust)
    hparams = nest_network_hparams(hyperparameters(checkpoint, path))
    if "num_classes" not in hparams:
        raise CheckpointError(
            f"{path}: hyperparameters have no 'num_classes'; not a segmentation checkpoint "
            f"(keys: {sorted(hparams)[:10]})"
        )
    try:
        network = network_from_hparams(hparams, trust=trust, source=path)
    except UntrustedFileError as error:
        raise UntrustedCheckpointError(str(error)) from None
    except (ValueError, TypeError, KeyError, ImportError) as error:
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


def load_network(
    checkpoint_path: str | Path, map_location: str | torch.device = "cpu", trust: bool = False
) -> nn.Module:
    """The trained network (an ``FCN``, or a module given by class such as a ``seg.peers``
    network) stored in a ``seg fit`` checkpoint, in eval mode.

    The architecture comes from the checkpoint's hyperparameters and the weights from its
    ``network.*`` entries (the prefix is removed), so no Lightning object is needed to use it:
    ``load_network("best.ckpt")(images)`` with images (N, 3, H, W) in [0, 1] gives logits
    (N, K, H, W). Its attributes ``class_names`` and ``palette`` (class colours) are the
    dataset's, when the checkpoint names them (None otherwise). Checkpoints of earlier versions
    (the architecture in flat hyperparameters) load too.

    The file is read without running code from it, and a network class is imported only from
    the trusted packages (``upsample.core.trust``); ``trust=True`` lifts both (the file may then run
    any code it holds).

    Raises:
        UntrustedCheckpointError: naming the file and what it would run, when it needs more
            than that and ``trust`` is False.
        CheckpointError: naming the file, when it is missing, corrupt, not a segmentation
            checkpoint, or its weights do not match the architecture (which keys or shapes).
    """
    return load_network_and_hparams(checkpoint_path, map_location, trust)[0]
