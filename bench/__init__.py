"""Benchmarks: one harness (``bench.harness``) and one module per question, each run as
``python -m bench.<name>`` (see ``bench/README.md``)."""

import os

# Every benchmark runs without W&B and without albumentations' network check for updates.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
