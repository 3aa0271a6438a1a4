"""The Gradio page without a browser: one tab per loaded model, the translator's class colours as
its brushes, and every failure of a handler shown in the page as a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from upsample_app.limits import AppInputError, UploadLimits
from upsample_app.models import LoadedModels

gr = pytest.importorskip("gradio")


@pytest.fixture(autouse=True)
def _gradio_files_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's copies of examples and results go under the test's folder (as the app puts
    them under its own), not into the system's temporary folder."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))


def settings(tmp_path: Path):
    from upsample_app.tabs.common import AppSettings

    return AppSettings(UploadLimits(), tmp_path)


def tab_labels(page) -> list[str]:
    return [block.label for block in page.blocks.values() if isinstance(block, gr.Tab)]


def test_one_tab_per_model(models: LoadedModels, tmp_path: Path) -> None:
    from upsample_app.ui import build_page

    assert tab_labels(build_page(models, settings(tmp_path))) == [
        "Segment",
        "Generate",
        "Translate",
    ]
    only = LoadedModels(generator=models.generator)
    assert tab_labels(build_page(only, settings(tmp_path))) == ["Generate"]
    page = build_page(LoadedModels(translator=models.translator), settings(tmp_path))
    editor = next(b for b in page.blocks.values() if isinstance(b, gr.ImageEditor))
    spec = models.translator.spec
    expected = ["#{:02x}{:02x}{:02x}".format(*c) for c in [*spec.palette, spec.void_colour]]
    assert editor.brush.colors == expected and editor.brush.color_mode == "fixed"
    assert (tmp_path / "examples" / "chelsea.png").is_file(), "scikit-image's photos as examples"


def test_failures_become_messages_in_the_page() -> None:
    from upsample_app.tabs.common import shown_in_page

    def refuse(_: object) -> None:
        raise AppInputError("photo.png: not an image (no known image format)")

    def crash(_: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(gr.Error, match=r"photo.png: not an image \(no known image format\)"):
        shown_in_page(refuse)(None)
    with pytest.raises(gr.Error, match="RuntimeError: boom"):
        shown_in_page(crash)(None)
    assert shown_in_page(lambda value: value + 1)(1) == 2


@pytest.mark.slow
def test_the_queue_turns_requests_away_when_full(
    models: LoadedModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request runs, ``queue_size`` wait, the next is refused with a message."""
    import threading

    from gradio_client import Client

    from upsample_app import generate
    from upsample_app.cli import free_port
    from upsample_app.ui import build_page, serve

    release = threading.Event()
    real = generate.generate

    def held(*args, **kwargs):
        release.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "generate", held)
    page = build_page(LoadedModels(generator=models.generator), settings(tmp_path))
    url, stop = serve(page, "127.0.0.1", free_port("127.0.0.1"), 1, UploadLimits())
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "client"))

        def submitted(seed: int, state: str):
            job = client.submit(seed, 4, api_name="/generate")
            for _ in range(300):  # one at a time, so that they reach the server in order
                if job.status().code.name == state or job.done():
                    return job
                threading.Event().wait(0.1)
            raise AssertionError(f"job {seed} never got to {state}: {job.status()}")

        running = submitted(0, "PROCESSING")
        waiting = submitted(1, "IN_QUEUE")
        refused = client.submit(2, 4, api_name="/generate")
        with pytest.raises(Exception, match="[Qq]ueue is full"):
            refused.result(timeout=30)
        assert not running.done() and not waiting.done()
        jobs = [running, waiting]
        release.set()
        assert all(Path(job.result(timeout=60)[0]).is_file() for job in jobs)
    finally:
        release.set()
        stop()
