"""How the toolkit derives seeds: one named rule per use, so that a value seeded in one place
(training noise, shuffling, augmentation, FID images) is reproducible from its inputs alone.

The constants are part of the results: committed figures (FID of generated images, exact
resumes) depend on the exact values, so they never change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

#: a prime: ``seed * SEED_STRIDE + index`` keeps (seed, index) pairs apart for any index below it
SEED_STRIDE = 1_000_003
#: a prime that spreads the ranks of one step apart from the next step's seeds
RANK_STRIDE = 8191
#: the largest seed range accepted by every torch generator (CPU and CUDA)
TORCH_SEED_RANGE = 2**63


def mix_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` (an epoch, a batch, an image) of a stream seeded by ``seed``:
    ``seed * 1_000_003 + index``."""
    return seed * SEED_STRIDE + index


def rank_seed(seed: int, step: int, rank: int) -> int:
    """The seed of process ``rank`` at ``step`` (a batch number): ``mix_seed(seed, step) * 8191 +
    rank``, so that ranks draw different numbers and a resumed run draws the same ones."""
    return mix_seed(seed, step) * RANK_STRIDE + rank


def torch_seed(value: int) -> int:
    """``value`` folded into the range every torch generator accepts (``% 2**63``)."""
    return value % TORCH_SEED_RANGE


def noise_for_indices(
    indices: list[int], nz: int, seed: int, device: torch.device | str = "cpu"
) -> Tensor:
    """Noise ``(len(indices), nz)`` where row ``k`` depends only on ``(seed, indices[k])``: image
    ``i`` of a seeded set is the same whatever the batch size or the number of processes."""
    if not indices:
        return torch.zeros(0, nz, device=device)
    rows = [
        torch.randn(nz, generator=torch.Generator().manual_seed(mix_seed(seed, index)))
        for index in indices
    ]
    return torch.stack(rows).to(device)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with the global random generators seeded by ``seed`` (CPU, and ``device``'s
    when it is a CUDA device) and restore their state afterwards: a generator's noise drawn
    inside is repeatable without disturbing anyone else's."""
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
