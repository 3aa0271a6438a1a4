"""The app's page: its tabs (``upsample_app.tabs``: Segment, Generate, Translate, one per loaded
model) assembled with Gradio, and the server that serves it.

The page and its tabs are the only modules of the toolkit that import Gradio (with the command
line's check that it is installed).
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from upsample_app.examples import bundled_photos, camvid_test
from upsample_app.limits import UploadLimits
from upsample_app.models import LoadedModels
from upsample_app.tabs.common import AppSettings
from upsample_app.tabs.generate import generate_tab
from upsample_app.tabs.segment import segment_tab
from upsample_app.tabs.translate import translate_tab

#: sessions whose segmented photos stay in memory.
SESSIONS_KEPT = 32
TITLE = "upsample-toolkit"
CSS = """
.pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 0.9em; }
.legend span.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 4px;
  vertical-align: -0.1em; border: 1px solid #8886; }
"""


def build_page(models: LoadedModels, settings: AppSettings) -> gr.Blocks:
    """The page: one tab per loaded model (Segment, Generate, Translate); the Translate tab
    scores its photos with the segmenter when one is loaded."""
    photos = bundled_photos(settings.work_dir / "examples")
    camvid_photos, _ = camvid_test(settings.camvid_root)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"## {TITLE}\nSegment photos, generate images and translate label maps.")
        with gr.Tabs():
            if models.segmenter is not None:
                with gr.Tab("Segment", id="segment"):
                    segment_tab(models.segmenter, settings, camvid_photos[:3] + photos)
            if models.generator is not None:
                with gr.Tab("Generate", id="generate"):
                    generate_tab(models.generator, settings)
            if models.translator is not None:
                with gr.Tab("Translate", id="translate"):
                    translate_tab(models.translator, models.segmenter, settings)
    return page


def serve(
    page: gr.Blocks, host: str, port: int, queue_size: int, limits: UploadLimits
) -> tuple[str, Callable[[], None]]:
    """Start serving ``page`` on ``host``:``port`` in the background with a queue of at most
    ``queue_size`` waiting requests and ``limits.max_mb`` per upload, offline (no share link,
    analytics, monitoring, server-side rendering or run history); return its local URL and the
    function that stops it."""
    page.queue(max_size=queue_size, default_concurrency_limit=1)
    page.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        show_error=True,
        quiet=True,
        max_file_size=limits.max_bytes,
        # the photos and masks of this many sessions are kept for the opacity slider; older
        # sessions' go (Gradio keeps 10,000 by default: unbounded memory with large photos)
        state_session_capacity=SESSIONS_KEPT,
        footer_links=[],
        run_history=False,
        enable_monitoring=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        css=CSS,
    )
    return page.local_url, page.close
