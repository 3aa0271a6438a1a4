"""A Weights & Biases logger that runs offline when no API key is configured."""

from __future__ import annotations

import netrc
import os
import uuid
from pathlib import Path
from typing import Any, Literal

WandbMode = Literal["online", "offline", "disabled"]


def _has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode() -> WandbMode:
    """``$WANDB_MODE`` when set (``dryrun`` counts as offline); else online with a key, offline
    without one, so that a machine with no key or no network never hangs or prompts."""
    requested = os.environ.get("WANDB_MODE", "").strip().lower()
    if requested in {"disabled", "off"}:
        return "disabled"
    if requested in {"offline", "dryrun"}:
        return "offline"
    if requested == "online":
        return "online"
    return "online" if _has_wandb_credentials() else "offline"


def run_id_for(run_dir: Path) -> str:
    """A stable W&B run id per run directory, so a resumed run continues the same W&B run."""
    id_file = run_dir / "wandb_run_id.txt"
    if id_file.is_file():
        return id_file.read_text().strip()
    run_id = uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")
    return run_id


def make_wandb_logger(run_dir: Path, project: str, name: str, **kwargs: Any) -> Any | None:
    """A ``WandbLogger`` writing under ``run_dir/wandb``, or None when W&B is disabled."""
    mode = wandb_mode()
    if mode == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(
        save_dir=str(run_dir),
        project=project,
        name=name,
        id=run_id_for(run_dir),
        offline=mode == "offline",
        **kwargs,
    )
