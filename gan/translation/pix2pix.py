"""pix2pix (Isola et al., CVPR 2017): paired image-to-image translation as a conditional GAN.

The generator is the U-Net of ``blocks.UNetGenerator``, the discriminator the PatchGAN of
``blocks.PatchDiscriminator`` scoring (input, photo) pairs; the generator minimises the
adversarial loss plus ``l1_weight`` times the L1 distance to the target photo. EMA, the DDP-safe
update step, seeds, optimisers and FID/KID come from ``gan.core.adversarial.AdversarialModule``,
translating, samples and validation from ``gan.translation.module.TranslationModule``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan.translation.module import TranslationModule
from gan.translation.paired_data import InputSpec
from upsample.blocks import PatchDiscriminator, UNetGenerator
from upsample.blocks.upsample import UpsamplerKind
from upsample.core.seeding import seeded

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


class Pix2PixModule(TranslationModule):
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
        super().__init__(input_spec, num_sample_images, **kwargs)
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
