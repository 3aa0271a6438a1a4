"""Fixtures of the benchmark tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """Give torch back its thread count after a benchmark set its own (``--threads``)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
