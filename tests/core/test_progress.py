"""The toolkit's progress bar counts every batch but redraws, and reads the logged metrics
(which waits for the device), at most every ``interval_s`` and at the end of each epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest

from tests.core.toy import ToyData, ToyModule
from upsample.core.cli import ToolkitCLI
from upsample.core.progress import SteadyRichProgressBar, SteadyTQDMProgressBar, steady_progress_bar


def counting(bar_class: type) -> type:
    class Counting(bar_class):
        metric_reads = 0

        def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Any:
            type(self).metric_reads += 1
            return super().get_metrics(trainer, pl_module)

    return Counting


@pytest.mark.parametrize("bar_class", [SteadyRichProgressBar, SteadyTQDMProgressBar])
def test_metrics_are_read_at_the_bars_pace_not_every_batch(bar_class: type, tmp_path: Path) -> None:
    bar = counting(bar_class)(interval_s=3600.0)
    trainer = pl.Trainer(
        max_epochs=2,
        limit_val_batches=0,
        callbacks=[bar],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(ToyModule(), datamodule=ToyData())
    batches = 2 * trainer.num_training_batches
    assert batches == 8
    # the first batch, each epoch's last (the bar shows where it ended) and the epoch ends
    assert bar.metric_reads <= 2 + 2 * 2 < batches + 2


def test_the_cli_gives_the_steady_bar_unless_a_bar_is_configured_or_off(tmp_path: Path) -> None:
    def trainer_of(*extra: str) -> pl.Trainer:
        args = ["fit", f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=1"]
        args += ["--trainer.accelerator=cpu", "--wandb=false", *extra]
        return ToolkitCLI(ToyModule, ToyData, run_name="toy", args=args).trainer

    assert type(trainer_of().progress_bar_callback) is type(steady_progress_bar())
    configured = trainer_of("--trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar")
    assert type(configured.progress_bar_callback).__name__ == "TQDMProgressBar"
    assert trainer_of("--trainer.enable_progress_bar=false").progress_bar_callback is None
