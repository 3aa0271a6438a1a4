"""Class paths of earlier versions of the toolkit and where those classes live now.

Checkpoints name classes by import path (a network's ``class_path``, a generator recorded by
name). When the shared library moved under the ``upsample`` namespace and ``gan`` into folders by
flow, those paths changed; a file written before names the old ones. This table maps them,
explicitly: nothing a file names is imported to find out where it went.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: old module (or module prefix) -> today's, longest first where one is a prefix of another
RENAMED_MODULES: dict[str, str] = {
    "blocks": "upsample.blocks",
    "common": "upsample.core",
    "app": "upsample_app",
    "gan.models": "gan.dcgan.models",
    "gan.module": "gan.dcgan.module",
    "gan.data": "gan.dcgan.data",
    "gan.network_io": "gan.dcgan.network_io",
    "gan.sample": "gan.dcgan.sample",
    "gan.deploy": "gan.dcgan.deploy",
    "gan.losses": "gan.core.losses",
    "gan.optimizers": "gan.core.optimizers",
    "gan.fid_features": "gan.fid.features",
    "gan.fid_metric": "gan.fid.metric",
    "gan.fid_validation": "gan.fid.validation",
    "gan.pix2pix": "gan.translation.pix2pix",
    "gan.paired_data": "gan.translation.paired_data",
    "gan.paired_datamodule": "gan.translation.paired_datamodule",
    "gan.translate": "gan.translation.translate",
}
#: classes that left their module's successor for another
RENAMED_CLASSES: dict[str, str] = {
    "gan.module.AdversarialModule": "gan.core.adversarial.AdversarialModule",
    "gan.data.SplitDataModule": "gan.core.data.SplitDataModule",
}


def current_class_path(class_path: str) -> str:
    """Today's import path of a class that an earlier version named ``class_path`` (unchanged
    when it did not move)."""
    if class_path in RENAMED_CLASSES:
        return RENAMED_CLASSES[class_path]
    module, _, name = class_path.rpartition(".")
    for old in sorted(RENAMED_MODULES, key=len, reverse=True):
        if module == old or module.startswith(old + "."):
            return f"{RENAMED_MODULES[old]}{module[len(old) :]}.{name}"
    return class_path


def upgrade_class_paths(value: Any) -> Any:
    """``value`` (hyperparameters) with every ``class_path`` / ``_class_path`` string at any depth
    mapped by :func:`current_class_path`; the same object when nothing moved."""
    if isinstance(value, Mapping):
        items = {
            key: current_class_path(item)
            if key in ("class_path", "_class_path") and isinstance(item, str)
            else upgrade_class_paths(item)
            for key, item in value.items()
        }
        changed = any(items[key] is not value[key] for key in value)
        return type(value)(items) if changed else value
    if isinstance(value, list | tuple):
        items = [upgrade_class_paths(item) for item in value]
        changed = any(new is not old for new, old in zip(items, value, strict=True))
        return type(value)(items) if changed else value
    return value
