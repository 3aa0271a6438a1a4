"""``gan app`` served for real, without a browser: the generator and the segmenter in ONNX Runtime
(``--engine onnxruntime --model``, ``--segmenter model.onnx``), a translator, CamVid-like examples,
tight limits and tiling, driven through the page's own API (``gradio_client``, as the page calls
it): the answers equal the tabs' plain functions, a photo over the pixel limit and an upload over
the size limit get their messages, and Ctrl+C stops the server with status 130. Every step runs
under a hard timeout (``tests/processes.py``)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import processes
from tests.app.conftest import VOID, Checkpoints, write_label_map, write_photo
from tests.app.test_app_browser import stop_server, wait_until_serving
from tests.app.test_app_segment import jpeg_bytes
from upsample_app import generate, segment
from upsample_app import translate as tr
from upsample_app.cli import free_port
from upsample_app.console import gan_main, seg_main
from upsample_app.limits import UploadLimits
from upsample_app.models import ModelSource, load_models

pytest.importorskip("gradio")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def fake_camvid(root: Path) -> Path:
    """The CamVid layout with two test label maps (values 0-2 and void 255 of the tiny
    translator) and photos."""
    for split in ("train", "test"):
        for index in range(2):
            write_label_map(root / f"{split}annot" / f"frame_{index}.png", size=(24, 32))
            write_photo(root / split / f"frame_{index}.png", size=(24, 32), seed=index)
    return root


def export(main, checkpoint: Path, output: Path) -> Path:
    with pytest.raises(SystemExit) as status:
        main(["export", "--ckpt_path", str(checkpoint), "--output", str(output)])
    assert status.value.code == 0
    return output


@pytest.mark.slow
def test_gan_app_with_onnx_models_limits_and_examples(
    checkpoints: Checkpoints, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    generator = export(gan_main, checkpoints.generator, tmp_path / "generator.onnx")
    segmenter = export(seg_main, checkpoints.segmenter, tmp_path / "model.onnx")
    camvid = fake_camvid(tmp_path / "camvid")
    photo = write_photo(tmp_path / "photo.png", size=(100, 140), seed=4)
    too_many_pixels = write_photo(tmp_path / "large.png", size=(300, 400))
    too_large = tmp_path / "noise.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (700, 700, 3), dtype=np.uint8)).save(too_large)
    assert too_large.stat().st_size > 1.2 * 2**20

    port = free_port("127.0.0.1")
    log = tmp_path / "app.log"
    command = [
        sys.executable, "-m", "upsample_app.console", "gan", "app",
        "--engine", "onnxruntime", "--model", str(generator),
        "--segmenter", str(segmenter), "--translator", str(checkpoints.translator),
        "--camvid_root", str(camvid), "--trust_checkpoint",
        "--tile_size", "64", "--overlap", "16", "--max_pixels", "100000",
        "--max_upload_mb", "1", "--queue_size", "4",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    server = processes.start(command, tmp_path, processes.ddp_env(), log)
    try:
        wait_until_serving(server, log, f"http://127.0.0.1:{port}/")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path))
        answers = _session(client, handle_file, AppError, photo, too_many_pixels, too_large, camvid)
    finally:
        stop_server(server, log, signal.SIGINT)  # Ctrl+C
    assert server.returncode == 128 + signal.SIGINT, log.read_text()[-3000:]
    assert not processes.session_pids(server)

    limits = UploadLimits(max_mb=1, max_pixels=100_000)
    models = load_models(
        segmenter=ModelSource.of(segmenter),
        generator=ModelSource.of(generator),
        translator=ModelSource.of(checkpoints.translator),
        tile_size=64,
        overlap=16,
    )
    assert models.segmenter.predictor(False).tiling.count(100, 140) > 1
    shown = segment.segment_photo(models.segmenter, photo, limits)
    assert answers["overlay"] == jpeg_bytes(segment.overlay(models.segmenter, shown))
    assert answers["opaque"] == jpeg_bytes(segment.overlay(models.segmenter, shown, 1.0))
    assert (
        "large.png: 400x300 pixels (0.1 megapixels); the app takes images of at most 0.1"
        in answers["pixels"]
    )
    assert answers["upload"] == "413 File size exceeded maximum allowed size of 1048576 bytes."
    grid = generate.generate(models.generator, 11, 9, tmp_path / "expected").grid
    assert answers["grid"] == grid.read_bytes()
    # a CamVid test label map becomes the canvas, in the translator's colours
    values = np.asarray(Image.open(camvid / "testannot" / "frame_1.png")).astype(np.int64)
    expected = tr.picture(models.translator, tr.LabelMap("frame_1.png", values))
    np.testing.assert_array_equal(answers["canvas"], expected)
    assert (values == VOID).any()


def _session(client, handle_file, app_error, photo, too_many_pixels, too_large, camvid) -> dict:
    """What a user's requests get back through the page's API."""
    answers = {}
    gallery = client.predict([handle_file(str(photo))], False, 0.5, api_name="/segment")[0]
    answers["overlay"] = Path(gallery[0]["image"]).read_bytes()
    # the opacity slider blends the session's photo again, without the network
    reblended = client.predict(1.0, api_name="/blend")
    answers["opaque"] = Path(reblended[0]["image"]).read_bytes()
    with pytest.raises(app_error) as refused:
        client.predict([handle_file(str(too_many_pixels))], False, 0.5, api_name="/segment")
    answers["pixels"] = str(refused.value)
    # the server refuses the upload itself (Gradio's client refuses it before sending, too)
    with open(too_large, "rb") as stream:
        response = httpx.post(f"{client.src}gradio_api/upload", files={"files": stream})
    answers["upload"] = f"{response.status_code} {response.text}"
    grid_path, _ = client.predict(11, 9, api_name="/generate")
    answers["grid"] = Path(grid_path).read_bytes()
    editor = client.predict(str(camvid / "testannot" / "frame_1.png"), api_name="/load_camvid_map")
    answers["canvas"] = np.asarray(Image.open(editor["background"]).convert("RGB"))
    return answers
