"""A tiny LightningModule and DataModule for testing the shared CLI machinery.

``python -m tests.core.toy fit ...`` runs them through ``ToolkitCLI`` as the console scripts do
(same error handling and exit statuses), for multi-process tests.
"""

import os
import signal
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from upsample.core.logging import log_images
from upsample.core.sampling import SeededShuffleSampler, evaluation_sampler


class ToyModule(pl.LightningModule):
    """Linear regression whose loss can be made non-finite, or which receives SIGTERM, at a chosen
    step; or one of whose ranks stops making progress (``stall_rank``) at a chosen step, as a hung
    data source or a deadlock would: it writes its pid to ``stall_marker`` and sleeps.

    ``sigterm_rank`` limits ``sigterm_at_step`` to one rank (-1: every rank); ``stop_signal`` is the
    signal sent (``SIGTERM``, or ``SIGINT`` as Ctrl+C sends).
    """

    def __init__(
        self,
        lr: float = 0.1,
        nan_at_step: int = -1,
        sigterm_at_step: int = -1,
        sigterm_rank: int = -1,
        stop_signal: str = "SIGTERM",
        stall_at_step: int = -1,
        stall_rank: int = 1,
        stall_marker: str = "",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(4, 1)

    def _maybe_stall(self) -> None:
        hparams = self.hparams
        if self.global_step != hparams.stall_at_step or self.global_rank != hparams.stall_rank:
            return
        if hparams.stall_marker:
            Path(hparams.stall_marker).write_text(str(os.getpid()))
        time.sleep(3600)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        if self.global_step == self.hparams.nan_at_step:
            loss = loss * float("nan")
        signal_here = self.hparams.sigterm_rank in (-1, self.global_rank)
        if self.global_step == self.hparams.sigterm_at_step and signal_here:
            # as a cluster scheduler (SIGTERM) or a user at the terminal (SIGINT) would
            os.kill(os.getpid(), signal.Signals[self.hparams.stop_signal])
        self._maybe_stall()
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.mse_loss(self.net(x), y), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        log_images(self.trainer, "val/samples", torch.rand(2, 3, 8, 8))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class ToyData(pl.LightningDataModule):
    """32 random samples of a fixed linear function."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(32, 4, generator=generator)
        self.dataset = TensorDataset(x, x.sum(1, keepdim=True))
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, self.batch_size, sampler=SeededShuffleSampler(self.dataset))

    def val_dataloader(self) -> DataLoader:
        sampler = evaluation_sampler(self.dataset, self.trainer)
        return DataLoader(self.dataset, self.batch_size, sampler=sampler)


if __name__ == "__main__":
    from upsample.core.cli import ToolkitCLI, exit_on_user_errors

    exit_on_user_errors(lambda: ToolkitCLI(ToyModule, ToyData, run_name="toy"))()
