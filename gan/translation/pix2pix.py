"""pix2pix (Isola et al., CVPR 2017): paired image-to-image translation as a conditional GAN.

The generator is the U-Net of ``blocks.UNetGenerator``, the discriminator the PatchGAN of
``blocks.PatchDiscriminator`` scoring (input, photo) pairs; the generator minimises the
adversarial loss plus ``l1_weight`` times the L1 distance to the target photo. EMA, the DDP-safe
update step, seeds, optimisers and FID/KID come from ``gan.core.adversarial.AdversarialModule``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.utils import make_grid

from gan.core.adversarial import AdversarialModule
from gan.dcgan.network_io import reject_given_generator
from gan.translation.paired_data import InputSpec
from upsample.blocks import PatchDiscriminator, UNetGenerator
from upsample.blocks.upsample import UpsamplerKind
from upsample.core.checkpoint import (
    CheckpointError,
    hyperparameters,
    load_checkpoint,
    load_state_strict,
    sub_state_dict,
)
from upsample.core.logging import log_images
from upsample.core.seeding import rank_seed

#: hyperparameters that define the generator (``build_generator``).
GENERATOR_KEYS = (
    "out_channels",
    "ngf",
    "depth",
    "upsampler",
    "dropout",
    "dropout_levels",
    "noise_at_inference",
)


def build_generator(hparams: dict[str, Any]) -> UNetGenerator:
    """The (untrained) U-Net that ``Pix2PixModule`` hyperparameters describe."""
    spec = InputSpec.from_dict(hparams["input_spec"])
    return UNetGenerator(spec.channels, **{key: hparams[key] for key in GENERATOR_KEYS})


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with the global random generators (dropout noise) seeded by ``seed`` and
    restore their state afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class Pix2PixModule(AdversarialModule):
    """pix2pix training: (input, photo) batches, e.g. CamVid label maps -> photos.

    Each batch: one PatchGAN step on (input, photo) and (input, generated) pairs (its loss
    halved, as in the paper), one generator step on the adversarial loss plus ``l1_weight`` x L1,
    an EMA update. The EMA generator makes the sample grids (input | output | target for the
    first ``num_sample_images`` validation pairs, every epoch), the validation L1 (``val/l1``,
    every epoch), FID/KID of generated vs real validation photos (``fid_every_n_epochs``) and
    the photos of ``gan translate``.

    Args:
        input_spec: what the input is (``gan.translation.paired_data.InputSpec.to_dict()``);
            the CLI takes it from the data module.
        out_channels: photo channels.
        ngf / depth / upsampler / dropout / dropout_levels / noise_at_inference: the U-Net
            (``blocks.UNetGenerator``).
        ndf / patch_size: the PatchGAN (``blocks.PatchDiscriminator``); ``patch_size`` is its
            receptive field, 70 as in the paper.
        generator / discriminator: networks to train instead of the U-Net and the PatchGAN
            (inputs ``(N, C_in, H, W)`` -> photos ``(N, out_channels, H, W)`` in [-1, 1]; an
            (input, photo) pair -> logits), e.g. a ``class_path`` on the command line; their
            classes are named in the hyperparameters and ``load_translator`` refuses them.
        l1_weight: weight of the L1 term (100 in the paper).
        num_sample_images: rows of the sample grid (0: none).
        kwargs: the adversarial settings of ``gan.core.adversarial.AdversarialModule`` (``loss``:
        ``bce``,
            the paper's, or ``hinge`` on every patch score; ``label_smoothing``, ``lr_g``,
            ``lr_d``, ``betas``, ``ema_decay``, ``channels_last``, ``fid_*``,
            ``kid_subset_size``, ``seed``); ``seed`` seeds the dropout noise per step and rank
            (a resumed run draws the same), of validation and of the sample grid.
    """

    def __init__(
        self,
        input_spec: dict[str, Any] | None = None,
        out_channels: int = 3,
        ngf: int = 64,
        depth: int = 8,
        upsampler: UpsamplerKind = "transposed",
        dropout: float = 0.5,
        dropout_levels: int = 3,
        noise_at_inference: bool = True,
        ndf: int = 64,
        patch_size: int = 70,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        l1_weight: float = 100.0,
        num_sample_images: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if input_spec is None:
            raise ValueError(
                "model.input_spec is required (the CLI takes it from the data module; in Python "
                "pass gan.translation.paired_data.InputSpec(...).to_dict())"
            )
        self.input_spec = InputSpec.from_dict(dict(input_spec))
        self.hparams["input_spec"] = self.input_spec.to_dict()  # validated, plain lists
        if l1_weight < 0:
            raise ValueError(f"model.l1_weight must be >= 0, got {l1_weight}")
        if generator is None:
            generator = build_generator(self.hparams)
        else:
            self._note_given("generator", generator)
        if discriminator is None:
            discriminator = PatchDiscriminator(
                self.input_spec.channels + out_channels, ndf, patch_size
            )
        else:
            self._note_given("discriminator", discriminator)
        self.generator, self.discriminator = generator, discriminator
        self._init_ema()
        self._samples: tuple[Tensor, Tensor] | None = None

    # ----------------------------------------------------------------------------- networks
    @torch.no_grad()
    def translate(self, inputs: Tensor, seed: int | None = None) -> Tensor:
        """Photos (N, C, H, W) in [-1, 1] from generator inputs with the sampling (EMA) generator
        in evaluation mode; ``seed`` fixes the dropout noise."""
        seed = self.hparams.seed if seed is None else seed
        with self._eval_mode(self.sampling_generator) as generator, seeded(seed, self.device):
            return generator(inputs.to(self.device)).float()

    def forward(self, inputs: Tensor) -> Tensor:
        """Same as :meth:`translate`."""
        return self.translate(inputs)

    def _memory_format(self, *tensors: Tensor) -> list[Tensor]:
        if not self.hparams.channels_last:
            return list(tensors)
        return [t.contiguous(memory_format=torch.channels_last) for t in tensors]

    # ----------------------------------------------------------------------------- training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        inputs, photos = self._memory_format(*batch)
        with seeded(self._step_seed(), self.device):  # the dropout noise of this step
            fake = self._network("generator")(inputs)
        l1 = F.l1_loss(fake.float(), photos.float())
        return self._adversarial_step(
            torch.cat([inputs, photos], dim=1),
            torch.cat([inputs, fake], dim=1),
            extra_generator_loss=self.hparams.l1_weight * l1,
            discriminator_weight=0.5,  # as in the paper: D learns half as fast as G
            extra_logs={"l1": l1.detach()},
        )

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams.num_sample_images and hasattr(datamodule, "sample_batch"):
            self._samples = datamodule.sample_batch(self.hparams.num_sample_images)

    def on_train_epoch_end(self) -> None:
        if self._samples is None:
            return
        # every rank makes the grid (no collective); rank 0 writes it
        log_images(self.trainer, "samples", self.sample_grid(*self._samples).unsqueeze(0))

    def sample_grid(self, inputs: Tensor, photos: Tensor) -> Tensor:
        """Rows of input | output | target as one image ``(3, H, W)`` in [0, 1]."""
        fake = self.translate(inputs).cpu()
        panels = torch.stack(
            [self.input_spec.to_rgb(inputs.cpu()), fake.add(1).div(2), photos.add(1).div(2)],
            dim=1,
        ).flatten(0, 1)
        return make_grid(panels.clamp(0, 1), nrow=3, padding=2, pad_value=1.0)

    # ---------------------------------------------------------------------------- validation
    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        inputs, photos = batch
        fake = self.translate(
            inputs, seed=rank_seed(self.hparams.seed, batch_idx, self.global_rank)
        )
        self.log(
            "val/l1",
            F.l1_loss(fake, photos.float()),
            on_epoch=True,
            sync_dist=True,
            batch_size=photos.shape[0],
        )
        if self.fid.active:
            self.fid.update(photos, fake)


def load_translator(
    ckpt_path: str | Path, ema: bool = True, map_location: str = "cpu", trust: bool = False
) -> tuple[UNetGenerator, InputSpec]:
    """The trained generator of a pix2pix checkpoint (evaluation mode) and its input spec.

    The file is read without running code from it unless ``trust`` (``upsample.core.trust``).

    Raises:
        UntrustedCheckpointError: the file needs code to run, and ``trust`` is False.
        CheckpointError: naming the file, when it is missing, corrupt, not a pix2pix checkpoint,
            or its weights do not fit the architecture.
    """
    checkpoint = load_checkpoint(ckpt_path, map_location=map_location, trust=trust)
    hparams = hyperparameters(checkpoint, ckpt_path)
    reject_given_generator(hparams, ckpt_path)
    missing = [key for key in ("input_spec", *GENERATOR_KEYS) if key not in hparams]
    if missing:
        raise CheckpointError(
            f"{ckpt_path}: hyper_parameters lack {missing}; is this a pix2pix checkpoint "
            "(gan fit --config configs/gan/pix2pix_camvid.yaml)?"
        )
    try:
        generator = build_generator(hparams)
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
