"""Fixtures for the segmentation tests: tiny datasets on disk, one intra-op thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.seg.helpers import write_folder_split, write_voc


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads cost more than they give, above all on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    root = tmp_path / "folder_data"
    write_folder_split(root / "train", 6, seed=1)
    write_folder_split(root / "val", 3, seed=2, ignore_border=True)
    return root


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    return write_voc(tmp_path / "voc")
