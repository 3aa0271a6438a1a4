"""The input files of folder inference: every image under a folder, or the paths listed in a text
file; their output names; and the share of one process among several (``--shard K/N``, DDP ranks).

Every process lists the same files in the same order (sorted paths) and names them the same way
before taking its share, so that N processes together cover each file exactly once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from seg.inference.outputs import output_names
from upsample.core.io import list_images

#: what a ``--shard`` value looks like: ``K/N`` with 0 <= K < N.
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Share ``index`` of ``count`` (0-based): the files ``index``, ``index + count``, ... of the
    sorted list, the order of ``torch.utils.data.DistributedSampler`` without its padding (the
    order Lightning's ``UnrepeatedDistributedSampler`` gives prediction), so that no file is
    predicted twice and none is left out."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: expected K/N with 0 <= K < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` -> ``Shard(K, N)``.

        Raises:
            ValueError: naming the value and the form expected.
        """
        match = _SHARD.match(text)
        if match is None:
            raise ValueError(f"--shard {text!r}: expected K/N, such as 0/4 (share K of N, from 0)")
        return cls(int(match.group(1)), int(match.group(2)))

    def within(self, rank: int, world_size: int) -> Shard:
        """The share of DDP rank ``rank`` of ``world_size`` inside this shard: shard K/N split by
        W ranks is shard ``K * W + rank`` of ``N * W``."""
        return Shard(self.index * world_size + rank, self.count * world_size)

    def indices(self, total: int) -> range:
        """The positions of this share in a list of ``total`` files."""
        return range(self.index, total, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """``""`` for the whole list, else ``".shard-K-of-N"`` (file names of per-shard files)."""
        return "" if self.count == 1 else f".shard-{self.index}-of-{self.count}"


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input: its ``path``, its ``name`` under the output folder (relative path without the
    suffix, ``output_names``) and how it is shown in messages (``shown``)."""

    path: str
    name: str
    shown: str


@dataclass
class InputFiles:
    """The inputs of a prediction, sorted by path (see the module docstring); ``source`` is the
    folder or list file they came from."""

    source: Path
    files: list[InputFile]

    @classmethod
    def from_source(cls, source: str | Path, exclude: str | Path | None = None) -> InputFiles:
        """Every image under the folder ``source`` (recursive), or the files that the text file
        ``source`` lists (``from_list``); files under ``exclude`` (the output folder) are left
        out of a folder.

        Raises:
            FileNotFoundError: ``source`` does not exist.
            ValueError: a list file that names no file.
        """
        source = Path(source)
        if source.is_file():
            return cls.from_list(source)
        if not source.is_dir():
            raise FileNotFoundError(
                f"{source}: input folder not found (expected a folder of images or a text file "
                "listing one image path per line)"
            )
        paths = list_images(source)
        excluded = Path(exclude).resolve() if exclude is not None else None
        if excluded is not None and excluded.is_relative_to(source.resolve()):
            paths = [path for path in paths if not path.resolve().is_relative_to(excluded)]
        names = output_names([path.relative_to(source).as_posix() for path in paths])
        texts = [str(path) for path in paths]
        files = [InputFile(text, name, text) for text, name in zip(texts, names, strict=True)]
        return cls(source, files)

    @classmethod
    def from_list(cls, list_file: str | Path) -> InputFiles:
        """The files a text file lists, one path per line (blank lines and lines starting with
        ``#`` are ignored; a relative path is relative to the list file's folder; a path listed
        twice counts once). Output names are the paths relative to the deepest folder that holds
        them all. A listed file that is missing is reported when it is read, like any unreadable
        file.

        Raises:
            ValueError: the list names no file.
        """
        list_file = Path(list_file)
        base = list_file.resolve().parent
        try:
            lines = list_file.read_text().splitlines()
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{list_file}: not a text file; expected a folder of images or a text file "
                "listing one image path per line"
            ) from error
        entries = {
            line.strip() for line in lines if line.strip() and not line.strip().startswith("#")
        }
        paths = sorted({os.path.normpath(base / entry) for entry in entries})
        if not paths:
            raise ValueError(f"{list_file}: lists no file; expected one image path per line")
        root = os.path.commonpath([os.path.dirname(path) for path in paths])
        names = output_names([Path(path).relative_to(root).as_posix() for path in paths])
        files = [InputFile(path, name, path) for path, name in zip(paths, names, strict=True)]
        return cls(list_file, files)

    def __len__(self) -> int:
        return len(self.files)

    def share(self, shard: Shard) -> list[InputFile]:
        """The files of ``shard``, in order."""
        return [self.files[index] for index in shard.indices(len(self.files))]
