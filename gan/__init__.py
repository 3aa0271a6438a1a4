"""DCGAN on the shared blocks: models, Lightning module and data, FID/KID, sampling, CLI.

Public API: :class:`Generator`, :class:`Discriminator`, :class:`GANModule`,
:class:`GANDataModule`, :func:`load_generator` (bare generator from a checkpoint) and
:func:`write_samples`. Console script: ``gan`` (``gan.cli:main``).
"""

from gan.data import GANDataModule
from gan.models import Discriminator, Generator
from gan.module import GANModule
from gan.network_io import load_generator
from gan.sample import write_samples

__all__ = [
    "Discriminator",
    "GANDataModule",
    "GANModule",
    "Generator",
    "load_generator",
    "write_samples",
]
