"""The optimisers of the adversarial models, in one place for the Lightning modules and for any
loop that trains a generator and a discriminator outside them."""

from __future__ import annotations

from torch import nn
from torch.optim import Adam

#: Adam's learning rate and betas of the DCGAN paper (Radford et al. 2016), also pix2pix's
DCGAN_LR = 2e-4
DCGAN_BETAS = (0.5, 0.999)


def adversarial_optimizers(
    generator: nn.Module,
    discriminator: nn.Module,
    lr_g: float = DCGAN_LR,
    lr_d: float = DCGAN_LR,
    betas: tuple[float, float] = DCGAN_BETAS,
) -> tuple[Adam, Adam]:
    """One Adam optimiser for the generator and one for the discriminator (in that order), with
    the DCGAN settings by default: learning rate 2e-4 and betas (0.5, 0.999); beta1 = 0.5 rather
    than 0.9 keeps the adversarial updates from oscillating.

    Args:
        generator / discriminator: the networks whose parameters are trained.
        lr_g / lr_d: their learning rates.
        betas: Adam's (beta1, beta2) for both.
    """
    betas = (float(betas[0]), float(betas[1]))
    return (
        Adam(generator.parameters(), lr=lr_g, betas=betas),
        Adam(discriminator.parameters(), lr=lr_d, betas=betas),
    )
