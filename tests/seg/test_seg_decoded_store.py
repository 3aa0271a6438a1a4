"""The decoded uint8 store: built once and reused without decoding, rebuilt when a file changes
(only that file decoded again), corrupt images named with nothing half-built left, a damaged
store rebuilt, two processes building and reading it at once, DataLoader workers sharing it."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg.data import decoded_store
from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError, SegmentationDataset
from seg.data.decoded_store import DecodedStore, open_or_build, remove_orphans
from seg.data.labels import LabelSpec
from seg.data.pairs import SamplePair, read_pair
from seg.data.sources.folder import find_folder_pairs

LABELS = LabelSpec.create(3)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the pairs the store decodes (``read_pair`` calls made by the builder)."""
    calls: list[str] = []

    def counting(pair: SamplePair, labels: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
        calls.append(pair.name)
        return read_pair(pair, labels)

    monkeypatch.setattr(decoded_store, "read_pair", counting)
    return calls


def store_files(folder: Path) -> list[str]:
    """Every file in the cache folder except the lock files."""
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


def assert_matches_files(store: DecodedStore, pairs: list) -> None:
    for index, pair in enumerate(pairs):
        image, mask = store.read(index)
        expected_image, expected_mask = read_pair(pair, LABELS)
        assert np.array_equal(image, expected_image) and np.array_equal(mask, expected_mask)


def test_built_once_then_reused_without_decoding(
    folder_root: Path, tmp_path: Path, decodes: list[str]
) -> None:
    pairs = find_folder_pairs(folder_root / "train")
    cache = tmp_path / "cache"
    store = open_or_build(pairs, LABELS, cache)
    assert len(decodes) == 6 and len(store) == 6
    assert_matches_files(store, pairs)
    built = store.path.stat().st_mtime_ns

    again = open_or_build(pairs, LABELS, cache)
    assert len(decodes) == 6, "the second use decoded images"
    assert again.path == store.path and again.path.stat().st_mtime_ns == built
    assert store_files(cache) == [store.path.name]
    # other label rules decode to other masks: another store
    other = open_or_build(pairs, LabelSpec.create(4), cache)
    assert other.path != store.path and len(decodes) == 12


def test_rebuilt_when_a_file_changes_decoding_only_that_file(
    folder_root: Path, tmp_path: Path, decodes: list[str]
) -> None:
    pairs = find_folder_pairs(folder_root / "train")
    cache = tmp_path / "cache"
    first = open_or_build(pairs, LABELS, cache)
    changed = pairs[2].image
    pixels = np.asarray(Image.open(changed))
    Image.fromarray(255 - pixels).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a coarse clock

    second = open_or_build(pairs, LABELS, cache)
    assert second.path != first.path
    assert decodes[6:] == [pairs[2].name], "only the changed pair is decoded again"
    assert_matches_files(second, pairs)
    assert store_files(cache) == [second.path.name], "the old store is removed"

    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))  # `touch`
    third = open_or_build(pairs, LABELS, cache)
    assert third.path != second.path and decodes[7:] == [pairs[2].name]


def test_corrupt_image_is_named_and_nothing_is_left(folder_root: Path, tmp_path: Path) -> None:
    pairs = find_folder_pairs(folder_root / "train")
    broken = pairs[3].image
    broken.write_bytes(broken.read_bytes()[:60])  # truncated PNG
    cache = tmp_path / "cache"
    with pytest.raises(SegmentationDataError, match=r"images/003\.png: unreadable image"):
        open_or_build(pairs, LABELS, cache)
    assert store_files(cache) == [], "a half-built store was left"


def test_damaged_store_is_rebuilt(folder_root: Path, tmp_path: Path, decodes: list[str]) -> None:
    pairs = find_folder_pairs(folder_root / "train")
    cache = tmp_path / "cache"
    store = open_or_build(pairs, LABELS, cache)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        DecodedStore.open(store.path)
    rebuilt = open_or_build(pairs, LABELS, cache)
    assert len(decodes) == 12 and rebuilt.path.stat().st_size == len(data)
    assert_matches_files(rebuilt, pairs)


def test_stores_of_deleted_datasets_are_removed(folder_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    gone = tmp_path / "gone"
    (gone / "images").mkdir(parents=True)
    (gone / "masks").mkdir()
    for pair in find_folder_pairs(folder_root / "val"):
        (gone / "images" / pair.image.name).write_bytes(pair.image.read_bytes())
        (gone / "masks" / pair.mask.name).write_bytes(pair.mask.read_bytes())
    orphan = open_or_build(find_folder_pairs(gone), LABELS, cache).path
    for path in (gone / "images").iterdir():
        path.unlink()
    kept = open_or_build(find_folder_pairs(folder_root / "train"), LABELS, cache).path
    assert store_files(cache) == [kept.name] and not orphan.exists()
    assert sorted(p.name for p in cache.glob("*.lock")) == [kept.name.split("-")[0] + ".lock"]
    assert remove_orphans(cache) == []


def build_and_read(pairs: list, cache: str, results: multiprocessing.Queue) -> None:
    """In a separate process: open or build the store, read every entry; report how many pairs
    this process decoded and a checksum of what it read. Decoding is slowed down, so that the
    other process asks for the store while this one builds it."""
    decoded = []

    def counting(pair: SamplePair, labels: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
        decoded.append(pair.name)
        time.sleep(0.05)
        return read_pair(pair, labels)

    decoded_store.read_pair = counting
    store = open_or_build(pairs, LABELS, cache)
    total = sum(int(a.sum()) + int(b.sum()) for a, b in map(store.read, range(len(store))))
    results.put((len(decoded), total, str(store.path)))


def run_processes(target: Callable, args: tuple, count: int, timeout: float = 120) -> list:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=target, args=(*args, results)) for _ in range(count)]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=timeout) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
    return outcomes


@pytest.mark.skipif(os.name != "posix", reason="file locks (fcntl) are POSIX")
def test_two_processes_build_and_read_at_once(folder_root: Path, tmp_path: Path) -> None:
    pairs = find_folder_pairs(folder_root / "train")
    cache = tmp_path / "cache"
    outcomes = run_processes(build_and_read, (pairs, str(cache)), 2)
    expected = sum(int(a.sum()) + int(b.sum()) for a, b in (read_pair(p, LABELS) for p in pairs))
    assert sorted(decoded for decoded, _, _ in outcomes) == [0, 6], "built twice"
    assert {total for _, total, _ in outcomes} == {expected}
    assert len({path for _, _, path in outcomes}) == 1
    assert store_files(cache) == [Path(outcomes[0][2]).name]


def test_workers_share_the_store(folder_root: Path, tmp_path: Path) -> None:
    """Two DataLoader workers read the memory-mapped store (opened lazily in each; the dataset
    pickles without it) and give exactly the items decoded from the files."""
    pairs = find_folder_pairs(folder_root / "train")
    store = open_or_build(pairs, LABELS, tmp_path / "cache")
    cached = SegmentationDataset(pairs, LABELS, store=store)
    assert store._memmap is None  # opened by the workers, not here
    loader = torch.utils.data.DataLoader(cached, batch_size=None, num_workers=2)
    items = list(loader)
    assert store._memmap is None
    store.read(0)  # the memory map is open now; a pickled copy (spawned workers) must not carry it
    assert pickle.loads(pickle.dumps(cached)).store._memmap is None
    decoded = SegmentationDataset(pairs, LABELS)
    assert len(items) == 6
    for index, item in enumerate(items):
        assert torch.equal(item["image"], decoded[index]["image"])
        assert torch.equal(item["mask"], decoded[index]["mask"])


def test_datamodule_reads_train_and_val_from_the_cache(folder_root: Path, tmp_path: Path) -> None:
    """``cache: true`` (the default): identical batches to ``cache: false``, from two stores."""
    batches = {}
    for cache in (True, False):
        data = SegDataModule(
            format="folder",
            root=str(folder_root),
            num_classes=3,
            batch_size=2,
            num_workers=0,
            crop_size=24,
            cache=cache,
            cache_dir=str(tmp_path / "cache"),
        )
        data.setup("fit")
        assert (data.datasets["train"].store is not None) == cache
        assert (data.datasets["val"].store is not None) == cache
        batches[cache] = [next(iter(data.train_dataloader())), next(iter(data.val_dataloader()))]
    for cached, decoded in zip(batches[True], batches[False], strict=True):
        assert torch.equal(cached["image"], decoded["image"])
        assert torch.equal(cached["mask"], decoded["mask"])
    assert len(store_files(tmp_path / "cache")) == 2
