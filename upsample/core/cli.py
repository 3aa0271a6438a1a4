"""The LightningCLI shared by ``seg`` and ``gan``: run folders, loggers, safe checkpoints.

Every run writes under ``<trainer.default_root_dir>/<run_name>/version_<n>/``: ``metrics.csv``,
``hparams.yaml``, ``config.yaml`` (the resolved config), ``checkpoints/``, ``images/`` and
``wandb/``.
``--ckpt_path last`` resumes the newest version of that run name that has a last checkpoint.
"""

from __future__ import annotations

import functools
import re
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from upsample.core import interrupts
from upsample.core.callbacks import FinalCheckpoint, FiniteLossGuard, NonFiniteLossError
from upsample.core.checkpoint import (
    AtomicCheckpointIO,
    CheckpointError,
    check_named_classes,
    load_checkpoint,
)
from upsample.core.commands import EXIT_BAD_INPUT
from upsample.core.distributed import (
    DEFAULT_COLLECTIVE_TIMEOUT_S,
    SyncEpochMetrics,
    ddp_strategy_with_timeout,
    is_collective_failure,
)
from upsample.core.interrupts import DEFAULT_GRACE_S, GracefulShutdown
from upsample.core.io import ImageReadError
from upsample.core.numerics import resolve_precision
from upsample.core.progress import steady_progress_bar
from upsample.core.runs import choose_run_version
from upsample.core.trust import TRUST_FLAG, TRUST_HELP, UntrustedFileError
from upsample.core.wandb_logger import make_wandb_logger

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

    Every subcommand gets the ``SyncEpochMetrics`` (first), ``FiniteLossGuard``,
    ``GracefulShutdown`` and ``FinalCheckpoint`` callbacks (the last leaves ``last.ckpt`` at
    the final step however ``fit`` ends) and reads and writes checkpoints through
    ``AtomicCheckpointIO``.

    Extra options (per subcommand): ``--run_name`` (folder under the root dir), ``--wandb``
    (false turns W&B off; ``WANDB_MODE=disabled`` does too), ``--wandb_project``, ``--tensorboard``,
    ``--collective_timeout`` (seconds a DDP rank waits in a collective before failing) and
    ``--shutdown_grace`` (seconds after SIGTERM / Ctrl+C before exiting regardless) and
    ``--trust_checkpoint`` (load a ``--ckpt_path`` that needs code to run; without it such a
    file is refused before anything in it runs, see ``upsample.core.trust``).
    ``--trainer.logger false`` turns every logger off (and leaves out a ``LearningRateMonitor``,
    which needs one); a logger list given in a config is used as is. ``trainer.precision`` left
    unset (null) becomes ``bf16-mixed`` on hardware with native
    bf16 (bf16-capable CUDA GPUs, CPUs with AVX-512-BF16 or AMX) and ``32-true`` elsewhere
    (``upsample.core.numerics.auto_precision``).
    """

    def __init__(
        self,
        model_class: type[LightningModule],
        datamodule_class: type[LightningDataModule],
        run_name: str,
        **kwargs: Any,
    ) -> None:
        self.default_run_name = run_name
        given = kwargs.get("args")
        self._command_line = list(given) if isinstance(given, list | tuple) else sys.argv[1:]
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        trainer_defaults = dict(kwargs.pop("trainer_defaults", None) or {})
        trainer_defaults.setdefault("default_root_dir", DEFAULT_ROOT_DIR)
        callbacks = trainer_defaults.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
        for default in (SyncEpochMetrics, FiniteLossGuard, GracefulShutdown, FinalCheckpoint):
            if not any(isinstance(callback, default) for callback in callbacks):
                callbacks.append(default())
        trainer_defaults["callbacks"] = callbacks
        super().__init__(model_class, datamodule_class, trainer_defaults=trainer_defaults, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        parser = super().init_parser(**kwargs)
        report = parser.error

        def error(message: str, ex: Exception | None = None) -> Any:
            return report(message + config_files_note(message, self._command_line), ex)

        parser.error = error  # type: ignore[method-assign]
        return parser

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
        parser.add_argument(
            "--collective_timeout",
            type=float,
            default=DEFAULT_COLLECTIVE_TIMEOUT_S,
            help="DDP: seconds a rank waits in a collective (for the other ranks) before the job "
            "fails with a message naming the rank and the collective; also bounds the start-up "
            "rendezvous of the ranks.",
        )
        parser.add_argument(
            "--shutdown_grace",
            type=float,
            default=DEFAULT_GRACE_S,
            help="Seconds after SIGTERM or Ctrl+C before the job exits even if it could not stop "
            "cleanly (a second signal exits at once).",
        )
        parser.add_argument(
            TRUST_FLAG,
            type=bool,
            default=False,
            help=TRUST_HELP,
        )

    def before_instantiate_classes(self) -> None:
        # ``trainer.precision: null`` (the configs' default) means the fastest numerics that keep
        # quality on this hardware; the resolved value is what config.yaml records.
        trainer = self._subcommand_config().get("trainer")
        if trainer is not None:
            accelerator = trainer.get("accelerator")
            trainer["precision"] = resolve_precision(trainer.get("precision"), accelerator)

    def _trusts_checkpoints(self) -> bool:
        # called before LightningCLI sets self.subcommand
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        return bool(config.get(TRUST_FLAG.removeprefix("--")))

    def _parse_ckpt_path(self) -> None:
        # Replaces LightningCLI's own: the file is read by the toolkit's rule (no code from it
        # runs, upsample.core.trust) and checked first, so that a missing, truncated, foreign or
        # hostile file gets an error naming it; then its hyperparameters set the model's
        # options, as in LightningCLI. "last" and "best" are names Lightning resolves later,
        # reading through AtomicCheckpointIO under the same rule.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or str(ckpt_path) in {"last", "best", "hpc", "registry"}:
            return
        trust = self._trusts_checkpoints()
        checkpoint = load_checkpoint(ckpt_path, trust=trust)
        check_named_classes(checkpoint, ckpt_path, self.model_class, trust)
        options = self.checkpoint_model_options(checkpoint)
        if not options:
            return
        try:
            given = {subcommand: {"model": options}}
            self.config = self.parser.parse_object(given, self.config)
        except SystemExit:
            sys.stderr.write(f"{ckpt_path}: parsing its hyperparameters failed\n")
            raise

    def checkpoint_model_options(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """The model options that a checkpoint given by ``--ckpt_path`` sets: its
        hyperparameters (LightningCLI's rule, which subclasses refine)."""
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        return hparams

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
        config = self._subcommand_config()
        logger = trainer_config.get("logger")
        if logger is None or logger is True:
            kwargs["logger"] = self._default_loggers(trainer_config)
        elif logger is False:
            kwargs["callbacks"] = _without_learning_rate_monitor(trainer_config.get("callbacks"))
        callbacks = _as_list(kwargs.get("callbacks", trainer_config.get("callbacks")))
        configured = [*callbacks, *_as_list(self.trainer_defaults.get("callbacks"))]
        wants_bar = trainer_config.get("enable_progress_bar") is not False
        if wants_bar and not any(isinstance(c, ProgressBar) for c in configured):
            # Lightning's own bar redraws and reads the metrics after every batch
            kwargs["callbacks"] = [*callbacks, steady_progress_bar()]
        plugins = trainer_config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO(trust=self._trusts_checkpoints()))
        kwargs["plugins"] = plugins
        kwargs["strategy"] = ddp_strategy_with_timeout(
            trainer_config.get("strategy", "auto"),
            float(config.get("collective_timeout") or DEFAULT_COLLECTIVE_TIMEOUT_S),
        )
        trainer = super().instantiate_trainer(**kwargs)
        _configure_toolkit_callbacks(
            trainer, float(config.get("shutdown_grace") or DEFAULT_GRACE_S)
        )
        return trainer


#: how jsonargparse names the option an error is about.
_ERROR_KEYS = (
    re.compile(r'Parser key "([\w.]+)"'),
    re.compile(r"does not accept options? '([\w.]+)'"),
    re.compile(r'[Kk]ey "([\w.]+)"'),
)


def config_files(command_line: Sequence[str]) -> list[str]:
    """The files given with ``--config`` (``-c``) on a command line, in order."""
    files = []
    for index, arg in enumerate(command_line):
        if arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
        elif arg in ("--config", "-c") and index + 1 < len(command_line):
            files.append(command_line[index + 1])
    return files


def config_files_note(message: str, command_line: Sequence[str]) -> str:
    """For a parser error about an option (``model.lr``: a wrong type, an unknown key), the
    ``--config`` files of the command line that set it, as a line to add to the message ("" when
    no file does, or the message names no option)."""
    found = next((match.group(1) for p in _ERROR_KEYS if (match := p.search(message))), None)
    if found is None:
        return ""
    setting = []
    for path in config_files(command_line):
        try:
            value: Any = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError, ValueError):
            continue  # not a file (a YAML string), or unreadable: the parser says so itself
        for part in found.split("."):
            value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
        if value is not _MISSING:
            setting.append(path)
    return f"\n  {found} is set in {', '.join(setting)}" if setting else ""


_MISSING = object()


def _as_list(callbacks: Any) -> list[Callback]:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]


def _without_learning_rate_monitor(callbacks: Any) -> list[Callback]:
    """The configured callbacks less ``LearningRateMonitor``, which fails without a logger."""
    callbacks = list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]
    kept = [c for c in callbacks if c is not None and not isinstance(c, LearningRateMonitor)]
    if len(kept) < len([c for c in callbacks if c is not None]):
        rank_zero_info("LearningRateMonitor left out: --trainer.logger false turns loggers off")
    return kept


def _configure_toolkit_callbacks(trainer: Trainer, shutdown_grace_s: float) -> None:
    """Put ``SyncEpochMetrics`` before every other callback (the progress bar in particular) and
    give ``GracefulShutdown`` the configured grace period."""
    sync = [c for c in trainer.callbacks if isinstance(c, SyncEpochMetrics)]
    trainer.callbacks = sync + [c for c in trainer.callbacks if c not in sync]
    for callback in trainer.callbacks:
        if isinstance(callback, GracefulShutdown):
            if shutdown_grace_s <= 0:
                raise ValueError(f"--shutdown_grace must be positive, got {shutdown_grace_s}")
            callback.grace_s = shutdown_grace_s


EXIT_NON_FINITE_LOSS = 3
EXIT_COLLECTIVE_FAILED = 4


def exit_on_user_errors(main: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a console-script ``main`` so that known errors print one clear line and exit with a
    documented status instead of a traceback: 2 bad input (checkpoint, image, missing file),
    3 non-finite loss, 4 a DDP collective failed (another rank died or hangs), 128 + signal
    number when SIGTERM (143) or Ctrl+C (130) stopped training after writing ``last.ckpt``."""

    @functools.wraps(main)
    def wrapped(*args: Any, **kwargs: Any) -> None:
        try:
            main(*args, **kwargs)
        except (CheckpointError, UntrustedFileError, ImageReadError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except NonFiniteLossError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(EXIT_NON_FINITE_LOSS)
        except SIGTERMException:
            signum = interrupts.stopped_by_signal or signal.SIGTERM
            print(
                f"stopped by {interrupts.signal_name(signum)}; resume with --ckpt_path last",
                file=sys.stderr,
            )
            sys.exit(128 + int(signum))
        except RuntimeError as error:
            if not is_collective_failure(error):
                raise
            # GracefulShutdown already said which rank waited in which collective.
            print(f"error: a DDP collective failed: {error}", file=sys.stderr)
            sys.exit(EXIT_COLLECTIVE_FAILED)

    return wrapped
