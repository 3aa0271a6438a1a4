"""A decoded uint8 store of a dataset's images and masks: decoded once, memory-mapped by every
DataLoader worker without copying.

Decoding a PNG costs milliseconds, reading its pixels from the page cache microseconds. The store
holds every pair of a split as it comes out of ``read_pair`` (RGB image (H, W, 3) and mask of class
indices (H, W) after the ``LabelSpec`` conversion, 255 = ignore), one after the other, with an
index of offsets and shapes, so images of different sizes fit. One file:

    magic | header length | header (JSON) | padding | data | index (n x 4 int64) | footer

The footer (index offset, count, end magic) comes last, so a truncated file is never read as
valid. A store is named ``<identity>-<fingerprint>.u8store`` under the cache folder: the
identity hashes the format version, the label rules and the files' paths; the fingerprint adds
their sizes and modification times. A file that changes gives a new fingerprint, so the store is
rebuilt (entries of unchanged files are copied from the old store, not decoded again) and the old
one removed. A store is built under a temporary name and renamed when complete, while holding a
lock file, so two processes (DDP ranks) never build it twice and never read a half-written one;
where file locks are unavailable both build and the second rename replaces an identical file.
Building a store also removes the stores whose dataset is gone (a file of it, recorded in the
header, no longer exists), so the stores of deleted folders do not pile up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from seg.data.labels import LabelSpec
from seg.data.pairs import SamplePair, read_pair
from upsample.core.cache import cache_dir
from upsample.core.io import atomic_path

CACHE_SUBDIR = "decoded"
SUFFIX = ".u8store"
#: bump when the layout or the decoding (``read_pair``) changes: old stores are then not read
FORMAT_VERSION = 1
MAGIC = b"UPSTORE1"
END_MAGIC = b"UPSEND01"
_FOOTER = struct.Struct("<QQ8s")  # index offset, entry count, END_MAGIC
_ALIGN = 64
#: free space left on the cache's disk after a store is built
FREE_SPACE_MARGIN = 1 << 30
#: index columns: byte offset of the image (its mask follows it), height, width, entry hash
INDEX_COLUMNS = 4


class StoreUnavailableError(OSError):
    """The store cannot be built here (no room, unwritable folder); the message says why."""


def _stat_line(path: Path) -> str:
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}"


def _entry_hash(pair: SamplePair) -> int:
    """A signed 64-bit hash of one pair's paths, sizes and modification times."""
    line = f"{_stat_line(pair.image)}\n{_stat_line(pair.mask)}"
    return int.from_bytes(hashlib.sha1(line.encode()).digest()[:8], "little", signed=True)


def store_keys(pairs: Sequence[SamplePair], labels: LabelSpec) -> tuple[str, str, np.ndarray]:
    """(identity, fingerprint, entry hashes (n,) int64) of ``pairs`` decoded with ``labels``.

    Raises:
        OSError: a file cannot be stat'ed (the error names it).
    """
    identity = hashlib.sha1(f"{FORMAT_VERSION}|{labels!r}".encode())
    for pair in pairs:
        identity.update(f"{Path(pair.image).resolve()}|{Path(pair.mask).resolve()}\n".encode())
    entries = np.array([_entry_hash(pair) for pair in pairs], dtype=np.int64)
    fingerprint = hashlib.sha1(identity.digest() + entries.tobytes())
    return identity.hexdigest()[:16], fingerprint.hexdigest()[:16], entries


class DecodedStore:
    """Read-only access to a built store: ``read(i)`` -> image (H, W, 3) and mask (H, W) uint8
    views of the memory-mapped file.

    Picklable: the memory map is opened lazily in each process (DataLoader workers share the
    file's pages through the OS, nothing is copied), and dropped when pickled.
    """

    def __init__(self, path: str | Path, fingerprint: str, index: np.ndarray) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.index = index
        self._memmap: np.memmap | None = None

    @classmethod
    def open(cls, path: str | Path, fingerprint: str | None = None) -> DecodedStore:
        """Open a complete store; with ``fingerprint``, only the store of those files.

        Raises:
            ValueError: the file is not a complete store (truncated, another format version or
                fingerprint); the message names it.
            OSError: the file cannot be read.
        """
        path = Path(path)
        header, index = _read_layout(path)
        if fingerprint is not None and header.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{path}: store of other files (fingerprint {header.get('fingerprint')}, "
                f"expected {fingerprint})"
            )
        return cls(path, header["fingerprint"], index)

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_memmap"] = None
        return state

    def _data(self) -> np.memmap:
        if self._memmap is None:
            # A process that opens the file later (a worker started after a rebuild) checks that
            # it is still the store whose index it holds.
            try:
                header, _ = _read_layout(self.path, with_index=False)
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"{self.path}: the decoded store was removed while in use (a file of the "
                    "dataset changed and another run rebuilt it); start again"
                ) from error
            if header.get("fingerprint") != self.fingerprint:
                raise ValueError(
                    f"{self.path}: the decoded store changed while in use (expected fingerprint "
                    f"{self.fingerprint}, found {header.get('fingerprint')}); start again"
                )
            self._memmap = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._memmap

    def shape(self, item: int) -> tuple[int, int]:
        """(height, width) of entry ``item``, without touching its pixels."""
        _, height, width, _ = self.index[item]
        return int(height), int(width)

    def read(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Entry ``item``: image (H, W, 3) and mask (H, W), read-only uint8 views."""
        offset, height, width, _ = (int(v) for v in self.index[item])
        data = self._data()
        pixels = height * width
        image = data[offset : offset + 3 * pixels].reshape(height, width, 3)
        mask = data[offset + 3 * pixels : offset + 4 * pixels].reshape(height, width)
        return image, mask


def _stores(folder: Path, pattern: str = "*") -> list[Path]:
    """Complete store files in ``folder`` (not the hidden temporary files of builders)."""
    return [p for p in folder.glob(f"{pattern}{SUFFIX}") if not p.name.startswith(".")]


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the stores in ``folder`` whose dataset is gone (its witness file no longer
    exists) and those of other format versions, with their lock files; returns them."""
    removed = []
    for path in _stores(folder):
        try:
            header, _ = _read_layout(path, with_index=False)
            orphan = not Path(header["witness"]).exists()
        except (OSError, ValueError, KeyError):
            orphan = True
        if orphan:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
                identity = path.name.split("-")[0]
                if not _stores(folder, f"{identity}-*"):
                    (folder / f"{identity}.lock").unlink(missing_ok=True)
    return removed


def _read_layout(path: Path, with_index: bool = True) -> tuple[dict[str, Any], np.ndarray]:
    """The header and index of a store file (validated: magic, version, footer, size)."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        start = stream.read(16)
        if len(start) < 16 or start[:8] != MAGIC:
            raise ValueError(f"{path}: not a decoded store (no {MAGIC!r} at the start)")
        (header_length,) = struct.unpack("<Q", start[8:])
        if 16 + header_length + _FOOTER.size > size:
            raise ValueError(f"{path}: truncated decoded store ({size} bytes)")
        try:
            header = json.loads(stream.read(header_length))
        except ValueError as error:
            raise ValueError(f"{path}: unreadable store header ({error})") from error
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: store format version {header.get('version')}, expected {FORMAT_VERSION}"
            )
        stream.seek(size - _FOOTER.size)
        index_offset, count, end = _FOOTER.unpack(stream.read(_FOOTER.size))
        expected = index_offset + count * INDEX_COLUMNS * 8 + _FOOTER.size
        if end != END_MAGIC or expected != size or count != header.get("count"):
            raise ValueError(f"{path}: truncated or damaged decoded store")
        if not with_index:
            return header, np.empty((0, INDEX_COLUMNS), dtype=np.int64)
        stream.seek(index_offset)
        index = np.frombuffer(stream.read(count * INDEX_COLUMNS * 8), dtype="<i8")
    index = index.reshape(count, INDEX_COLUMNS).astype(np.int64)
    offsets, heights, widths = index[:, 0], index[:, 1], index[:, 2]
    ends = offsets + 4 * heights * widths
    if count and (offsets.min() < 16 or heights.min() < 1 or widths.min() < 1):
        raise ValueError(f"{path}: damaged decoded store (bad index)")
    if count and ends.max() > index_offset:
        raise ValueError(f"{path}: damaged decoded store (index past the data)")
    return header, index


def _padding(position: int) -> bytes:
    return b"\0" * (-position % _ALIGN)


def _old_entries(stores: Sequence[Path]) -> tuple[DecodedStore | None, dict[int, int]]:
    """The newest readable store among ``stores`` and its entries by hash (hash -> row)."""
    for path in sorted(stores, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        with contextlib.suppress(OSError, ValueError):
            store = DecodedStore.open(path)
            return store, {int(h): row for row, h in enumerate(store.index[:, 3])}
    return None, {}


def write_store(
    path: Path,
    pairs: Sequence[SamplePair],
    labels: LabelSpec,
    fingerprint: str,
    entries: np.ndarray,
    previous: Sequence[Path] = (),
    progress: Callable[[str], None] | None = None,
) -> int:
    """Decode ``pairs`` into a store at ``path`` (written under a temporary name, renamed when
    complete), streaming: one pair in memory at a time. Entries whose hash is in a readable
    store of ``previous`` are copied from it instead of decoded.

    Returns:
        The number of pairs decoded (the others were copied).

    Raises:
        SegmentationDataError: an unreadable image or mask (naming the file); nothing is left.
        OSError: writing failed (disk full...); nothing is left.
    """
    old, old_rows = _old_entries(previous)
    header = json.dumps(
        {
            "version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "count": len(pairs),
            # a file of the dataset: when it is gone, so is the store (``remove_orphans``)
            "witness": str(Path(pairs[0].image).resolve()),
        }
    ).encode()
    index = np.zeros((len(pairs), INDEX_COLUMNS), dtype=np.int64)
    decoded = 0
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        stream.write(MAGIC + struct.pack("<Q", len(header)) + header)
        stream.write(_padding(stream.tell()))
        for row, pair in enumerate(pairs):
            reused = old_rows.get(int(entries[row]))
            if old is not None and reused is not None:
                image, mask = old.read(reused)
            else:
                image, mask = read_pair(pair, labels)
                decoded += 1
            index[row] = (stream.tell(), mask.shape[0], mask.shape[1], entries[row])
            stream.write(np.ascontiguousarray(image, dtype=np.uint8).data)
            stream.write(np.ascontiguousarray(mask, dtype=np.uint8).data)
            if progress is not None and (row + 1) % 500 == 0:
                progress(f"decoded store: {row + 1}/{len(pairs)} pairs")
        stream.write(_padding(stream.tell()))
        index_offset = stream.tell()
        stream.write(index.astype("<i8").tobytes())
        stream.write(_FOOTER.pack(index_offset, len(pairs), END_MAGIC))
    return decoded


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``lock_path`` (POSIX ``flock``; released if the process dies).
    Yields whether a lock is held (False where ``fcntl`` does not exist)."""
    try:
        import fcntl
    except ImportError:  # Windows: builders race; the last rename wins, stores are identical
        yield False
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def estimated_bytes(pairs: Sequence[SamplePair]) -> int:
    """Bytes the decoded pairs take (4 per pixel), from the image headers (no decoding); an
    unreadable header counts as nothing here (the build names the file)."""
    total = 0
    for pair in pairs:
        with contextlib.suppress(OSError, ValueError, SyntaxError), Image.open(pair.image) as image:
            total += 4 * image.width * image.height
    return total


def _check_room(folder: Path, pairs: Sequence[SamplePair]) -> None:
    needed = estimated_bytes(pairs)
    free = shutil.disk_usage(folder).free
    if needed + FREE_SPACE_MARGIN > free:
        raise StoreUnavailableError(
            f"{folder}: the decoded store needs {needed / 2**30:.2f} GiB and "
            f"{FREE_SPACE_MARGIN / 2**30:.0f} GiB to spare, only {free / 2**30:.2f} GiB free"
        )


def open_or_build(
    pairs: Sequence[SamplePair],
    labels: LabelSpec,
    folder: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DecodedStore:
    """The store of ``pairs`` under ``folder`` (default ``<cache_dir()>/decoded``), built when it
    is missing or its files changed (see the module docstring).

    Raises:
        SegmentationDataError: an unreadable image or mask, a mask that does not fit ``labels``
            or an image and mask of different sizes (naming the file).
        StoreUnavailableError: not enough free space, or the folder cannot be written.
    """
    folder = Path(folder) if folder is not None else cache_dir() / CACHE_SUBDIR
    identity, fingerprint, entries = store_keys(pairs, labels)
    path = folder / f"{identity}-{fingerprint}{SUFFIX}"
    with contextlib.suppress(OSError, ValueError):
        return DecodedStore.open(path, fingerprint)
    with contextlib.ExitStack() as stack:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            held = stack.enter_context(_exclusive(folder / f"{identity}.lock"))
        except OSError as error:
            message = f"{folder}: cannot write the decoded store ({error})"
            raise StoreUnavailableError(message) from error
        with contextlib.suppress(OSError, ValueError):  # built by another process meanwhile
            return DecodedStore.open(path, fingerprint)
        siblings = [p for p in _stores(folder, f"{identity}-*") if p != path]
        if held:  # temporary files of this identity left by a killed builder
            for stale in folder.glob(f".{identity}-*.tmp{SUFFIX}"):
                stale.unlink(missing_ok=True)
        _check_room(folder, pairs)
        if progress is not None:
            progress(f"decoding {len(pairs)} image/mask pairs once into {path}")
        try:
            write_store(path, pairs, labels, fingerprint, entries, siblings, progress)
        except OSError as error:
            message = f"{path}: writing the decoded store failed ({error})"
            raise StoreUnavailableError(message) from error
        for old in siblings:  # stores of these paths before a file changed
            with contextlib.suppress(OSError):
                os.unlink(old)
        remove_orphans(folder)
        return DecodedStore.open(path, fingerprint)


def cached_store(
    pairs: Sequence[SamplePair],
    labels: LabelSpec,
    folder: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DecodedStore | None:
    """``open_or_build``, or ``None`` with a warning where the store cannot be built here (the
    data is then decoded from its files as without a cache)."""
    try:
        return open_or_build(pairs, labels, folder, progress)
    except StoreUnavailableError as error:
        warnings.warn(f"{error}; decoding the images at every epoch instead", stacklevel=2)
        return None
