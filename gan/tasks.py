"""The two GAN tasks of ``gan fit|validate``: which Lightning module and data module a run uses.

``dcgan`` (noise -> image: ``GANModule`` + ``GANDataModule``) unless the command line
(``--task pix2pix``) or a config file (a top-level ``task: pix2pix``) names a translator:
``pix2pix`` (``Pix2PixModule``) or ``oasis`` (label map to photo with a SPADE generator and a
segmentation discriminator: ``OASISModule``), both on the paired data of ``PairedDataModule``.
The choice is read before LightningCLI parses anything, because LightningCLI needs the classes
first; the later of ``--task`` and a ``--config`` holding ``task`` wins, as LightningCLI itself
reads arguments in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

TASK_NAMES = ("dcgan", "pix2pix", "oasis")
#: the tasks that translate paired inputs (their module takes the data's input spec)
TRANSLATOR_TASKS = ("pix2pix", "oasis")
DEFAULT_TASK = "dcgan"
TASK_HELP = (
    "dcgan (noise -> image), pix2pix (paired image-to-image translation, e.g. CamVid label "
    "maps -> photos) or oasis (label maps -> photos: SPADE generator, segmentation "
    "discriminator); read from the command line or a config before anything else is parsed"
)


def _config_task(value: str) -> str | None:
    path = Path(value)
    try:
        loaded = yaml.safe_load(path.read_text() if path.is_file() else value)
    except (OSError, yaml.YAMLError):
        return None  # LightningCLI reports the unreadable config itself
    task = loaded.get("task") if isinstance(loaded, dict) else None
    return str(task) if task is not None else None


def task_of(argv: Sequence[str]) -> str:
    """The task that ``gan`` arguments ask for (``DEFAULT_TASK`` when none is named).

    Raises:
        ValueError: naming the value, when it is not one of ``TASK_NAMES``.
    """
    task = DEFAULT_TASK
    argv = list(argv)
    for index, argument in enumerate(argv):
        name, has_value, value = argument.partition("=")
        if name not in ("--config", "--task"):
            continue
        if not has_value:
            if index + 1 >= len(argv):
                continue
            value = argv[index + 1]
        found = value if name == "--task" else _config_task(value)
        if found is not None:
            task = found
    if task not in TASK_NAMES:
        raise ValueError(f"--task must be one of {TASK_NAMES}, got {task!r}")
    return task


def task_classes(task: str) -> tuple[type, type]:
    """(LightningModule class, LightningDataModule class) of a task."""
    if task in TRANSLATOR_TASKS:
        from gan.translation.oasis import OASISModule
        from gan.translation.paired_datamodule import PairedDataModule
        from gan.translation.pix2pix import Pix2PixModule

        return (Pix2PixModule if task == "pix2pix" else OASISModule), PairedDataModule
    if task == "dcgan":
        from gan.dcgan.data import GANDataModule
        from gan.dcgan.module import GANModule

        return GANModule, GANDataModule
    raise ValueError(f"task must be one of {TASK_NAMES}, got {task!r}")
