"""Run ``seg`` or ``gan`` with every connection to another machine refused and recorded (Python's
audit hooks see each socket connect and name lookup): how the app's browser test starts the app,
to show that the server calls nothing outside this machine.

    python -m tests.app.offline_server RECORD seg app --ckpt_path ...
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any

#: addresses and names of this machine.
LOCAL = frozenset({"127.0.0.1", "::1", "localhost", "0.0.0.0", "::", ""})


def refuse_outside(record: Any) -> None:
    """Install an audit hook that writes each outside connection or lookup to ``record`` and
    makes it fail."""

    def hook(event: str, args: tuple) -> None:
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and str(address[0]) not in LOCAL:
                record.write(f"connect {address}\n")
                raise ConnectionRefusedError(f"no network here: connect to {address}")
        elif event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
            if host is not None and str(host) not in LOCAL:
                record.write(f"getaddrinfo {host}\n")
                raise socket.gaierror(f"no network here: look up {host}")

    sys.addaudithook(hook)


def main(argv: Sequence[str]) -> None:
    record_path, tool, *rest = argv
    record = open(record_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    refuse_outside(record)
    from upsample_app.console import gan_main, seg_main

    (seg_main if tool == "seg" else gan_main)(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
