"""The classic PyTorch DCGAN recipe (pytorch/examples ``dcgan/main.py``), written out as a baseline.

Plain float32 PyTorch, no Lightning: ``nn.Sequential`` generator and discriminator for 64x64
images, N(0, 0.02) weights, a sigmoid discriminator with ``BCELoss``, two Adam optimisers (lr 2e-4,
betas (0.5, 0.999)) and the example's update order: D on a real batch, D on a fake batch, then G.
This is how most DCGAN users train today, and the baseline our ``GANModule`` is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


def classic_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Sequential:
    """(N, nz, 1, 1) -> (N, nc, 64, 64) in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def classic_discriminator(ndf: int = 64, nc: int = 3) -> nn.Sequential:
    """(N, nc, 64, 64) -> (N, 1, 1, 1) probabilities (sigmoid)."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


def classic_weights_init(module: nn.Module) -> None:
    """The example's ``weights_init``: conv N(0, 0.02); batch norm weight N(1, 0.02), bias 0."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass
class ClassicDCGAN:
    """Networks, optimisers and one training step of the classic recipe."""

    generator: nn.Sequential
    discriminator: nn.Sequential
    optimizer_g: torch.optim.Adam
    optimizer_d: torch.optim.Adam
    nz: int

    @classmethod
    def create(cls, nz: int = 100, ngf: int = 64, ndf: int = 64, nc: int = 3, seed: int = 0):
        torch.manual_seed(seed)
        generator = classic_generator(nz, ngf, nc)
        discriminator = classic_discriminator(ndf, nc)
        generator.apply(classic_weights_init)
        discriminator.apply(classic_weights_init)
        betas = (0.5, 0.999)
        return cls(
            generator,
            discriminator,
            torch.optim.Adam(generator.parameters(), lr=2e-4, betas=betas),
            torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=betas),
            nz,
        )

    def train_step(self, real: Tensor) -> tuple[float, float]:
        """One D update and one G update on a real batch (N, nc, 64, 64) in [-1, 1];
        returns (loss_d, loss_g) like the example's log line."""
        criterion = nn.BCELoss()
        batch_size = real.shape[0]
        # (1) update D: maximise log(D(x)) + log(1 - D(G(z)))
        self.discriminator.zero_grad()
        label = torch.full((batch_size,), 1.0)
        output = self.discriminator(real).view(-1)
        loss_d_real = criterion(output, label)
        loss_d_real.backward()
        noise = torch.randn(batch_size, self.nz, 1, 1)
        fake = self.generator(noise)
        label.fill_(0.0)
        output = self.discriminator(fake.detach()).view(-1)
        loss_d_fake = criterion(output, label)
        loss_d_fake.backward()
        self.optimizer_d.step()
        # (2) update G: maximise log(D(G(z)))
        self.generator.zero_grad()
        label.fill_(1.0)
        output = self.discriminator(fake).view(-1)
        loss_g = criterion(output, label)
        loss_g.backward()
        self.optimizer_g.step()
        return (loss_d_real + loss_d_fake).item(), loss_g.item()
