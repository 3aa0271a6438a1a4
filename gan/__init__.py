"""Generation on the shared blocks, a folder per flow: the DCGAN (``gan.dcgan``), FID and KID
(``gan.fid``), label map to photo (``gan.translation``), what their training shares
(``gan.core``), and the ``gan`` commands (``gan.cli``, ``gan.console``, ``gan.tasks``).

Public API: :class:`Generator`, :class:`Discriminator`, :class:`GANModule`,
:class:`GANDataModule`, :func:`load_generator` (bare generator from a checkpoint) and
:func:`write_samples`. Console script: ``gan``
(``upsample_app.console:gan_main``, which hands all but ``gan app`` to ``gan.console.main``).

The names are imported on first use, so that importing a submodule that needs no Lightning
(``gan.dcgan.models``, ``gan.dcgan.sample``, ``gan.dcgan.deploy``) does not import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gan.dcgan.data import GANDataModule
    from gan.dcgan.models import Discriminator, Generator
    from gan.dcgan.module import GANModule
    from gan.dcgan.network_io import load_generator
    from gan.dcgan.sample import write_samples

_LOCATIONS = {
    "Discriminator": "gan.dcgan.models",
    "GANDataModule": "gan.dcgan.data",
    "GANModule": "gan.dcgan.module",
    "Generator": "gan.dcgan.models",
    "load_generator": "gan.dcgan.network_io",
    "write_samples": "gan.dcgan.sample",
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
