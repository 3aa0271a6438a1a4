"""``bench.app_trace``: each upload gets the server's steps of the one Segment request that ran
during it, and the phases' medians read back in order (the browser runs in
``tests/bench/test_app_latency.py``)."""

from __future__ import annotations

import pytest

from bench import app_trace


def upload(started_ms: float, shown_ms: float) -> dict[str, float]:
    return {"started": started_ms, "photo_sent": 10.0, "handler_asked": 30.0,
            "overlay_shown": shown_ms}  # fmt: skip


def server_trace(timestamp_s: float, handler_ms: float) -> dict[str, float]:
    return {"fn_name": "segment", "timestamp": timestamp_s, "queue_wait_ms": 1.0,
            "preprocess_ms": 2.0, "fn_call_ms": handler_ms, "postprocess_ms": 3.0}  # fmt: skip


def test_each_upload_takes_the_request_that_began_during_it() -> None:
    rows = [upload(1_000_000.0, 200.0), upload(1_002_000.0, 150.0)]
    traces = [
        server_trace(999.9, 0.5),  # the clearing before the first upload
        server_trace(1000.05, 120.0),
        server_trace(1001.9, 0.4),  # the clearing before the second
        server_trace(1002.04, 90.0),
    ]
    app_trace._add_server_steps(rows, traces)
    assert [row["fn_call_ms"] for row in rows] == [120.0, 90.0]
    assert rows[0]["queue_wait_ms"] == 1.0 and rows[1]["postprocess_ms"] == 3.0


def test_an_upload_without_its_request_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="0 Segment requests during one upload"):
        app_trace._add_server_steps([upload(1_000_000.0, 200.0)], [server_trace(5.0, 1.0)])


def test_phase_medians_in_order_and_the_rest_after_the_handler() -> None:
    rows = [upload(0.0, shown) for shown in (200.0, 180.0, 220.0)]
    for row, handler in zip(rows, (120.0, 100.0, 140.0), strict=True):
        row.update(queue_wait_ms=1.0, preprocess_ms=2.0, fn_call_ms=handler, postprocess_ms=3.0)
        row["after"] = row["overlay_shown"] - row["handler_asked"] - (6.0 + handler)
    phases = app_trace.phase_rows(rows)
    assert [phase["phase"] for phase in phases] == [
        app_trace.PAGE_STEPS["photo_sent"],
        app_trace.PAGE_STEPS["handler_asked"],
        *app_trace.SERVER_STEPS.values(),
        app_trace.AFTER,
        app_trace.PAGE_STEPS["overlay_shown"],
    ]
    by_name = {phase["phase"]: phase for phase in phases}
    handler = by_name[app_trace.SERVER_STEPS["fn_call_ms"]]
    assert (handler["median ms"], handler["min ms"], handler["max ms"]) == (120.0, 100.0, 140.0)
    assert by_name[app_trace.AFTER]["median ms"] == 44.0
    finding = app_trace.finding_of(phases, 60.0, "PyTorch, 3 uploads")
    assert "the handler takes 120 ms (the model alone 60 ms" in finding
    assert "Gradio's queue and processing 6 ms" in finding and "shown at 200 ms" in finding
