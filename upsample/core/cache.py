"""The toolkit's cache folder (encoder weights dropped in by users, class-frequency statistics)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "UPSAMPLE_CACHE_DIR"


def cache_dir() -> Path:
    """``$UPSAMPLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/upsample-toolkit``, else
    ``~/.cache/upsample-toolkit``. Not created here."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "upsample-toolkit"
