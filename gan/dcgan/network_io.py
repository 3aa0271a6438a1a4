"""Load a bare generator from a training checkpoint, for use outside Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan.dcgan.models import Generator
from upsample.core.checkpoint import (
    CheckpointError,
    hyperparameters,
    load_checkpoint,
    load_state_strict,
    sub_state_dict,
)


def reject_given_generator(hparams: dict[str, Any], path: str | Path) -> None:
    """Raise ``CheckpointError`` when the checkpoint's generator was a network handed to the
    Lightning module (its class named in ``hyper_parameters["generator"]``): only the caller
    knows how to build it."""
    if hparams.get("generator") is not None:
        raise CheckpointError(
            f"{path}: trained with a generator network given to the module "
            f"({hparams['generator']}), not the toolkit's own; build that network and load the "
            "checkpoint's 'ema.module.*' (or 'generator.*') weights into it"
        )


def generator_from_hparams(hparams: dict[str, Any], path: str | Path) -> Generator:
    """An untrained :class:`Generator` with the architecture saved in a checkpoint (its
    :meth:`Generator.config` among the module's hyperparameters)."""
    reject_given_generator(hparams, path)
    missing = [key for key in Generator.config_keys() if key not in hparams]
    if missing:
        raise CheckpointError(
            f"{path}: hyper_parameters lack {missing}; is this a GAN checkpoint of this toolkit?"
        )
    try:
        return Generator.from_config(hparams)
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: cannot build the generator it describes: {error}"
        ) from error


def load_generator(
    ckpt_path: str | Path, ema: bool = True, map_location: str = "cpu", trust: bool = False
) -> Generator:
    """The trained generator of a ``gan fit`` checkpoint, in evaluation mode.

    Args:
        ckpt_path: a checkpoint written by ``gan fit``.
        ema: the exponential-moving-average weights (what samples and FID use); False for the
            raw generator.
        map_location: device for the weights.
        trust: load the file in full, running any code it holds; by default it is read
            without running anything (``upsample.core.trust``).

    Returns:
        A plain ``nn.Module``: ``(N, nz)`` noise -> ``(N, C, S, S)`` images in [-1, 1]; its
        ``nz``, ``channels`` and ``image_size`` attributes describe it.

    Raises:
        UntrustedCheckpointError: naming the file and the global it would call, when it needs
            more than tensors, containers, numbers, strings and paths and ``trust`` is False.
        CheckpointError: naming the file, when it is missing, corrupt, not a GAN checkpoint, has
            no EMA weights while ``ema`` is True, or its weights do not fit the architecture.
    """
    checkpoint = load_checkpoint(ckpt_path, map_location=map_location, trust=trust)
    return generator_from_checkpoint(checkpoint, ckpt_path, ema)


def generator_from_checkpoint(
    checkpoint: dict[str, Any], ckpt_path: str | Path, ema: bool = True
) -> Generator:
    """:func:`load_generator` of a checkpoint already read (and checked) from ``ckpt_path``."""
    generator = generator_from_hparams(hyperparameters(checkpoint, ckpt_path), ckpt_path)
    state_dict = checkpoint["state_dict"]
    prefix = "ema.module." if ema else "generator."
    weights = sub_state_dict(state_dict, prefix)
    if not weights:
        if ema and sub_state_dict(state_dict, "generator."):
            raise CheckpointError(
                f"{ckpt_path}: no EMA generator in this checkpoint (trained with "
                "model.ema_decay null); load the raw generator instead (ema=False / --no-ema)"
            )
        raise CheckpointError(f"{ckpt_path}: no generator weights (keys '{prefix}*') found")
    load_state_strict(generator, weights, ckpt_path)
    return generator.eval()
