"""Checkpoints that are never half-written, and loading with errors that say what is wrong."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from upsample.core.io import atomic_path
from upsample.core.renamed import upgrade_class_paths
from upsample.core.trust import SAFE_GLOBALS, UntrustedFileError, check_hyperparameters, torch_load


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match the network it is loaded into."""


class UntrustedCheckpointError(CheckpointError, UntrustedFileError):
    """A checkpoint needs code to run to be read, and the user has not said it may
    (``--trust_checkpoint``, ``trust=True``); see ``upsample.core.trust``."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes to a temporary file and renames it into place, and
    reads without running code from the file (``load_checkpoint``; ``trust`` lifts that).

    An interruption while saving leaves the previous checkpoint intact and no partial file.
    Everything Lightning reads through its strategy goes through here: ``fit --ckpt_path``
    (resume), ``validate``/``test``/``predict --ckpt_path``.
    """

    def __init__(self, trust: bool = False) -> None:
        super().__init__()
        self.trust = trust

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Any | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        # Lightning's own ``weights_only`` choice is replaced by the toolkit's trust rule.
        return load_checkpoint(path, map_location=map_location or "cpu", trust=self.trust)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as temporary, open(temporary, "wb") as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())


def save_module_checkpoint(module: Any, path: str | Path) -> Path:
    """Write a LightningModule as ``fit`` writes its checkpoints (hyperparameters, state dict;
    atomically), without training it: a module built or changed in Python that the commands
    and loaders then read like any other checkpoint."""
    import lightning.pytorch as pl

    trainer = pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        plugins=[AtomicCheckpointIO()],
    )
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return Path(path)


def load_checkpoint(
    path: str | Path | IO[bytes],
    map_location: str | torch.device | Any = "cpu",
    trust: bool = False,
    upgrade: bool = True,
) -> dict[str, Any]:
    """Load a Lightning checkpoint dictionary (a file, or a binary stream named
    ``<file object>`` in errors) without running code from it.

    Without ``trust`` only tensors, containers, numbers, strings and paths are read
    (``upsample.core.trust.torch_load``); with it the file is unpickled in full and may run code.
    Class paths that an earlier version wrote are given as today's (:func:`upgrade_checkpoint`)
    unless ``upgrade`` is False.

    Raises:
        UntrustedCheckpointError: naming the file and the global it would call, when it needs
            more than that and ``trust`` is False; nothing in the file has run.
        CheckpointError: naming the file, when it is missing, unreadable, truncated or not a
            Lightning checkpoint (no ``state_dict``).
    """
    if isinstance(path, str | Path):
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
    name = path if isinstance(path, Path) else "<file object>"
    try:
        checkpoint = torch_load(path, map_location=map_location, trust=trust)
    except UntrustedFileError as error:
        raise UntrustedCheckpointError(str(error)) from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{name}: not a readable PyTorch checkpoint (corrupt or truncated?): {error}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        kind = type(checkpoint).__name__
        raise CheckpointError(
            f"{name}: expected a Lightning checkpoint with a 'state_dict', got {kind}"
        )
    if upgrade:
        upgrade_checkpoint(checkpoint)
    return checkpoint


def upgrade_checkpoint(checkpoint: dict[str, Any]) -> bool:
    """Map the class paths in a checkpoint's hyperparameters that an earlier version wrote to
    today's (``upsample.core.renamed``), in place; whether any changed."""
    changed = False
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if key in checkpoint:
            upgraded = upgrade_class_paths(checkpoint[key])
            changed |= upgraded is not checkpoint[key]
            checkpoint[key] = upgraded
    return changed


def check_named_classes(
    checkpoint: dict[str, Any], path: str | Path, module_class: type | None, trust: bool = False
) -> None:
    """Refuse a checkpoint whose hyperparameters name a class outside the trusted packages
    (``upsample.core.trust.check_hyperparameters``), before anything imports it.

    Raises:
        UntrustedCheckpointError: naming the file and the class.
    """
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, Mapping):
        return
    try:
        check_hyperparameters(hparams, path, module_class, trust)
    except UntrustedFileError as error:
        raise UntrustedCheckpointError(str(error)) from None


class SafeCheckpointLoading:
    """Mixin for LightningModules (listed before ``LightningModule``): ``load_from_checkpoint``
    reads the file without running code from it, and refuses a class that the hyperparameters
    name outside the trusted packages, unless ``trust=True`` (see ``upsample.core.trust``). A module
    that builds some of its arguments from the checkpoint overrides
    ``arguments_from_checkpoint``."""

    @classmethod
    def arguments_from_checkpoint(
        cls, checkpoint: dict[str, Any], source: str, trust: bool, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The keyword arguments of ``load_from_checkpoint`` given the checkpoint (already read
        and checked): here ``kwargs`` unchanged."""
        return kwargs

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path: str | Path | IO[bytes], *args: Any, trust: bool = False, **kwargs: Any
    ) -> Any:
        """Lightning's ``load_from_checkpoint`` with the toolkit's trust rule; ``trust=True``
        loads the file in full, running any code it holds.

        Raises:
            UntrustedCheckpointError: the file needs code to run, and ``trust`` is False.
            CheckpointError: the file is missing, corrupt or not a Lightning checkpoint.
        """
        if isinstance(checkpoint_path, str | Path):
            checkpoint = load_checkpoint(checkpoint_path, trust=trust, upgrade=False)
            source = str(checkpoint_path)
        else:  # a file object: read once, checked and loaded from the same bytes
            data = checkpoint_path.read()
            checkpoint = load_checkpoint(io.BytesIO(data), trust=trust, upgrade=False)
            checkpoint_path, source = io.BytesIO(data), "<file object>"
        if upgrade_checkpoint(checkpoint):
            # Lightning reads the file again: give it the upgraded dictionary to read instead
            checkpoint_path = io.BytesIO()
            torch.save(checkpoint, checkpoint_path)
            checkpoint_path.seek(0)
        check_named_classes(checkpoint, source, cls, trust)
        kwargs = cls.arguments_from_checkpoint(checkpoint, source, trust, kwargs)
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return super().load_from_checkpoint(  # type: ignore[misc]
                checkpoint_path, *args, weights_only=not trust, **kwargs
            )


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
