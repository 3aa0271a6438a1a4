#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m "not slow"` for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export NO_ALBUMENTATIONS_UPDATE=1 WANDB_MODE="${WANDB_MODE:-disabled}" WANDB_SILENT=true
# One worker process per core (TEST_WORKERS overrides; 0 runs everything in this process), each
# test file on one worker: the files' fixtures are built once, and the tests that run commands
# as separate processes keep their own timeouts.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-auto}" --dist loadfile "$@"
