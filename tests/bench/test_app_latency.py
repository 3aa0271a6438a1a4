"""Smoke test of ``bench.app_latency``: the app starts with the three models, every contender
runs and the result files hold the table, the ratios and the memory (no speed is asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("gradio")


@pytest.mark.slow
def test_app_latency_quick_run_writes_results(tmp_path: Path, restore_threads) -> None:
    from bench import app_latency, app_trace
    from bench.browser import find_chromium

    in_browser = find_chromium() is not None and importlib.util.find_spec("playwright")
    app_latency.main(
        ["--quick", "--threads", "1", "--engines", "torch", "--results-dir", str(tmp_path),
         *([] if in_browser else ["--no-browser"])]
    )  # fmt: skip
    results = json.loads((tmp_path / "app_latency.json").read_text())
    markdown = (tmp_path / "app_latency.md").read_text()
    assert markdown.startswith("# ") and "## Method" in markdown
    assert results["machine"]["cpu_model"]
    rows = results["tables"][0]["rows"]
    assert [row["contender"] for row in rows] == [
        app_latency.BASELINE,
        app_latency.COMMAND,
        "app over HTTP (upload, segment, download)",
        *([app_latency.BROWSER] if in_browser else []),
        app_latency.MODEL_ONLY,
    ]
    assert all(row["median ms"] > 0 for row in rows)
    assert set(results["ratios"]["torch"]) == {row["contender"] for row in rows}
    memory = results["memory_mb"]["torch"]
    assert memory["peak"]["VmHWM"] >= memory["started"]["VmRSS"] > 100
    if in_browser:  # the trace of the browser contender: its phases in the order they happen
        phases = {row["phase"]: row["median ms"] for row in results["tables"][-1]["rows"]}
        page = app_trace.PAGE_STEPS
        assert 0 < phases[page["photo_sent"]] < phases[page["handler_asked"]]
        assert phases[page["handler_asked"]] < phases[page["overlay_shown"]]
        assert phases[app_trace.SERVER_STEPS["fn_call_ms"]] > 0
        assert "Where the app's time goes" in results["findings"][-1]
