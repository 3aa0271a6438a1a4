"""A trained translator's generator from its checkpoint alone, whichever kind it is: pix2pix's
U-Net or OASIS's SPADE generator, told apart by their hyperparameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch import nn

from gan.dcgan.network_io import reject_given_generator
from gan.translation.oasis import SPADE_GENERATOR_KEYS, build_spade_generator
from gan.translation.paired_data import InputSpec
from gan.translation.pix2pix import GENERATOR_KEYS, build_generator
from upsample.core.checkpoint import (
    CheckpointError,
    hyperparameters,
    load_checkpoint,
    load_state_strict,
    sub_state_dict,
)

TranslatorKind = Literal["pix2pix", "oasis"]


def translator_kind(hparams: dict[str, Any]) -> TranslatorKind:
    """``oasis`` for an ``OASISModule`` checkpoint (its generator has noise channels), else
    ``pix2pix``."""
    return "oasis" if "noise_channels" in hparams else "pix2pix"


def load_translator(
    ckpt_path: str | Path, ema: bool = True, map_location: str = "cpu", trust: bool = False
) -> tuple[nn.Module, InputSpec]:
    """The trained generator of a pix2pix or OASIS checkpoint (evaluation mode) and its input
    spec. Its noise (pix2pix's dropout, OASIS's noise channels) is drawn from the global random
    generator: seed it (``upsample.core.seeding.seeded``) for repeatable photos.

    The file is read without running code from it unless ``trust`` (``upsample.core.trust``).

    Raises:
        UntrustedCheckpointError: the file needs code to run, and ``trust`` is False.
        CheckpointError: naming the file, when it is missing, corrupt, not a translator's
            checkpoint, or its weights do not fit the architecture.
    """
    checkpoint = load_checkpoint(ckpt_path, map_location=map_location, trust=trust)
    return translator_from_checkpoint(checkpoint, ckpt_path, ema)


def is_translator(checkpoint: dict[str, Any]) -> bool:
    """Whether a checkpoint is a translator's (pix2pix or OASIS): it records an input spec."""
    return "input_spec" in (checkpoint.get("hyper_parameters") or {})


def translator_from_checkpoint(
    checkpoint: dict[str, Any], ckpt_path: str | Path, ema: bool = True
) -> tuple[nn.Module, InputSpec]:
    """:func:`load_translator` of a checkpoint already read (and checked) from ``ckpt_path``."""
    hparams = hyperparameters(checkpoint, ckpt_path)
    reject_given_generator(hparams, ckpt_path)
    kind = translator_kind(hparams)
    keys = SPADE_GENERATOR_KEYS if kind == "oasis" else GENERATOR_KEYS
    missing = [key for key in ("input_spec", *keys) if key not in hparams]
    if missing:
        raise CheckpointError(
            f"{ckpt_path}: hyper_parameters lack {missing}; is this a translator's checkpoint "
            "(gan fit --config configs/gan/pix2pix_camvid.yaml or oasis_camvid.yaml)?"
        )
    build = build_spade_generator if kind == "oasis" else build_generator
    try:
        generator = build(hparams)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{ckpt_path}: cannot build its generator: {error}") from error
    prefix = "ema.module." if ema else "generator."
    weights = sub_state_dict(checkpoint["state_dict"], prefix)
    if not weights:
        raise CheckpointError(
            f"{ckpt_path}: no generator weights (keys '{prefix}*')"
            + ("; trained without EMA? use --no_ema" if ema else "")
        )
    load_state_strict(generator, weights, ckpt_path)
    return generator.eval(), InputSpec.from_dict(hparams["input_spec"])
