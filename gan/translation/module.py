"""What every translator's Lightning module shares (pix2pix, OASIS): the input spec taken from
the data module, translating with the EMA generator under a seed, the sample grid (input | output
| target) logged every epoch, and validation (L1 to the target, FID/KID on a schedule)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.utils import make_grid

from gan.core.adversarial import AdversarialModule
from gan.translation.paired_data import InputSpec
from upsample.core.logging import log_images
from upsample.core.seeding import rank_seed, seeded


class TranslationModule(AdversarialModule):
    """Base of the paired translators: (input, photo) batches, e.g. CamVid label maps -> photos.

    A subclass sets ``generator`` (``inputs (N, C_in, H, W) -> photos (N, out_channels, H, W)``
    in [-1, 1], its noise drawn from the global random generator) and ``discriminator``, calls
    :meth:`_init_ema` and writes ``training_step``.

    Args:
        input_spec: what the input is (``gan.translation.paired_data.InputSpec.to_dict()``);
            the CLI takes it from the data module.
        num_sample_images: rows of the sample grid (0: none).
        kwargs: the adversarial settings of ``gan.core.adversarial.AdversarialModule``.
    """

    def __init__(
        self, input_spec: dict[str, Any] | None = None, num_sample_images: int = 8, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if input_spec is None:
            raise ValueError(
                "model.input_spec is required (the CLI takes it from the data module; in Python "
                "pass gan.translation.paired_data.InputSpec(...).to_dict())"
            )
        self.input_spec = InputSpec.from_dict(dict(input_spec))
        self.hparams["input_spec"] = self.input_spec.to_dict()  # validated, plain lists
        self._samples: tuple[Tensor, Tensor] | None = None

    # ----------------------------------------------------------------------------- networks
    @torch.no_grad()
    def translate(self, inputs: Tensor, seed: int | None = None) -> Tensor:
        """Photos (N, C, H, W) in [-1, 1] from generator inputs with the sampling (EMA) generator
        in evaluation mode; ``seed`` fixes the noise."""
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

    # ----------------------------------------------------------------------------- samples
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
