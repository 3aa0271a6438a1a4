"""The classic PyTorch DCGAN recipe (pytorch/examples ``dcgan/main.py``), written out as a baseline.

Plain float32 PyTorch, no Lightning: ``nn.Sequential`` generator and discriminator (the example's
64x64 networks, or one stage fewer for 32x32: the toolkit's 32x32 layout), N(0, 0.02) weights, a
sigmoid discriminator with ``BCELoss``, two Adam optimisers (lr 2e-4, betas (0.5, 0.999)) and the
example's update order: D on a real batch, D on a fake batch, then G. This is how most DCGAN users
train today, and the baseline our ``GANModule`` is compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan.optimizers import adversarial_optimizers


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


class ClassicGenerator(nn.Module):
    """A classic generator behind the toolkit's contract: (N, nz) noise -> (N, C, S, S)."""

    def __init__(self, network: nn.Module, nz: int) -> None:
        super().__init__()
        self.network, self.nz = network, nz

    def forward(self, noise: Tensor) -> Tensor:
        return self.network(noise.view(noise.shape[0], self.nz, 1, 1))

    @classmethod
    def load(cls, path: Path, nz: int, ngf: int, nc: int, image_size: int) -> ClassicGenerator:
        """A generator saved by :meth:`ClassicDCGAN.save_generator`, in evaluation mode."""
        network = classic_generator(nz, ngf, nc, image_size)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return cls(network, nz).eval()


@dataclass
class ClassicDCGAN:
    """Networks, optimisers and one training step of the classic recipe."""

    generator: nn.Module
    discriminator: nn.Module
    optimizer_g: torch.optim.Adam
    optimizer_d: torch.optim.Adam
    nz: int

    @classmethod
    def create(cls, image_size: int = 64, seed: int = 0, **options: Any) -> ClassicDCGAN:
        """Seeded networks with the example's initialisation and its Adam optimisers.

        ``options``: the networks' ``nz``, ``ngf``, ``ndf``, ``nc`` (the example's 100, 64, 64,
        3 by default) and ``gan.optimizers.adversarial_optimizers``' ``lr_g``, ``lr_d``,
        ``betas`` (the example's by default).
        """
        sizes = {"nz": 100, "ngf": 64, "ndf": 64, "nc": 3}
        sizes.update({key: options.pop(key) for key in list(options) if key in sizes})
        torch.manual_seed(seed)
        generator = classic_generator(sizes["nz"], sizes["ngf"], sizes["nc"], image_size)
        discriminator = classic_discriminator(sizes["ndf"], sizes["nc"], image_size)
        generator.apply(classic_weights_init)
        discriminator.apply(classic_weights_init)
        optimizers = adversarial_optimizers(generator, discriminator, **options)
        return cls(generator, discriminator, *optimizers, sizes["nz"])

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
        """Save the generator's weights (``ClassicGenerator.load`` reads them)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.generator.state_dict(), path)
