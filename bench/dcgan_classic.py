"""The classic PyTorch DCGAN recipe (pytorch/examples ``dcgan/main.py``), the baseline our
``GANModule`` is compared with: plain float32 PyTorch, ``nn.Sequential`` networks (the example's
64x64 ones, or one stage fewer for 32x32), N(0, 0.02) weights, a sigmoid discriminator with
``BCELoss``, two Adam optimisers and the example's update order (D on real, D on fake, then G).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan.core.optimizers import adversarial_optimizers


def _stages(image_size: int) -> int:
    if image_size not in (32, 64):
        raise ValueError(f"the classic recipe makes 32x32 or 64x64 images, not {image_size}")
    return int(math.log2(image_size)) - 3


def classic_generator(nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64) -> nn.Module:
    """(N, nz, 1, 1) -> (N, nc, image_size, image_size) in [-1, 1]."""
    n = _stages(image_size)
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ngf * 2**n, 4, 1, 0, bias=False)]
    for i in range(n, 0, -1):
        layers += [nn.BatchNorm2d(ngf * 2**i), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(ngf * 2**i, ngf * 2 ** (i - 1), 4, 2, 1, bias=False))
    layers += [nn.BatchNorm2d(ngf), nn.ReLU(True), nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False)]
    return nn.Sequential(*layers, nn.Tanh())


def classic_discriminator(ndf: int = 64, nc: int = 3, image_size: int = 64) -> nn.Module:
    """(N, nc, image_size, image_size) -> (N, 1, 1, 1) probabilities (sigmoid)."""
    n = _stages(image_size)
    layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for i in range(n):
        layers.append(nn.Conv2d(ndf * 2**i, ndf * 2 ** (i + 1), 4, 2, 1, bias=False))
        layers += [nn.BatchNorm2d(ndf * 2 ** (i + 1)), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers, nn.Conv2d(ndf * 2**n, 1, 4, 1, 0, bias=False), nn.Sigmoid())


def classic_weights_init(module: nn.Module) -> None:
    """The example's ``weights_init``: conv N(0, 0.02); batch norm weight N(1, 0.02), bias 0."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def load_classic_generator(path: Path, nz: int, ngf: int, nc: int, image_size: int) -> nn.Module:
    """A generator saved by :meth:`ClassicDCGAN.save_generator` behind the toolkit's contract:
    (N, nz) noise -> images, an ``nz`` attribute, evaluation mode."""
    network = classic_generator(nz, ngf, nc, image_size)
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    generator = nn.Sequential(nn.Unflatten(1, (nz, 1, 1)), network).eval()
    generator.nz = nz
    return generator


@dataclass
class ClassicDCGAN:
    """Networks, optimisers and one training step of the classic recipe."""

    generator: nn.Module
    discriminator: nn.Module
    optimizer_g: torch.optim.Adam
    optimizer_d: torch.optim.Adam
    nz: int

    @classmethod
    def create(
        cls,
        image_size: int = 64,
        seed: int = 0,
        nz: int = 100,
        ngf: int = 64,
        ndf: int = 64,
        nc: int = 3,
        **optimizer_options: Any,
    ) -> ClassicDCGAN:
        """Seeded networks with the example's initialisation and Adam optimisers
        (``optimizer_options``: ``lr_g``, ``lr_d``, ``betas`` of ``adversarial_optimizers``,
        the example's by default)."""
        torch.manual_seed(seed)
        generator = classic_generator(nz, ngf, nc, image_size)
        discriminator = classic_discriminator(ndf, nc, image_size)
        generator.apply(classic_weights_init)
        discriminator.apply(classic_weights_init)
        optimizers = adversarial_optimizers(generator, discriminator, **optimizer_options)
        return cls(generator, discriminator, *optimizers, nz)

    def train_step(self, real: Tensor) -> tuple[float, float]:
        """One D update and one G update on a real batch (N, nc, S, S) in [-1, 1];
        returns (loss_d, loss_g) like the example's log line."""
        criterion = nn.BCELoss()
        batch_size = real.shape[0]
        # (1) update D: maximise log(D(x)) + log(1 - D(G(z)))
        self.discriminator.zero_grad()
        label = torch.full((batch_size,), 1.0)
        loss_d_real = criterion(self.discriminator(real).view(-1), label)
        loss_d_real.backward()
        fake = self.generator(torch.randn(batch_size, self.nz, 1, 1))
        label.fill_(0.0)
        loss_d_fake = criterion(self.discriminator(fake.detach()).view(-1), label)
        loss_d_fake.backward()
        self.optimizer_d.step()
        # (2) update G: maximise log(D(G(z)))
        self.generator.zero_grad()
        label.fill_(1.0)
        loss_g = criterion(self.discriminator(fake).view(-1), label)
        loss_g.backward()
        self.optimizer_g.step()
        return (loss_d_real + loss_d_fake).item(), loss_g.item()

    def save_generator(self, path: Path) -> None:
        """Save the generator's weights (``load_classic_generator`` reads them)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.generator.state_dict(), path)
