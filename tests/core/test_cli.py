"""upsample.core.cli: run folders, loggers, resume resolution, non-finite loss and atomic
checkpoints."""

import os
import signal
from pathlib import Path

import pytest
import torch

from tests.core.toy import ToyData, ToyModule
from upsample.core import interrupts
from upsample.core.callbacks import NonFiniteLossError
from upsample.core.checkpoint import AtomicCheckpointIO, CheckpointError, load_checkpoint
from upsample.core.cli import ToolkitCLI
from upsample.core.runs import RUN_VERSION_ENV, choose_run_version
from upsample.core.wandb_logger import wandb_mode

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def _fresh_run_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RUN_VERSION_ENV, raising=False)


def _fit(root: Path, *extra: str) -> None:
    ToolkitCLI(
        ToyModule,
        ToyData,
        run_name="toy",
        args=[
            "fit",
            f"--trainer.default_root_dir={root}",
            "--trainer.max_epochs=2",
            "--trainer.accelerator=cpu",
            "--trainer.callbacks+=ModelCheckpoint",
            "--trainer.callbacks.save_last=true",
            *extra,
        ],
    )


def test_two_runs_get_separate_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fit(tmp_path)
    monkeypatch.delenv(RUN_VERSION_ENV)
    _fit(tmp_path)
    for version in ("version_0", "version_1"):
        run = tmp_path / "toy" / version
        assert (run / "metrics.csv").is_file()
        assert (run / "config.yaml").is_file()
        assert (run / "hparams.yaml").is_file()
        assert (run / "checkpoints" / "last.ckpt").is_file()
        assert list((run / "images" / "val_samples").glob("*.png"))
    assert not any(Path.cwd().glob("lightning_logs"))


def test_resume_last_continues_the_newest_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fit(tmp_path)
    monkeypatch.delenv(RUN_VERSION_ENV)
    _fit(tmp_path, "--ckpt_path=last", "--trainer.max_epochs=3")
    run = tmp_path / "toy" / "version_0"
    assert not (tmp_path / "toy" / "version_1").exists()
    state = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert state["epoch"] == 2 and state["global_step"] == 12  # 4 batches x 3 epochs
    # the first part's metrics are kept beside the resumed part's
    assert "val/loss" in (run / "metrics.part1.csv").read_text()
    assert "val/loss" in (run / "metrics.csv").read_text()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    _fit(tmp_path, "--trainer.max_epochs=3")
    checkpoint = tmp_path / "toy" / "version_0" / "checkpoints" / "last.ckpt"
    good = checkpoint.read_bytes()
    import os

    os.environ.pop(RUN_VERSION_ENV)
    with pytest.raises(NonFiniteLossError, match=r"not finite .* optimizer step 14"):
        _fit(tmp_path, "--ckpt_path=last", "--trainer.max_epochs=5", "--model.nan_at_step=13")
    assert checkpoint.read_bytes() == good


def test_choose_run_version_is_shared_with_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert choose_run_version(tmp_path, "x", resume_last=False) == "version_0"
    # the launcher itself (or a later run in the same process) picks a new folder ...
    assert choose_run_version(tmp_path, "x", resume_last=False) == "version_1"
    # ... while a DDP worker re-running the command line inherits the launcher's choice
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert choose_run_version(tmp_path, "x", resume_last=False) == "version_1"
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert choose_run_version(tmp_path, "x", resume_last=True) == "version_2"  # nothing resumable


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WANDB_MODE": "disabled"}, "disabled"),
        ({"WANDB_MODE": "dryrun"}, "offline"),
        ({"WANDB_MODE": "", "WANDB_API_KEY": "x" * 40}, "online"),
        ({"WANDB_MODE": "", "WANDB_API_KEY": "", "NETRC": "/nonexistent"}, "offline"),
    ],
)
def test_wandb_mode(env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/nonexistent")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert wandb_mode() == expected


def test_atomic_checkpoint_io_never_leaves_partial_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "model.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    before = path.read_bytes()

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"state_dict": {}, "bad": Unpicklable()}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]


def test_load_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing.ckpt: checkpoint file not found"):
        load_checkpoint(tmp_path / "nothing.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="corrupt.ckpt: not a readable"):
        load_checkpoint(corrupt)
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.ones(1)}, plain)
    with pytest.raises(CheckpointError, match="plain.ckpt: expected a Lightning checkpoint"):
        load_checkpoint(plain)


@pytest.mark.slow
def test_offline_wandb_run_writes_metrics_and_images_under_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no credentials, so offline
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # the logger's save_dir wins
    _fit(tmp_path / "runs")
    run = tmp_path / "runs" / "toy" / "version_0"
    offline_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1, list(run.rglob("*"))
    assert list(offline_runs[0].glob("*.wandb")), "no W&B event file to sync"
    images = list((offline_runs[0] / "files" / "media" / "images").rglob("*.png"))
    assert images, "no image logged to W&B"
    assert "val/loss" in (run / "metrics.csv").read_text()


@pytest.mark.parametrize("stop_signal", ["SIGTERM", "SIGINT"])
def test_signal_writes_last_checkpoint_and_resume_continues(
    tmp_path: Path, stop_signal: str
) -> None:
    # Python's default_int_handler in a terminal; SIG_IGN where the suite runs as a background
    # job of a non-interactive shell (which starts it with SIGINT ignored)
    sigint_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException
        _fit(
            tmp_path,
            "--trainer.max_epochs=3",
            "--model.sigterm_at_step=6",
            f"--model.stop_signal={stop_signal}",
        )
    assert interrupts.stopped_by_signal == signal.Signals[stop_signal]
    # the handlers of the process are back as they were (in a terminal, Ctrl+C raises
    # KeyboardInterrupt again)
    assert signal.getsignal(signal.SIGINT) is sigint_before
    checkpoint = tmp_path / "toy" / "version_0" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(checkpoint)["global_step"] == 7  # written on the signal, mid-epoch 2
    _fit(tmp_path, "--ckpt_path=last", "--trainer.max_epochs=3")
    assert load_checkpoint(checkpoint)["global_step"] > 7
    assert not (tmp_path / "toy" / "version_1").exists()


def test_bad_checkpoint_path_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.ckpt: not a readable"):
        _fit(tmp_path, f"--ckpt_path={broken}")
    with pytest.raises(CheckpointError, match="gone.ckpt: checkpoint file not found"):
        _fit(tmp_path, f"--ckpt_path={tmp_path / 'gone.ckpt'}")


def test_signal_during_validate_stops_before_the_next_batch(tmp_path: Path) -> None:
    """``validate`` on its own: SIGTERM ends it at the next batch, writes no checkpoint, and
    leaves the process's handlers as they were."""
    _fit(tmp_path)
    checkpoint = tmp_path / "toy" / "version_0" / "checkpoints" / "last.ckpt"
    before = checkpoint.stat().st_mtime_ns

    class SignalOnFirstBatch(ToyModule):
        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            if batch_idx == 0:
                os.kill(os.getpid(), signal.SIGTERM)
            super().validation_step(batch, batch_idx)

    with pytest.raises(SystemExit):
        ToolkitCLI(
            SignalOnFirstBatch,
            ToyData,
            run_name="toy",
            args=[
                "validate",
                f"--trainer.default_root_dir={tmp_path}",
                "--trainer.accelerator=cpu",
                f"--ckpt_path={checkpoint}",
            ],
        )
    assert interrupts.stopped_by_signal == signal.SIGTERM
    assert checkpoint.stat().st_mtime_ns == before
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)


@pytest.mark.parametrize(
    ("content", "key", "expected"),
    [
        ("model:\n  lr: fast\n", "model.lr", "Expected a <class 'float'>"),
        ("model:\n  lrr: 0.1\n", "model.lrr", "does not accept option"),
        ("trainer:\n  max_epochs: ten\n", "trainer.max_epochs", "Expected a <class 'int'>"),
    ],
)
def test_a_config_file_with_a_bad_value_or_an_unknown_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str, key: str, expected: str
) -> None:
    """``seg fit --config shipped.yaml --config mine.yaml``: the error names the option, what
    was expected, and the file that set it."""
    from seg.console import main

    mine = tmp_path / "mine.yaml"
    mine.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "configs/seg/fcn8s_fashion.yaml", "--config", str(mine)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert key in error and expected in error and f"{key} is set in {mine}" in error


def test_a_deferred_loss_check_names_the_first_bad_step_before_any_checkpoint_of_it(
    tmp_path: Path,
) -> None:
    """As on a GPU, where the losses stay on the device between checks: checked every 4 batches
    and before every checkpoint; a checkpoint saved after every step (the second
    ``ModelCheckpoint``) never holds a step after the bad one."""
    every_step = tmp_path / "every_step"
    with pytest.raises(NonFiniteLossError, match=r"not finite \(loss=nan\) at optimizer step 6,"):
        _fit(
            tmp_path,
            "--model.nan_at_step=5",
            "--trainer.callbacks+=upsample.core.callbacks.FiniteLossGuard",
            "--trainer.callbacks.check_every_n_steps=4",
            "--trainer.callbacks+=ModelCheckpoint",
            f"--trainer.callbacks.dirpath={every_step}",
            "--trainer.callbacks.every_n_train_steps=1",
            "--trainer.callbacks.save_top_k=-1",
        )
    steps = sorted(
        int(torch.load(p, weights_only=True)["global_step"]) for p in every_step.iterdir()
    )
    assert steps == [1, 2, 3, 4, 5]
