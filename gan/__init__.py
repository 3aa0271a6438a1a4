"""DCGAN on the shared blocks: models, Lightning module and data, FID/KID, sampling, CLI.

Public API: :class:`Generator`, :class:`Discriminator`, :class:`GANModule`,
:class:`GANDataModule`, :func:`load_generator` (bare generator from a checkpoint) and
:func:`write_samples`. Console script: ``gan`` (``gan.console:main``).

The names are imported on first use, so that importing a submodule that needs no Lightning
(``gan.models``, ``gan.sample``, ``gan.deploy``) does not import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gan.data import GANDataModule
    from gan.models import Discriminator, Generator
    from gan.module import GANModule
    from gan.network_io import load_generator
    from gan.sample import write_samples

_LOCATIONS = {
    "Discriminator": "gan.models",
    "GANDataModule": "gan.data",
    "GANModule": "gan.module",
    "Generator": "gan.models",
    "load_generator": "gan.network_io",
    "write_samples": "gan.sample",
}

__all__ = [
    "Discriminator",
    "GANDataModule",
    "GANModule",
    "Generator",
    "load_generator",
    "write_samples",
]


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'gan' has no attribute {name!r}")
