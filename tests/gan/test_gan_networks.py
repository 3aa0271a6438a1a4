"""Networks reach GANModule as networks: a checkpoint of the earlier flat layout still loads, a
given generator/discriminator trains through the same modules, the optimiser factory and the
seed rules keep their committed values."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from gan.core.optimizers import adversarial_optimizers
from gan.dcgan.models import Generator
from gan.dcgan.module import GANModule
from gan.dcgan.network_io import load_generator
from gan.translation.loading import load_translator
from gan.translation.paired_data import InputSpec
from gan.translation.pix2pix import Pix2PixModule
from upsample.core.checkpoint import CheckpointError, load_checkpoint, sub_state_dict
from upsample.core.seeding import mix_seed, noise_for_indices, rank_seed, torch_seed

#: ``last.ckpt`` of a 4-step ``gan fit`` (nz 8, ngf/ndf 4, resize-conv upsampler, EMA 0.9, 32x32
#: RGB) written before networks could be handed to the module: flat architecture keys.
EARLIER_CHECKPOINT = Path(__file__).parent / "fixtures" / "dcgan_v1_resize_conv.ckpt"


def test_a_checkpoint_of_the_earlier_layout_loads_with_the_checkpoint_alone() -> None:
    generator = load_generator(EARLIER_CHECKPOINT)
    assert (generator.nz, generator.channels, generator.image_size) == (8, 3, 32)
    assert generator.config() == {
        "nz": 8,
        "ngf": 4,
        "channels": 3,
        "image_size": 32,
        "upsampler": "resize_conv",
    }
    ema = sub_state_dict(load_checkpoint(EARLIER_CHECKPOINT)["state_dict"], "ema.module.")
    for key, value in generator.state_dict().items():
        assert torch.equal(value, ema[key]), key
    assert load_generator(EARLIER_CHECKPOINT, ema=False).state_dict().keys() == ema.keys()
    module = GANModule.load_from_checkpoint(EARLIER_CHECKPOINT, map_location="cpu")
    assert module.hparams.upsampler == "resize_conv" and "generator" not in module.hparams


class TinyGenerator(nn.Module):
    """Noise (N, nz) -> images (N, 1, 8, 8) in [-1, 1], with the ``nz`` attribute GANModule
    reads."""

    def __init__(self, nz: int = 3) -> None:
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(nn.Linear(nz, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise.flatten(1))


def _fit(module: GANModule, root: Path) -> pl.Trainer:
    images = torch.rand(8, 1, 8, 8) * 2 - 1
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,  # optimiser steps: two batches
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    trainer.fit(module, DataLoader(images, batch_size=4))
    return trainer


def test_a_given_generator_and_discriminator_train_through_the_module(tmp_path: Path) -> None:
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0))
    module = GANModule(
        nz=100,  # ignored: the given generator's nz counts
        generator=TinyGenerator(nz=3),
        discriminator=discriminator,
        num_sample_images=2,
        ema_decay=None,
    )
    assert module.hparams.nz == 3 and module.fixed_noise.shape == (2, 3)
    assert module.hparams.generator == f"{__name__}.TinyGenerator"
    assert module.hparams.discriminator == "torch.nn.modules.container.Sequential"
    before = [p.detach().clone() for p in module.generator.parameters()]
    trainer = _fit(module, tmp_path)
    assert trainer.global_step == 4  # two batches, a step of each optimiser in each
    after = list(module.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    trainer.save_checkpoint(tmp_path / "given.ckpt")
    with pytest.raises(CheckpointError, match="TinyGenerator"):
        load_generator(tmp_path / "given.ckpt", ema=False)


def test_a_given_dcgan_generator_is_saved_by_its_config(tmp_path: Path) -> None:
    given = Generator(nz=5, ngf=4, channels=1, image_size=32, upsampler="pixel_shuffle")
    module = GANModule(ngf=64, generator=given, ndf=4, num_sample_images=0, ema_decay=None)
    assert module.hparams.nz == 5 and module.hparams.upsampler == "pixel_shuffle"
    trainer = pl.Trainer(accelerator="cpu", logger=False, default_root_dir=tmp_path)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "dcgan.ckpt")
    loaded = load_generator(tmp_path / "dcgan.ckpt", ema=False)
    assert loaded.config() == given.config()
    for key, value in given.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_optimiser_factory_has_the_dcgan_settings_and_serves_the_module() -> None:
    generator, discriminator = nn.Linear(2, 2), nn.Linear(2, 1)
    optimizer_g, optimizer_d = adversarial_optimizers(generator, discriminator, lr_d=1e-4)
    assert optimizer_g.defaults["lr"] == 2e-4 and optimizer_d.defaults["lr"] == 1e-4
    assert optimizer_g.defaults["betas"] == optimizer_d.defaults["betas"] == (0.5, 0.999)
    assert optimizer_g.param_groups[0]["params"][0] is generator.weight
    module = GANModule(nz=4, ngf=4, ndf=4, num_sample_images=0, betas=[0.0, 0.9])
    optimizers = module.configure_optimizers()
    assert [o.defaults["betas"] for o in optimizers] == [(0.0, 0.9)] * 2


def test_seed_rules_keep_their_committed_values() -> None:
    assert mix_seed(7, 11) == 7 * 1_000_003 + 11
    assert rank_seed(7, 11, 1) == (7 * 1_000_003 + 11) * 8191 + 1
    assert torch_seed(2**63 + 5) == 5
    noise = noise_for_indices([4, 2], nz=3, seed=7)
    expected = torch.randn(3, generator=torch.Generator().manual_seed(7 * 1_000_003 + 2))
    assert torch.equal(noise[1], expected)


def test_pix2pix_trains_given_networks_and_names_them(tmp_path: Path) -> None:
    spec = InputSpec("rgb", (8, 8)).to_dict()
    generator = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    discriminator = nn.Conv2d(6, 1, 3, padding=1)
    module = Pix2PixModule(
        spec, generator=generator, discriminator=discriminator, num_sample_images=0
    )
    assert module.hparams.generator == "torch.nn.modules.container.Sequential"
    assert module.hparams.discriminator == "torch.nn.modules.conv.Conv2d"
    pairs = [(torch.rand(3, 8, 8) * 2 - 1, torch.rand(3, 8, 8) * 2 - 1) for _ in range(8)]
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, DataLoader(pairs, batch_size=4))
    assert trainer.global_step == 4
    assert module.translate(pairs[0][0][None]).shape == (1, 3, 8, 8)
    trainer.save_checkpoint(tmp_path / "given.ckpt")
    with pytest.raises(CheckpointError, match="Sequential"):
        load_translator(tmp_path / "given.ckpt")
