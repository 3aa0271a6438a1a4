"""Finding a file inside an installed package without importing it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from upsample.core.packages import installed_package_file


@pytest.fixture
def weights_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package whose import would fail, holding two weight files and a folder."""
    folder = tmp_path / "weights_pkg_for_tests"
    (folder / "nested.pth").mkdir(parents=True)  # a folder that matches the pattern
    (folder / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (folder / "b.pth").write_bytes(b"b")
    (folder / "a.pth").write_bytes(b"a")
    monkeypatch.syspath_prepend(str(tmp_path))
    return folder


def test_the_first_matching_file_in_sorted_order(weights_package: Path) -> None:
    found = installed_package_file("weights_pkg_for_tests", "*.pth")
    assert found == weights_package / "a.pth"
    assert "weights_pkg_for_tests" not in sys.modules


def test_an_exact_file_name_is_a_pattern_too(weights_package: Path) -> None:
    assert installed_package_file("weights_pkg_for_tests", "b.pth") == weights_package / "b.pth"


def test_none_without_the_file_or_the_package(weights_package: Path) -> None:
    assert installed_package_file("weights_pkg_for_tests", "*.onnx") is None
    assert installed_package_file("no_such_package_anywhere", "*.pth") is None
    assert installed_package_file("no_such_parent.child", "*.pth") is None
