"""CIFAR-10 as users have it: a folder of ``train/<class>/*`` and ``test/<class>/*`` images, or
the archive that holds one (``cifar10-jpeg.tar.gz``: the 60,000 images as JPEG files), unpacked
once into the toolkit's cache.

``cifar10_folder(root)`` takes a folder with ``train/`` and ``test/``, a folder holding the
archive, or the archive itself, and returns the folder with ``train/`` and ``test/``. An archive
is unpacked into ``<cache>/cifar10/<archive digest>/`` through a temporary folder renamed when
complete, so an interrupted unpacking is never taken for a finished one; members that would land
outside that folder (absolute paths, ``..``, links) are refused.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from pathlib import Path

from upsample.core.cache import cache_dir

ARCHIVE_NAME = "cifar10-jpeg.tar.gz"
SPLITS = ("train", "test")
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class CIFAR10Error(FileNotFoundError):
    """CIFAR-10 was not found where it was looked for, or an archive is not one."""


def _has_splits(folder: Path) -> bool:
    return all((folder / split).is_dir() for split in SPLITS)


def _archive_digest(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]


def _split_root(folder: Path) -> Path | None:
    """``folder`` or its single sub-folder (archives often wrap their content in one), whichever
    holds ``train/`` and ``test/``."""
    if _has_splits(folder):
        return folder
    children = [child for child in folder.iterdir() if child.is_dir()]
    if len(children) == 1 and _has_splits(children[0]):
        return children[0]
    return None


def _safe_members(archive: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or member.issym() or member.islnk():
            raise CIFAR10Error(f"{path}: refused: member {member.name!r} leaves the archive")
        if member.isfile() or member.isdir():
            members.append(member)
    return members


def unpack_archive(path: str | Path, cache: str | Path | None = None) -> Path:
    """The folder with ``train/`` and ``test/`` unpacked from archive ``path`` into the cache
    (once; later calls find it).

    Raises:
        CIFAR10Error: naming the archive, when it is not a readable tar archive of that layout.
    """
    path = Path(path)
    target = Path(cache or cache_dir()) / "cifar10" / _archive_digest(path)
    if target.is_dir() and (found := _split_root(target)) is not None:
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=target.parent))
    try:
        try:
            with tarfile.open(path) as archive:
                archive.extractall(staging, members=_safe_members(archive, path))
        except (tarfile.TarError, OSError, EOFError) as error:
            raise CIFAR10Error(f"{path}: not a readable tar archive ({error})") from error
        if _split_root(staging) is None:
            raise CIFAR10Error(f"{path}: the archive holds no train/ and test/ folders")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = _split_root(target)
    assert found is not None
    return found


def cifar10_folder(root: str | Path, cache: str | Path | None = None) -> Path:
    """The folder with ``train/<class>/*`` and ``test/<class>/*`` for ``root``: that folder
    itself, or the archive ``root`` (or ``root/cifar10-jpeg.tar.gz``) unpacked into the cache.

    Raises:
        CIFAR10Error: naming ``root`` and what was expected.
    """
    root = Path(root)
    if root.is_dir():
        if _has_splits(root):
            return root
        if (root / ARCHIVE_NAME).is_file():
            return unpack_archive(root / ARCHIVE_NAME, cache)
    elif root.is_file():
        return unpack_archive(root, cache)
    raise CIFAR10Error(
        f"{root}: no CIFAR-10 here: expected a folder with train/<class>/ and test/<class>/ "
        f"images, a folder holding {ARCHIVE_NAME}, or the archive itself"
    )
