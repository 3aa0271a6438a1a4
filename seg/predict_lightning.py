"""``seg predict --input`` across devices and machines: Lightning's launcher starts one process
per device (``--trainer.devices N``, ``--trainer.num_nodes M``; under SLURM, torchrun and the
other cluster environments Lightning knows, the cluster starts them), and every rank runs the
folder pipeline (``FolderPredictor``) on its share of the sorted inputs, writing its own outputs.

Rank r of W takes the inputs r, r + W, r + 2W, ... (``Shard.within``: the order of
``DistributedSampler`` without its padding), so that every input is predicted exactly once. The
counts are reduced with the strategy's collectives, called by every rank in the same order and
never inside a rank-dependent branch (``upsample.core.distributed``): while the ranks run, every
``SYNC_EVERY`` images a rank agrees with the others on the counts shown by the progress bar (on
rank 0) and on whether a signal asked any of them to stop; a rank that has finished keeps
answering these agreements until all have (the ranks' shares differ by up to one image, and
their outputs already complete differ more). At the end every rank reduces the counts and
gathers the failures; rank 0 prints the report and writes ``summary.json``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch import Trainer
from lightning.pytorch.strategies import Strategy

from seg.inference.inputs import InputFiles
from seg.inference.progress import FolderProgress
from seg.inference.stopping import StopRequest, handling_signals
from seg.inference.summary import PredictionSummary
from seg.predict_options import exit_status, make_predictor, summary_path
from upsample.core.commands import EXIT_SKIPPED
from upsample.core.distributed import DEFAULT_COLLECTIVE_TIMEOUT_S, ddp_strategy_with_timeout

#: images a rank reads between two agreements with the other ranks.
SYNC_EVERY = 32


class RanksProgress(FolderProgress):
    """``FolderProgress`` over every rank's images: the counts are summed over the ranks every
    ``SYNC_EVERY`` images (a collective that every rank calls; see the module docstring), a
    stop requested on any rank reaches all of them there, and ``close`` waits for the others."""

    def __init__(
        self,
        strategy: Strategy,
        stop: StopRequest,
        total: int,
        already_complete: int,
        enabled: bool,
    ) -> None:
        self.strategy = strategy
        self.stop = stop
        counts = self._sum([total, already_complete])
        ranks = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        super().__init__(int(counts[0]), int(counts[1]), enabled, f"{ranks} ranks")
        self.done = self.failed_here = self.calls = 0

    def _sum(self, values: list[int]) -> torch.Tensor:
        tensor = torch.tensor(values, dtype=torch.int64, device=self.strategy.root_device)
        return self.strategy.reduce(tensor, reduce_op="sum").cpu()

    def _agree(self, running: bool) -> bool:
        """Sum the counts over the ranks, take the largest stop signal; whether any rank runs."""
        counts = self._sum([self.done, self.failed_here, int(running)])
        signal = torch.tensor([self.stop.signum or 0], device=self.strategy.root_device)
        signal = int(self.strategy.reduce(signal, reduce_op="max").item())
        if signal:
            self.stop.request(signal)
        self.bar.update(int(counts[0]) - self.bar.n)
        self._show_counts(failed=int(counts[1]))
        return bool(counts[2])

    def advance(self, images: int, failed: int = 0) -> None:
        self.done += images
        self.failed_here += failed
        self.calls += 1
        if self.calls % SYNC_EVERY == 0:
            self._agree(running=True)

    def close(self) -> None:
        while self._agree(running=False):
            pass
        super().close()


def reduce_summary(strategy: Strategy, summary: PredictionSummary) -> PredictionSummary:
    """The summary of every rank together, on every rank (collectives that all ranks call)."""
    counts = torch.tensor(
        [len(summary.written), summary.already_complete, summary.total],
        dtype=torch.int64,
        device=strategy.root_device,
    )
    counts = strategy.reduce(counts, reduce_op="sum").cpu()
    wall = torch.tensor([summary.wall_time_s], dtype=torch.float64, device=strategy.root_device)
    wall_time_s = float(strategy.reduce(wall, reduce_op="max").item())
    failures: list[Any] = [summary.skipped]
    if dist.is_available() and dist.is_initialized():
        failures = [None] * dist.get_world_size()
        dist.all_gather_object(failures, summary.skipped)
    return PredictionSummary(
        written=summary.written,
        written_elsewhere=int(counts[0]) - len(summary.written),
        skipped=sorted(item for part in failures for item in part),
        already_complete=int(counts[1]),
        total=int(counts[2]),
        wall_time_s=wall_time_s,
        stopped_by=summary.stopped_by,
    )


def make_trainer(trainer_options: dict[str, Any]) -> Trainer:
    """A ``Trainer`` that only launches and connects the processes (no logger, no checkpoints,
    no bar of its own); DDP unless ``strategy`` says otherwise, with the toolkit's timeout on
    collectives."""
    options = dict(trainer_options)
    strategy = options.pop("strategy", "ddp")
    return Trainer(
        **options,
        strategy=ddp_strategy_with_timeout(strategy, DEFAULT_COLLECTIVE_TIMEOUT_S),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def predict_on_devices(options: argparse.Namespace, trainer_options: dict[str, Any]) -> int:
    """Run ``seg predict --input`` on every device of the trainer; the exit status (rank 0's:
    the job's; other ranks exit 0 unless they fail, as Lightning's launcher ends every process
    when one exits with another status)."""
    trainer = make_trainer(trainer_options)
    launcher = trainer.strategy.launcher
    if launcher is None:
        return _predict_rank(trainer, options)
    return launcher.launch(_predict_rank, trainer, options, trainer=trainer)


def _predict_rank(trainer: Trainer, options: argparse.Namespace) -> int:
    """One rank's part: its share, then the reductions, then (rank 0) the report."""
    strategy = trainer.strategy
    strategy.setup_environment()
    rank, world_size = trainer.global_rank, trainer.world_size
    try:
        predictor = make_predictor(
            options,
            device=str(strategy.root_device),
            processes_per_machine=max(1, world_size // trainer.num_nodes),
        )
        inputs = InputFiles.from_source(options.input, exclude=options.output)
        if not inputs.files:  # the same on every rank: no collective is left waiting
            if rank == 0:
                print(f"error: {options.input}: no image files found", file=sys.stderr)
            return EXIT_SKIPPED if rank == 0 else 0
        share = inputs.share(options.shard.within(rank, world_size))
        stop = StopRequest()

        def progress(total: int, complete: int, enabled: bool) -> FolderProgress:
            return RanksProgress(strategy, stop, total, complete, enabled and rank == 0)

        with handling_signals(stop):
            local = predictor.predict_files(
                share, options.output, options.overwrite, stop, progress
            )
        summary = reduce_summary(strategy, local)
        if rank == 0:
            summary.write_json(
                summary_path(options.output, options.shard),
                shard=str(options.shard),
                world_size=world_size,
            )
            print(summary.report(), file=sys.stderr)
        return exit_status(summary, stop) if rank == 0 else 0
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
