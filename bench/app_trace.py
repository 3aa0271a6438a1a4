"""Where the app's upload-to-overlay time goes: the Segment tab driven in headless Chromium, the
page's requests timed by the browser and the server's steps by Gradio's own profiler
(``GRADIO_PROFILING=1``, its ``/gradio_api/profiling/traces``).

Used by ``bench.app_latency``, which starts an app with the profiler on for it (the timed
contenders run without it). Each upload gives one row of phases, in milliseconds from the moment
the browser starts sending the photo:

- ``photo sent``: the upload request answered (the photo is in the server's upload folder);
- ``handler asked``: the page sends the queue's join request for the Segment handler;
- the server's steps for that request: its wait in the queue, Gradio's pre-processing (the
  upload moved to its cache), the handler (``upsample_app.tabs.segment``: read and check the
  photo, the model, the mask and overlay files written), Gradio's post-processing (results
  moved to its cache);
- ``overlay shown``: the overlay loaded in the page;
- ``after the handler``: ``overlay shown`` less ``handler asked`` and the server's whole time
  for the request (the join request's answer, the queue's event stream carrying the result, the
  page's update and the overlay's download and decoding).
"""

from __future__ import annotations

import json
import statistics
import urllib.request
from pathlib import Path
from typing import Any

from bench import browser

#: Gradio's names of the server's steps (``RequestTrace``), and the names the table gives them.
SERVER_STEPS = {
    "queue_wait_ms": "server: wait in the queue",
    "preprocess_ms": "server: Gradio's pre-processing",
    "fn_call_ms": "server: the Segment handler",
    "postprocess_ms": "server: Gradio's post-processing",
}
PAGE_STEPS = {
    "photo_sent": "page: photo sent (upload answered)",
    "handler_asked": "page: handler asked (queue join sent)",
    "overlay_shown": "page: overlay shown",
}
AFTER = "after the handler: result streamed, page updated, overlay fetched and shown"


def trace_uploads(page: Any, url: str, photo: Path, repeats: int) -> list[dict[str, float]]:
    """Upload ``photo`` ``repeats`` times on the Segment tab of the app at ``url`` (started with
    ``GRADIO_PROFILING=1``) after one warm-up; the phases of each upload, in ms."""
    requests: list[Any] = []
    page.on("requestfinished", lambda request: requests.append(request))
    rows = []
    for attempt in range(repeats + 1):
        if browser.image_source(page, "#segment-overlays"):
            browser.clear_photos(page)
        requests.clear()
        upload, seconds = browser.segment_timed(page, photo)
        if attempt == 0:
            continue
        join = _first(requests, "/gradio_api/queue/join")
        started = upload.timing["startTime"]  # ms since 1970, the browser's clock
        rows.append(
            {
                "started": started,
                "photo_sent": upload.timing["responseEnd"],
                "handler_asked": join.timing["startTime"] - started,
                "overlay_shown": 1000 * seconds,
            }
        )
    _add_server_steps(rows, _server_traces(url))
    for row in rows:
        server = sum(row[step] for step in SERVER_STEPS)
        row["after"] = row["overlay_shown"] - row["handler_asked"] - server
    return rows


def _first(requests: list[Any], fragment: str) -> Any:
    found = next((request for request in requests if fragment in request.url), None)
    if found is None:
        raise RuntimeError(f"the page made no request to {fragment} for the upload")
    return found


def _server_traces(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}gradio_api/profiling/traces", timeout=30) as answer:
        traces = json.loads(answer.read())
    traces = traces if isinstance(traces, list) else traces.get("traces", [])
    return [trace for trace in traces if trace.get("fn_name") == "segment"]


def _add_server_steps(rows: list[dict[str, float]], traces: list[dict[str, Any]]) -> None:
    """Give each upload the server's steps of the Segment request that began during it (the
    clearing of the previous photo runs the handler too, before the upload starts)."""
    for row in rows:
        start_s, end_s = row["started"] / 1000, row["started"] / 1000 + row["overlay_shown"] / 1000
        during = [trace for trace in traces if start_s <= trace["timestamp"] <= end_s]
        if len(during) != 1:
            raise RuntimeError(f"{len(during)} Segment requests during one upload, expected 1")
        row.update({step: float(during[0].get(step, 0.0)) for step in SERVER_STEPS})


def phase_rows(rows: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Medians (ms) of each phase over the uploads, in the order they happen."""
    names = {
        "photo_sent": PAGE_STEPS["photo_sent"],
        "handler_asked": PAGE_STEPS["handler_asked"],
        **SERVER_STEPS,
        "after": AFTER,
        "overlay_shown": PAGE_STEPS["overlay_shown"],
    }
    return [
        {
            "phase": name,
            "median ms": statistics.median(row[key] for row in rows),
            "min ms": min(row[key] for row in rows),
            "max ms": max(row[key] for row in rows),
        }
        for key, name in names.items()
    ]


def finding_of(rows: list[dict[str, Any]], model_ms: float, what: str) -> str:
    """One line that reads the phases' medians (``phase_rows``) against the model's own time."""
    median = {row["phase"]: row["median ms"] for row in rows}
    gradio = sum(median[SERVER_STEPS[step]] for step in SERVER_STEPS if step != "fn_call_ms")
    handler = median[SERVER_STEPS["fn_call_ms"]]
    return (
        f"Where the app's time goes ({what}, Gradio's profiler on): the photo is sent in "
        f"{median[PAGE_STEPS['photo_sent']]:.0f} ms and the page asks for the handler at "
        f"{median[PAGE_STEPS['handler_asked']]:.0f} ms; the handler takes {handler:.0f} ms "
        f"(the model alone {model_ms:.0f} ms in the timing above), Gradio's queue and "
        f"processing {gradio:.0f} ms, the result's way to the screen {median[AFTER]:.0f} ms; "
        f"overlay shown at {median[PAGE_STEPS['overlay_shown']]:.0f} ms."
    )
