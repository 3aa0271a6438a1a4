"""Files shipped inside installed Python packages, found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def installed_package_file(package: str, pattern: str) -> Path | None:
    """The first file (in sorted order) matching the glob ``pattern`` inside the installed
    ``package``'s folders, or ``None`` when the package is not installed or holds no such file.

    The package is located with ``importlib.util.find_spec`` and never imported: weight wheels
    may import heavy frameworks at import time.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(path for path in Path(folder).glob(pattern) if path.is_file())
        if found:
            return found[0]
    return None
