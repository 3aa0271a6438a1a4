"""Samplers that make data order reproducible across resumes and count eval samples once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler

from upsample.core.seeding import mix_seed


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


def epoch_batches_done(trainer: pl.Trainer | None) -> int:
    """Training batches of the current epoch that went through the training step (0 outside
    ``fit``): those a run resumed from a checkpoint written now has no need to see again."""
    if trainer is None:
        return 0
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)


class _SkipFirstBatches:
    """A batch sampler whose next pass starts after the batches its loader was told to skip
    (a pass after that one is whole)."""

    def __init__(self, batches: Iterable[list[Any]], loader: ResumableDataLoader) -> None:
        self.batches, self.loader = batches, loader

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[Any]]:
        # A generator: the skip is taken when the first batch is drawn, not when an iterator
        # is made (a multi-process loader makes one and discards it before the one it uses).
        skip, self.loader.skip_batches = self.loader.skip_batches, 0
        iterator = iter(self.batches)
        for _ in range(skip):  # indices only: the skipped samples are never read
            next(iterator, None)
        yield from iterator


class ResumableDataLoader(DataLoader):
    """A training ``DataLoader`` that a run resumed inside an epoch continues where it stopped.

    A checkpoint written inside an epoch (``max_steps``, ``max_time``, a signal) records how
    many batches of the epoch were trained (``state_dict``, saved by Lightning with the loops);
    resumed from it, the epoch's first pass skips those batches' indices, so with a sampler
    seeded by ``(seed, epoch)`` the run sees exactly the batches an uninterrupted one would.
    A checkpoint written at an epoch's end skips nothing. Under DDP the skip applies to each
    rank's own batches.

    Args:
        progress: the number of batches completed in the current epoch (the trainer's
            progress, ``epoch_batches_done``); other arguments as ``DataLoader``'s.
    """

    def __init__(self, *args: Any, progress: Callable[[], int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.progress = progress
        self.skip_batches = 0

    @property
    def _index_sampler(self) -> Any:
        return _SkipFirstBatches(super()._index_sampler, self)

    def state_dict(self) -> dict[str, int]:
        return {"batches_done": self.progress() if self.progress is not None else 0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        done = int(state_dict.get("batches_done", 0))
        self.skip_batches = done if 0 < done < len(self) else 0
