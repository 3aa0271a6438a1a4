"""The app end to end in a real browser: ``seg app`` started on a free local port with the three
tiny checkpoints (every outside connection refused and recorded, ``tests/app/offline_server.py``),
driven by headless Chromium (``tests/app/drive_app.py``): the overlay of an uploaded photo, the
messages of a broken file and a bomb, a bundled example, one seed's grid twice, a label map's
photo, all checked pixel for pixel against the tabs' plain functions; the page and the server
reach no other host; the server listens on 127.0.0.1 only and stops cleanly on SIGTERM.

Start-up, the browser session and the shutdown each run under a hard timeout that kills the
whole process group (``tests/processes.py``): a hung server or browser fails the test.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from bench.browser import find_chromium
from tests import processes
from tests.app.conftest import Checkpoints, write_label_map, write_photo
from tests.app.test_app_limits import png_header_only
from tests.app.test_app_segment import jpeg_bytes
from upsample_app import generate, segment
from upsample_app import translate as tr
from upsample_app.cli import free_port
from upsample_app.limits import UploadLimits
from upsample_app.models import LoadedModels

pytest.importorskip("gradio")
pytest.importorskip("playwright")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: scripts/setup.sh installs Debian's package chromium when run as root",
)
START_TIMEOUT_S = 120.0
SESSION_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


def stop_server(server: subprocess.Popen, log: Path, signum: signal.Signals) -> None:
    """Send ``signum`` to a running app and wait for it to exit; past ``STOP_TIMEOUT_S`` kill
    its whole process group and fail with its log."""
    if server.poll() is None:
        server.send_signal(signum)
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        processes.kill_group(server)
        message = f"no stop within {STOP_TIMEOUT_S:.0f} s of {signum.name}:\n{log.read_text()}"
        raise AssertionError(message) from error


def wait_until_serving(server: subprocess.Popen, log: Path, url: str) -> None:
    """Wait until ``url`` answers; fail (the process group killed) if the server exits or does
    not answer within ``START_TIMEOUT_S``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the app exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    processes.kill_group(server)
    raise AssertionError(
        f"the app did not answer within {START_TIMEOUT_S:.0f} s:\n{log.read_text()}"
    )


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.slow
def test_the_three_tabs_in_a_browser(
    checkpoints: Checkpoints, models: LoadedModels, tmp_path: Path
) -> None:
    photo = write_photo(tmp_path / "inputs" / "street.png", size=(72, 96))
    label_map = write_label_map(tmp_path / "inputs" / "map.png", size=(40, 56))
    broken = tmp_path / "inputs" / "broken.png"
    broken.write_bytes(photo.read_bytes()[:400])
    bomb = png_header_only(tmp_path / "inputs" / "bomb.png", 5000, 5000)

    port = free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}/"
    record, log = tmp_path / "outside_calls.txt", tmp_path / "app.log"
    record.touch()
    command = [
        sys.executable, "-m", "tests.app.offline_server", str(record),
        "seg", "app", "--ckpt_path", str(checkpoints.segmenter),
        "--generator", str(checkpoints.generator), "--translator", str(checkpoints.translator),
        "--port", str(port),
    ]  # fmt: skip
    server = processes.start(command, tmp_path, processes.ddp_env(), log)
    try:
        wait_until_serving(server, log, url)
        assert listening_addresses(port) == {"0100007F"}, "listens on 127.0.0.1 only"
        session = processes.run(
            [
                *processes.python_command("tests.app.drive_app", url, str(tmp_path / "out")),
                "--photo", str(photo), "--label_map", str(label_map),
                "--broken", str(broken), "--bomb", str(bomb), "--chromium", str(CHROMIUM),
            ],
            tmp_path,
            timeout=SESSION_TIMEOUT_S,
        )  # fmt: skip
        assert session.returncode == 0, session.output[-6000:] + log.read_text()[-3000:]
    finally:
        stop_server(server, log, signal.SIGTERM)
    # stopped cleanly: the status of SIGTERM, nothing of its process group left
    assert server.returncode == 128 + signal.SIGTERM, log.read_text()[-3000:]
    assert "stopping (SIGTERM)" in log.read_text()
    assert not processes.session_pids(server)
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    limits = UploadLimits()

    # Segment: the page shows seg predict's overlay file for the photo, byte for byte
    shown = segment.segment_photo(models.segmenter, photo, limits)
    assert (out / "overlay.jpg").read_bytes() == jpeg_bytes(
        segment.overlay(models.segmenter, shown)
    )
    broken_message, bomb_message = results["messages"]
    assert "broken.png: cannot decode image" in broken_message
    assert "bomb.png: 5000x5000 pixels (25.0 megapixels)" in bomb_message
    from skimage import data

    cat = segment.segment_photo(models.segmenter, np.asarray(data.chelsea()), limits)
    assert (out / "example.jpg").read_bytes() == jpeg_bytes(segment.overlay(models.segmenter, cat))

    # Generate: one seed twice gives the same bytes, gan sample's grid; another seed another
    first, other, again = (
        (out / f"{n}.png").read_bytes() for n in ("grid_5", "grid_6", "grid_5_again")
    )
    assert first == again and first != other
    grid = generate.generate(models.generator, 5, 16, tmp_path / "expected_grid").grid
    assert first == grid.read_bytes()

    # Translate: a photo of the map's size, the plain function's for that file and seed 0
    painted = pixels((out / "photo.png").read_bytes())
    translated = tr.translate(
        models.translator, tr.read_label_map(models.translator, label_map, limits)
    )
    assert painted.shape == (40, 56, 3)
    np.testing.assert_array_equal(painted, translated.photo)

    # offline: the page asked this server only, the server asked nobody
    hosts = {
        urlsplit(u).netloc
        for u in results["requested"]
        if urlsplit(u).scheme not in ("data", "blob")
    }
    assert hosts == {f"127.0.0.1:{port}"}
    assert record.read_text() == "", "the server tried to reach another machine"
