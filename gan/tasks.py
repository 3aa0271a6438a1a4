"""The two GAN tasks of ``gan fit|validate``: which Lightning module and data module a run uses.

``dcgan`` (noise -> image: ``GANModule`` + ``GANDataModule``) unless the command line
(``--task pix2pix``) or a config file (a top-level ``task: pix2pix``) names ``pix2pix`` (paired
translation: ``Pix2PixModule`` + ``PairedDataModule``). The choice is read before LightningCLI
parses anything, because LightningCLI needs the classes first; the later of ``--task`` and a
``--config`` holding ``task`` wins, as LightningCLI itself reads arguments in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

TASK_NAMES = ("dcgan", "pix2pix")
DEFAULT_TASK = "dcgan"
TASK_HELP = (
    "dcgan (noise -> image) or pix2pix (paired image-to-image translation, e.g. CamVid label "
    "maps -> photos); read from the command line or a config before anything else is parsed"
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
    if task == "pix2pix":
        from gan.translation.paired_datamodule import PairedDataModule
        from gan.translation.pix2pix import Pix2PixModule

        return Pix2PixModule, PairedDataModule
    if task == "dcgan":
        from gan.dcgan.data import GANDataModule
        from gan.dcgan.module import GANModule

        return GANModule, GANDataModule
    raise ValueError(f"task must be one of {TASK_NAMES}, got {task!r}")
