"""Resuming folder inference: which inputs of a share already have complete outputs, and the
temporary files that a killed run left behind.

Outputs are written to a temporary name and renamed (``upsample.core.io.atomic_path``), so an
output file that exists is complete, and an input is done when all of its files exist
(``OutputLayout``). A process killed while writing (SIGKILL, a lost machine) leaves its temporary
files; the next run removes those of its own share's inputs before it starts, so two processes
that share an output folder never remove each other's files in progress.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seg.inference.inputs import InputFile
from seg.inference.outputs import OutputLayout
from upsample.core.io import temporary_target


class FolderListing:
    """The names in each folder, listed once (one ``scandir`` per folder, not one ``stat`` per
    file: a million outputs are checked in seconds, also on network file systems)."""

    def __init__(self) -> None:
        self._names: dict[Path, set[str]] = {}

    def names(self, folder: Path) -> set[str]:
        """The entries of ``folder`` (empty when it does not exist)."""
        if folder not in self._names:
            try:
                with os.scandir(folder) as entries:
                    self._names[folder] = {entry.name for entry in entries}
            except (FileNotFoundError, NotADirectoryError):
                self._names[folder] = set()
        return self._names[folder]

    def exists(self, path: Path) -> bool:
        """Whether ``path`` was in its folder when that was listed."""
        return path.name in self.names(path.parent)

    def folders(self) -> list[Path]:
        """The folders listed so far."""
        return list(self._names)


@dataclass
class ResumePlan:
    """What a run over a share does: the inputs ``to_do``, how many are ``already_complete``, and
    the ``removed`` temporary files of killed runs."""

    to_do: list[InputFile]
    already_complete: int
    removed: list[Path]


def plan_share(share: Sequence[InputFile], layout: OutputLayout, overwrite: bool) -> ResumePlan:
    """Split ``share`` into the inputs to predict and those whose outputs are complete (all of
    them to predict when ``overwrite``), and remove the share's leftover temporary files."""
    listing = FolderListing()
    to_do = [
        item
        for item in share
        if overwrite or not all(listing.exists(path) for path in layout.files(item.name))
    ]
    if overwrite:  # the folders were not listed above; leftovers are removed all the same
        for item in share:
            for path in layout.files(item.name):
                listing.names(path.parent)
    return ResumePlan(to_do, len(share) - len(to_do), _remove_leftovers(share, layout, listing))


def _remove_leftovers(
    share: Sequence[InputFile], layout: OutputLayout, listing: FolderListing
) -> list[Path]:
    """Remove the temporary files of killed runs whose target is an output of ``share``."""
    leftovers = [
        (folder / name, target)
        for folder in listing.folders()
        for name in listing.names(folder)
        if name.startswith(".") and (target := temporary_target(folder / name)) is not None
    ]
    if not leftovers:
        return []
    names = {item.name for item in share}
    removed = []
    for leftover, target in leftovers:
        name = layout.name_of(target)
        if name in names and target in layout.files(name):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed
