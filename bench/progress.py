"""Progress lines of a benchmark run: on stderr, so that stdout carries only the report."""

import sys


def log(message: str) -> None:
    """Print a progress line on stderr at once."""
    print(message, file=sys.stderr, flush=True)
