"""The DCGAN LightningModule: alternating D / G updates, EMA generator, sample grids, FID/KID."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.utils import make_grid

from gan.core.adversarial import AdversarialModule
from gan.dcgan.models import Generator, build_discriminator
from upsample.blocks.generator import ImageSize
from upsample.blocks.upsample import UpsamplerKind
from upsample.core.logging import log_images


class GANModule(AdversarialModule):
    """DCGAN training with manual optimisation.

    Each training batch: one discriminator step on real and generated images, then one generator
    step through the updated discriminator, then an EMA update of the generator. The EMA copy
    (``ema.module``; the raw generator when ``ema_decay`` is None) makes the sample grids, FID
    and ``gan sample`` images.

    Args:
        nz: noise dimension.
        ngf / ndf: base widths of the generator / discriminator.
        discriminator_encoder: None for the DCGAN discriminator, or an encoder name
            (``blocks.build_encoder``: "timm-tf_efficientnet_lite0", ...) whose deepest feature
            is scored (``gan.dcgan.models.EncoderDiscriminator``); ``ndf`` is then unused.
        discriminator_weights: that encoder's weights: "imagenet" or a weight file for timm
            encoders (found offline first, see ``upsample.core.pretrained``), None = random.
        channels / image_size: image shape; the CLI links them to ``data.channels`` /
            ``data.image_size``.
        upsampler: ``transposed`` (DCGAN), ``resize_conv`` or ``pixel_shuffle``.
        generator: a generator network to train instead of the DCGAN ``Generator`` that
            ``nz`` / ``ngf`` / ``upsampler`` describe: any module mapping noise ``(N, nz)`` to
            images ``(N, channels, image_size, image_size)`` in [-1, 1], with an ``nz``
            attribute (its noise size; ``nz`` is then taken from it). On the command line a
            ``class_path`` with ``init_args``. A ``gan.dcgan.models.Generator`` is saved by its
            config, which ``load_generator`` rebuilds; any other class is recorded by name
            (``hyper_parameters["generator"]``) and built by the caller.
        discriminator: a discriminator network to train instead of the one that ``ndf`` /
            ``discriminator_encoder`` describe: images -> one logit per image ``(N,)``.
        spectral_norm: the DCGAN discriminator with spectral normalisation instead of batch
            norm (SNGAN's critic; with ``loss: hinge`` its recipe).
        discriminator_steps: discriminator steps per generator step (StudioGAN's DCGAN and
            SNGAN take 2 and 5): the generator and the EMA are updated on every k-th batch,
            the discriminator on every batch.
        num_sample_images: size of the fixed-noise sample grid logged every epoch (0: none).
        kwargs: the adversarial settings of :class:`AdversarialModule` (``loss``,
            ``label_smoothing``, ``lr_g``, ``lr_d``, ``betas``, ``ema_decay``,
            ``channels_last``, ``fid_*``, ``kid_subset_size``, ``seed``); ``seed`` also seeds
            the fixed sample noise.
    """

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        ndf: int = 64,
        discriminator_encoder: str | None = None,
        discriminator_weights: str | None = None,
        channels: int = 1,
        image_size: ImageSize = 32,
        upsampler: UpsamplerKind = "transposed",
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        spectral_norm: bool = False,
        discriminator_steps: int = 1,
        num_sample_images: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if discriminator_steps < 1:
            raise ValueError(f"model.discriminator_steps must be >= 1, got {discriminator_steps}")
        if generator is None:
            generator = Generator(nz, ngf, channels, image_size, upsampler)
        elif isinstance(generator, Generator):  # described in full by its config
            self.hparams.update(generator.config())
        else:
            self.hparams["nz"] = _noise_size(generator)
            self._note_given("generator", generator)
        nz = self.hparams.nz
        if discriminator is None:
            discriminator = build_discriminator(
                ndf,
                channels,
                image_size,
                discriminator_encoder,
                discriminator_weights,
                spectral_norm,
            )
        else:
            self._note_given("discriminator", discriminator)
        self.generator, self.discriminator = generator, discriminator
        self._init_ema()
        seeded = torch.Generator().manual_seed(self.hparams.seed)
        fixed = torch.randn(num_sample_images, nz, generator=seeded)
        self.register_buffer("fixed_noise", fixed)

    # ----------------------------------------------------------------------------- networks
    @torch.no_grad()
    def generate(self, noise: Tensor) -> Tensor:
        """Images ``(N, C, S, S)`` in [-1, 1] from noise ``(N, nz)`` with the sampling generator
        in evaluation mode (batch-norm running statistics)."""
        with self._eval_mode(self.sampling_generator) as generator:
            return generator(noise.to(self.device)).float()

    def forward(self, noise: Tensor) -> Tensor:
        """Same as :meth:`generate`."""
        return self.generate(noise)

    # ----------------------------------------------------------------------------- training
    def _training_noise(self, batch_size: int) -> Tensor:
        """Noise that depends only on (seed, batch number, rank): a resumed run draws the same."""
        generator = torch.Generator(device=self.device).manual_seed(self._step_seed())
        return torch.randn(batch_size, self.hparams.nz, generator=generator, device=self.device)

    def training_step(self, batch: Tensor, batch_idx: int) -> dict[str, Tensor]:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        # counted over the run (not the epoch), so that a resumed run keeps the same turns
        batch_number = self.trainer.fit_loop.total_batch_idx if self._trainer else batch_idx
        generator_turn = (batch_number + 1) % self.hparams.discriminator_steps == 0
        with torch.set_grad_enabled(generator_turn):
            fake = self._network("generator")(self._training_noise(real.shape[0]))
        return self._adversarial_step(real, fake, generator_turn=generator_turn)

    def on_train_epoch_end(self) -> None:
        if not self.hparams.num_sample_images:
            return
        # every rank calls: log_images agrees on the run folder collectively, rank 0 writes
        log_images(self.trainer, "samples", self.sample_grid().unsqueeze(0))

    def sample_grid(self) -> Tensor:
        """The fixed-noise samples as one grid image ``(3, H, W)`` in [0, 1]."""
        images = self.generate(self.fixed_noise).cpu().add(1).div(2).clamp(0, 1)
        nrow = max(1, math.isqrt(images.shape[0]))
        return make_grid(images, nrow=nrow, padding=2, pad_value=1.0)

    # ----------------------------------------------------------------------------- FID / KID
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        if not self.fid.active:
            return
        real = batch[0] if isinstance(batch, list | tuple) else batch
        noise = self.fid.noise(
            real.shape[0], self.hparams.nz, self.global_rank, self.trainer.world_size
        )
        self.fid.update(real, self.generate(noise))


def _noise_size(generator: nn.Module) -> int:
    nz = getattr(generator, "nz", None)
    if not isinstance(nz, int):
        raise ValueError(
            f"a generator given to GANModule needs an int attribute nz (its noise size); "
            f"{type(generator).__qualname__} has {nz!r}"
        )
    return nz
