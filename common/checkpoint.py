"""Checkpoints that are never half-written, and loading with errors that say what is wrong."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from common.io import atomic_path


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match the network it is loaded into."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes to a temporary file and renames it into place.

    An interruption while saving leaves the previous checkpoint intact and no partial file.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as temporary, open(temporary, "wb") as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a Lightning checkpoint dictionary.

    Raises:
        CheckpointError: naming the file, when it is missing, unreadable, truncated or not a
            Lightning checkpoint (no ``state_dict``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): {error}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        kind = type(checkpoint).__name__
        raise CheckpointError(
            f"{path}: expected a Lightning checkpoint with a 'state_dict', got {kind}"
        )
    return checkpoint


def hyperparameters(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``hyper_parameters`` saved by ``save_hyperparameters()``; an error names the file if
    they are absent."""
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict):
        raise CheckpointError(
            f"{path}: checkpoint has no hyper_parameters; was it written by this toolkit?"
        )
    return dict(hparams)


def sub_state_dict(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys under ``prefix`` (e.g. ``"net."``) with the prefix removed."""
    return {
        key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)
    }


def load_state_strict(
    network: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path
) -> None:
    """Load ``state_dict`` into ``network``; on any mismatch raise an error listing what differs."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs network {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong_shape:
            parts.append(f"shape mismatches {wrong_shape[:5]}")
        raise CheckpointError(f"{path}: checkpoint does not match the network: {'; '.join(parts)}")
    network.load_state_dict(state_dict)
