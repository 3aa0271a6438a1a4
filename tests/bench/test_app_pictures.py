"""Smoke test of ``bench.app_pictures``: with tiny checkpoints and a CamVid-like folder, the three
tabs are driven in headless Chromium and their pictures written as small palette PNGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bench.browser import find_chromium

pytest.importorskip("gradio")
pytest.importorskip("playwright")


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (Debian's package chromium)")
def test_pictures_of_the_three_tabs(tmp_path: Path) -> None:
    from bench import app_pictures
    from tests.app.conftest import tiny_checkpoints
    from tests.app.test_app_server import fake_camvid

    checkpoints = tiny_checkpoints(tmp_path / "checkpoints")
    app_pictures.main(
        [
            "--segmenter", str(checkpoints.segmenter),
            "--generator", str(checkpoints.generator),
            "--translator", str(checkpoints.translator),
            "--camvid", str(fake_camvid(tmp_path / "camvid")),
            "--out", str(tmp_path / "pictures"),
        ]
    )  # fmt: skip
    for name in ("segment", "generate", "translate"):
        with Image.open(tmp_path / "pictures" / f"app_{name}.png") as picture:
            assert picture.mode == "P" and picture.width == app_pictures.WIDTH
