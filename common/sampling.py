"""Samplers that make data order reproducible across resumes and count eval samples once."""

from __future__ import annotations

from collections.abc import Iterator, Sized

import lightning.pytorch as pl
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, Sampler, SequentialSampler

from common.seeding import mix_seed


class SeededShuffleSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on ``(seed, epoch)``.

    Lightning calls ``set_epoch`` at the start of every epoch, so a run resumed from a checkpoint
    sees the same order as an uninterrupted one (a plain ``RandomSampler`` draws from the global
    generator, whose state a checkpoint does not restore). Under DDP Lightning replaces it with
    a ``DistributedSampler`` that is seeded the same way.
    """

    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        self.data_source = data_source
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data_source)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        return iter(torch.randperm(len(self.data_source), generator=generator).tolist())


def evaluation_sampler(dataset: Dataset, trainer: pl.Trainer | None) -> Sampler[int]:
    """Sampler for validation/test: sequential on one process; under DDP each sample goes to
    exactly one rank, with no padding duplicates (Lightning's default pads the last batch, which
    would count some samples twice in metrics)."""
    if trainer is not None and trainer.world_size > 1:
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )
    return SequentialSampler(dataset)
