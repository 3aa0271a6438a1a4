#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not slow"` for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE="${WANDB_MODE:-disabled}" WANDB_SILENT=true
exec .venv/bin/python -m pytest "$@"
