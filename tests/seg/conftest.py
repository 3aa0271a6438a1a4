"""Fixtures for the segmentation tests: tiny datasets on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.seg.helpers import write_folder_split, write_voc


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    root = tmp_path / "folder_data"
    write_folder_split(root / "train", 6, seed=1)
    write_folder_split(root / "val", 3, seed=2, ignore_border=True)
    return root


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    return write_voc(tmp_path / "voc")
