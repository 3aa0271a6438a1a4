"""The app's page in headless Chromium: Debian's ``chromium`` driven through Playwright's Python
package (which never downloads a browser here: ``executable_path`` names the system's), with the
flags that keep Chromium off the network, and the user's actions on each tab.

Used by the app's browser test (``tests/app/drive_app.py``) and the README's pictures of the tabs
(``bench.app_pictures``). Every action waits under a timeout, so a page that never answers fails
instead of hanging.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: where Debian's package puts the browser.
CHROMIUM = "/usr/bin/chromium"
#: headless, no sandbox (root in a container), no GPU, and none of the background traffic
#: (QUIC, component updates, sync, first-run pages) that floods a closed network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: the longest any one action may take (milliseconds).
ACTION_TIMEOUT_MS = 60_000

#: true once the first image under a selector has loaded (naturalWidth > 0), and differs from
#: the source given (the image before the action).
_IMAGE_READY = """([selector, previous]) => {
    const image = document.querySelector(selector + " img");
    return image !== null && image.complete && image.naturalWidth > 0
        && image.getAttribute("src") !== previous;
}"""


def find_chromium() -> str | None:
    """The system's Chromium, or None when it is not installed."""
    found = shutil.which("chromium")
    return found or (CHROMIUM if Path(CHROMIUM).is_file() else None)


@contextlib.contextmanager
def chromium_page(
    profile: Path, executable: str | None = None, width: int = 1280, height: int = 900
) -> Iterator[Any]:
    """A page in a fresh headless Chromium with its own profile folder ``profile`` (removed
    first); every URL the page requests is appended to ``page.requested``."""
    from playwright.sync_api import sync_playwright

    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError(f"no Chromium: install Debian's package chromium ({CHROMIUM})")
    shutil.rmtree(profile, ignore_errors=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            page.requested = []
            page.on("request", lambda request: page.requested.append(request.url))
            yield page
        finally:
            context.close()


def open_app(page: Any, url: str, tab: str | None = None) -> None:
    """Load the app at ``url`` and, if given, switch to ``tab`` (Segment, Generate, Translate)."""
    page.goto(url, wait_until="load")
    page.wait_for_selector(".gradio-container")
    if tab:
        show_tab(page, tab)


def show_tab(page: Any, tab: str) -> None:
    """Switch to ``tab``."""
    page.get_by_role("tab", name=tab).click()


def image_source(page: Any, selector: str) -> str | None:
    """The ``src`` of the first image under ``selector``, or None."""
    image = page.query_selector(f"{selector} img")
    return image.get_attribute("src") if image else None


def wait_for_new_image(page: Any, selector: str, previous: str | None) -> bytes:
    """Wait until the first image under ``selector`` has loaded with another source than
    ``previous``; return the bytes the server serves for it."""
    page.wait_for_function(_IMAGE_READY, arg=[selector, previous])
    return image_bytes(page, selector)


def image_bytes(page: Any, selector: str) -> bytes:
    """The bytes the server serves for the first image under ``selector``."""
    source = image_source(page, selector)
    if source is None:
        raise AssertionError(f"no image under {selector}")
    return page.request.get(source).body()


def upload(page: Any, selector: str, path: Path) -> None:
    """Give ``path`` to the file input under ``selector``, as a user choosing the file."""
    page.set_input_files(f"{selector} input[type=file]", str(path))


def segment_timed(page: Any, photo: Path) -> tuple[Any, float]:
    """Upload ``photo`` on the Segment tab and wait for its overlay; the upload request, and
    the seconds from the moment the browser starts sending the photo to the overlay loaded in
    the page (the time Playwright takes to hand the file to the page, which a user's browser
    reads from disk, is left out)."""
    previous = image_source(page, "#segment-overlays")
    with page.expect_request(_is_upload) as sending:
        upload(page, "#segment-photos", photo)
    page.wait_for_function(_IMAGE_READY, arg=["#segment-overlays", previous])
    shown = time.time()
    started = sending.value.timing["startTime"] / 1000  # the browser's clock, ms since 1970
    return sending.value, shown - started


def segment(page: Any, photo: Path) -> tuple[bytes, float]:
    """``segment_timed``, then the overlay's bytes as the server serves them."""
    seconds = segment_timed(page, photo)[1]
    return image_bytes(page, "#segment-overlays"), seconds


def _is_upload(request: Any) -> bool:
    return request.method == "POST" and "/gradio_api/upload" in request.url


def segment_example(page: Any, label: str) -> bytes:
    """Click the Segment tab's example ``label``; the overlay's bytes once shown."""
    previous = image_source(page, "#segment-overlays")
    page.get_by_role("button", name=label, exact=True).click()
    return wait_for_new_image(page, "#segment-overlays", previous)


def clear_photos(page: Any) -> None:
    """Remove the Segment tab's uploaded photos (the overlays go with them)."""
    page.locator("#segment-photos button[aria-label='Clear']").click()
    page.wait_for_function("() => document.querySelector('#segment-overlays img') === null")


def generate(page: Any, seed: int, count: int | None = None) -> bytes:
    """Generate with ``seed`` (and ``count`` images) on the Generate tab; the grid's bytes."""
    previous = image_source(page, "#gen-grid")
    page.locator("#gen-seed input").fill(str(seed))
    if count is not None:
        page.locator("#gen-count input[type=number]").fill(str(count))
    page.locator("#gen-button").click()
    return wait_for_new_image(page, "#gen-grid", previous)


def translate_upload(page: Any, label_map: Path) -> bytes:
    """Upload ``label_map`` on the Translate tab; the photo's bytes once shown."""
    previous = image_source(page, "#translate-photo")
    upload(page, "#translate-upload", label_map)
    return wait_for_new_image(page, "#translate-photo", previous)


def page_message(page: Any, text: str) -> str:
    """Wait for an error message in the page that contains ``text``; its whole text."""
    toast = page.locator(".toast-body", has_text=text).first
    toast.wait_for(state="visible")
    return toast.inner_text()
