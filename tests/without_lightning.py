"""Run a console script in a fresh interpreter where Lightning cannot be imported: the commands
that run an exported model in ONNX Runtime must work without it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, sys

    class NoLightning(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("lightning", "pytorch_lightning"):
                raise ImportError(f"{name} is not installed here")
            return None

    sys.meta_path.insert(0, NoLightning())
    main = importlib.import_module(sys.argv[1]).main
    try:
        main(sys.argv[2:])
    except SystemExit as exit:
        print("exit", exit.code)
    """
)


def run_without_lightning(console: str, args: Sequence[str]) -> subprocess.CompletedProcess:
    """Run ``<console>.main(args)`` (e.g. ``seg.console``) with Lightning blocked; stdout ends
    with ``exit <status>`` when the script exits."""
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, console, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
