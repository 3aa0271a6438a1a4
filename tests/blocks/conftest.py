"""The blocks tests run tiny tensors, for which intra-op threads cost more than they give
(especially on a busy 2-core machine): run them on one thread, restoring the setting after."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
