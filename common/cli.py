"""The LightningCLI shared by ``seg`` and ``gan``: run folders, loggers, safe checkpoints.

Every run writes under ``<trainer.default_root_dir>/<run_name>/version_<n>/``: ``metrics.csv``,
``hparams.yaml``, ``config.yaml`` (the resolved config), ``checkpoints/``, ``images/`` and
``wandb/``.
``--ckpt_path last`` resumes the newest version of that run name that has a last checkpoint.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO

from common.callbacks import FiniteLossGuard, NonFiniteLossError, SaveLastOnInterrupt
from common.checkpoint import AtomicCheckpointIO, CheckpointError, load_checkpoint
from common.io import ImageReadError
from common.numerics import resolve_precision
from common.runs import choose_run_version
from common.wandb_logger import make_wandb_logger

DEFAULT_ROOT_DIR = "runs"
WANDB_PROJECT = "upsample-toolkit"


# The run folder is created (and may hold the W&B run id) before the CSV logger starts; metrics
# of a resumed run are moved aside first (see _keep_previous_metrics), so nothing is lost.
warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")


def _keep_previous_metrics(run_dir: Path) -> None:
    """Rename ``metrics.csv`` of the interrupted part of a resumed run to ``metrics.partN.csv``:
    Lightning's CSV logger would otherwise delete it when the resumed part starts logging."""
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        return
    part = 1
    while (run_dir / f"metrics.part{part}.csv").exists():
        part += 1
    metrics.rename(run_dir / f"metrics.part{part}.csv")


class ToolkitCLI(LightningCLI):
    """LightningCLI with the toolkit's run layout, default loggers and fault-safe checkpoints.

    Every subcommand gets the ``FiniteLossGuard`` and ``SaveLastOnInterrupt`` callbacks and writes
    checkpoints through ``AtomicCheckpointIO``.

    Extra options (per subcommand): ``--run_name`` (folder under the root dir), ``--wandb``
    (false turns W&B off; ``WANDB_MODE=disabled`` does too), ``--wandb_project``, ``--tensorboard``.
    ``--trainer.logger false`` turns every logger off; a logger list given in a config is used
    as is. ``trainer.precision`` left unset (null) becomes ``bf16-mixed`` on hardware with native
    bf16 (bf16-capable CUDA GPUs, CPUs with AVX-512-BF16 or AMX) and ``32-true`` elsewhere
    (``common.numerics.auto_precision``).
    """

    def __init__(
        self,
        model_class: type[LightningModule],
        datamodule_class: type[LightningDataModule],
        run_name: str,
        **kwargs: Any,
    ) -> None:
        self.default_run_name = run_name
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        trainer_defaults = dict(kwargs.pop("trainer_defaults", None) or {})
        trainer_defaults.setdefault("default_root_dir", DEFAULT_ROOT_DIR)
        callbacks = trainer_defaults.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
        for default in (FiniteLossGuard, SaveLastOnInterrupt):
            if not any(isinstance(callback, default) for callback in callbacks):
                callbacks.append(default())
        trainer_defaults["callbacks"] = callbacks
        super().__init__(model_class, datamodule_class, trainer_defaults=trainer_defaults, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name",
            type=str,
            default=self.default_run_name,
            help="Run folder name under trainer.default_root_dir.",
        )
        parser.add_argument(
            "--wandb",
            type=bool,
            default=True,
            help="Log to Weights & Biases (offline without an API key).",
        )
        parser.add_argument("--wandb_project", type=str, default=WANDB_PROJECT)
        parser.add_argument(
            "--tensorboard",
            type=bool,
            default=False,
            help="Also log to TensorBoard (needs the tensorboard package).",
        )

    def before_instantiate_classes(self) -> None:
        # ``trainer.precision: null`` (the configs' default) means the fastest numerics that keep
        # quality on this hardware; the resolved value is what config.yaml records.
        trainer = self._subcommand_config().get("trainer")
        if trainer is not None:
            accelerator = trainer.get("accelerator")
            trainer["precision"] = resolve_precision(trainer.get("precision"), accelerator)

    def _parse_ckpt_path(self) -> None:
        # Check a given checkpoint file first, so that a missing, truncated or foreign file gets
        # an error naming it instead of a torch.load traceback ("last" and "best" are names).
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and str(ckpt_path) not in {"last", "best", "hpc", "registry"}:
            load_checkpoint(ckpt_path)
        super()._parse_ckpt_path()

    def _subcommand_config(self) -> Any:
        return self.config[self.subcommand] if self.subcommand else self.config

    def _default_loggers(self, trainer_config: dict[str, Any]) -> list[Logger]:
        config = self._subcommand_config()
        root = Path(trainer_config.get("default_root_dir") or DEFAULT_ROOT_DIR)
        name = config.get("run_name") or self.default_run_name
        resume_last = self.subcommand == "fit" and config.get("ckpt_path") == "last"
        version = choose_run_version(root, name, resume_last)
        run_dir = root / name / version
        if resume_last:
            _keep_previous_metrics(run_dir)
        loggers: list[Logger] = [CSVLogger(save_dir=str(root), name=name, version=version)]
        if config.get("tensorboard"):
            loggers.append(
                TensorBoardLogger(
                    save_dir=str(root), name=name, version=version, sub_dir="tensorboard"
                )
            )
        if config.get("wandb", True) and self.subcommand in {"fit", "validate", "test"}:
            wandb_logger = make_wandb_logger(
                run_dir, config.get("wandb_project") or WANDB_PROJECT, f"{name}/{version}"
            )
            if wandb_logger is not None:
                loggers.append(wandb_logger)
        return loggers

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        logger = trainer_config.get("logger")
        if logger is None or logger is True:
            kwargs["logger"] = self._default_loggers(trainer_config)
        plugins = trainer_config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())
        kwargs["plugins"] = plugins
        return super().instantiate_trainer(**kwargs)


def exit_on_user_errors(main: Callable[[], Any]) -> Callable[[], None]:
    """Wrap a console-script ``main`` so that known user-facing errors print one clear line and
    exit with status 2 (bad input) or 3 (training stopped) instead of a traceback."""

    def wrapped() -> None:
        try:
            main()
        except (CheckpointError, ImageReadError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except NonFiniteLossError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(3)

    wrapped.__doc__ = main.__doc__
    wrapped.__name__ = getattr(main, "__name__", "main")
    return wrapped
