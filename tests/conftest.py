"""Suite-wide settings: offline, quiet, and deterministic."""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# In-process tests run without W&B; the tests of commands as users run them (DDP, the README's
# invocations, tests/processes.py) give their commands WANDB_MODE=offline, the users' default.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
