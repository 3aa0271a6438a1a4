"""OASIS (Schönfeld et al., ICLR 2021): label map to photo with a SPADE generator and a
segmentation discriminator.

The generator (``blocks.SPADEGenerator``) is an upsampling decoder whose normalisation layers
take their scale and bias from the label map pixel by pixel, with 3D noise beside the map so
that the photo varies with the seed. The discriminator (``blocks.UNetDiscriminator``) is a
segmenter of N + 1 classes, "fake" the extra one, trained with class-balanced cross-entropy and
LabelMix; the generator is trained to make every pixel read as its true class
(``gan.translation.oasis_losses``). Defaults are OASIS's: Adam with betas (0, 0.999), the two
time-scale rule (generator 1e-4, discriminator 4e-4), EMA 0.999, and no perceptual network;
``feature_loss_weight`` adds one (``gan.translation.feature_loss``: an ImageNet-pretrained
encoder's features, as SPADE trains with VGG's), which speeds up short runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gan.translation.feature_loss import FeatureLoss, frozen_encoder
from gan.translation.module import TranslationModule
from gan.translation.oasis_losses import (
    fake_loss,
    labelmix_loss,
    labelmix_mask,
    mix,
    segmentation_loss,
)
from gan.translation.paired_data import InputSpec
from upsample.blocks.fcn_discriminator import FCNDiscriminator
from upsample.blocks.spade import SpadeNorm
from upsample.blocks.spade_generator import SPADEGenerator, SpadeUpsampler
from upsample.blocks.unet_discriminator import OASIS_D_WIDTHS, UNetDiscriminator
from upsample.core.pretrained import build_pretrained_encoder
from upsample.core.seeding import seeded

#: hyperparameters that define the generator (``build_spade_generator``), by its argument names
SPADE_GENERATOR_KEYS = {
    "out_channels": "out_channels",
    "ngf": "ngf",
    "num_blocks": "num_blocks",
    "noise_channels": "noise_channels",
    "spade_hidden": "spade_hidden",
    "upsampler": "upsampler",
    "spade_norm": "norm",
    "spectral_norm": "spectral_norm",
}


def build_spade_generator(hparams: dict[str, Any]) -> SPADEGenerator:
    """The (untrained) SPADE generator that ``OASISModule`` hyperparameters describe."""
    spec = InputSpec.from_dict(hparams["input_spec"])
    arguments = {name: hparams[key] for key, name in SPADE_GENERATOR_KEYS.items()}
    return SPADEGenerator(spec.channels, **arguments)


def build_segmentation_discriminator(hparams: dict[str, Any]) -> nn.Module:
    """The (N + 1)-class segmenter that ``OASISModule`` hyperparameters describe: OASIS's U-Net,
    or an FCN on a (pretrained) encoder."""
    outputs = InputSpec.from_dict(hparams["input_spec"]).num_classes + 1
    if hparams["discriminator_encoder"] is None:
        return UNetDiscriminator(
            hparams["out_channels"],
            outputs,
            hparams["ndf"],
            hparams["discriminator_widths"],
            hparams["discriminator_decoder"],
        )
    encoder = build_pretrained_encoder(
        hparams["discriminator_encoder"], hparams["discriminator_weights"], hparams["out_channels"]
    )
    return FCNDiscriminator(encoder, outputs)


class OASISModule(TranslationModule):
    """OASIS training on (label map, photo) batches.

    Each batch: one discriminator step (segment the real photo, call the generated one fake,
    LabelMix weighted ``labelmix_weight``), one generator step (class-balanced cross-entropy of
    the discriminator's segmentation of the generated photo), an EMA update. Sample grids,
    ``val/l1``, FID/KID and the photos of ``gan translate`` come from the EMA generator
    (``gan.translation.module.TranslationModule``).

    Args:
        input_spec: what the input is (a label map: ``kind`` "labels"); the CLI takes it from
            the data module.
        out_channels: photo channels.
        ngf / num_blocks / noise_channels / spade_hidden / upsampler / spade_norm /
            spectral_norm: the generator (``blocks.SPADEGenerator``; ``spade_norm`` is its
            ``norm``).
        ndf / discriminator_widths / discriminator_decoder: the discriminator
            (``blocks.UNetDiscriminator``'s ``ndf``, ``widths`` and ``decoder_out``).
        discriminator_encoder / discriminator_weights: instead of that U-Net, an FCN-8s
            segmenter on this encoder (``blocks.FCNDiscriminator``; a ``blocks.build_encoder``
            name such as "timm-tf_efficientnet_lite0") starting from these weights ("imagenet":
            found offline first; None: random).
        labelmix_weight: weight of the LabelMix term (10 in the paper; 0 turns it off).
        feature_loss_weight: weight of the generator's perceptual loss (0: none, as OASIS).
        feature_encoder / feature_weights: its frozen encoder (a ``blocks.build_encoder`` name)
            and weights ("imagenet": found offline first by ``upsample.core.pretrained``).
        lr_g / lr_d / betas: Adam settings (OASIS's two time-scale defaults).
        num_sample_images: rows of the sample grid (0: none).
        kwargs: the other settings of ``gan.core.adversarial.AdversarialModule`` (``ema_decay``,
            ``channels_last``, ``fid_*``, ``kid_subset_size``, ``seed``, ``compile``); ``seed``
            seeds the noise and the LabelMix masks per step and rank (a resumed run draws the
            same), validation and the sample grid.
    """

    def __init__(
        self,
        input_spec: dict[str, Any] | None = None,
        out_channels: int = 3,
        ngf: int = 64,
        num_blocks: int = 6,
        noise_channels: int = 64,
        spade_hidden: int = 128,
        upsampler: SpadeUpsampler = "nearest",
        spade_norm: SpadeNorm = "batch",
        spectral_norm: bool = True,
        ndf: int = 128,
        discriminator_widths: list[int] | None = None,
        discriminator_decoder: int = 64,
        discriminator_encoder: str | None = None,
        discriminator_weights: str | None = "imagenet",
        labelmix_weight: float = 10.0,
        feature_loss_weight: float = 0.0,
        feature_encoder: str = "timm-tf_efficientnet_lite0",
        feature_weights: str | None = "imagenet",
        lr_g: float = 1e-4,
        lr_d: float = 4e-4,
        betas: tuple[float, float] = (0.0, 0.999),
        num_sample_images: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_spec, num_sample_images, lr_g=lr_g, lr_d=lr_d, betas=betas, **kwargs)
        if self.input_spec.kind != "labels":
            raise ValueError("OASIS translates label maps: data.input must be a label map")
        for name, weight in (("labelmix", labelmix_weight), ("feature_loss", feature_loss_weight)):
            if weight < 0:
                raise ValueError(f"model.{name}_weight must be >= 0, got {weight}")
        self.num_classes = self.input_spec.num_classes
        self.hparams["discriminator_widths"] = list(discriminator_widths or OASIS_D_WIDTHS)
        self.generator: nn.Module = build_spade_generator(self.hparams)
        self.discriminator: nn.Module = build_segmentation_discriminator(self.hparams)
        self._init_ema()
        self.feature_loss: FeatureLoss | None = None  # built when fitting starts

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.hparams.feature_loss_weight > 0 and self.feature_loss is None:
            encoder = frozen_encoder(self.hparams.feature_encoder, self.hparams.feature_weights)
            self.feature_loss = FeatureLoss(encoder).to(self.device)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        inputs, photos = self._memory_format(*batch)
        classes = inputs.argmax(1)  # void is the last channel: index num_classes
        with seeded(self._step_seed(), self.device):  # the noise and masks of this step
            fake = self._network("generator")(inputs)
            mask = labelmix_mask(classes, self.num_classes + 1)
        discriminator = self._network("discriminator")
        generated = fake.detach()
        # one pass over the three batches: neither discriminator normalises by batch statistics
        logits = discriminator(torch.cat([photos, generated, mix(mask, photos, generated)]))
        real_logits, fake_logits, mixed_logits = logits.chunk(3)
        loss_real = segmentation_loss(real_logits, classes, self.num_classes)
        loss_fake = fake_loss(fake_logits)
        loss_mix = labelmix_loss(mixed_logits, real_logits, fake_logits, mask)
        loss_d = loss_real + loss_fake + self.hparams.labelmix_weight * loss_mix
        self._discriminator_update(loss_d)

        loss_g = segmentation_loss(discriminator(fake), classes, self.num_classes)
        logs = {"labelmix": loss_mix.detach()}
        total_g = loss_g
        if self.feature_loss is not None:
            feature = self.feature_loss(fake, photos)
            total_g = loss_g + self.hparams.feature_loss_weight * feature
            logs["feature"] = feature.detach()
        self._generator_update(total_g)
        logs = {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": loss_real.detach(),
            "d_fake": loss_fake.detach(),
            **logs,
        }
        self._log_training(logs, photos.shape[0])
        return {"loss_d": logs["loss_d"], "loss_g": logs["loss_g"]}
