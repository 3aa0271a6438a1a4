"""Smoke test of ``bench.app_latency``: the app starts with the three models, every contender
runs and the result files hold the table, the ratios and the memory (no speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("gradio")


@pytest.mark.slow
def test_app_latency_quick_run_writes_results(tmp_path: Path, restore_threads) -> None:
    from bench import app_latency

    app_latency.main(
        ["--quick", "--threads", "1", "--engines", "torch", "--no-browser",
         "--results-dir", str(tmp_path)]
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
        "model only (predictor on the decoded photo)",
    ]
    assert all(row["median ms"] > 0 for row in rows)
    assert set(results["ratios"]["torch"]) == {row["contender"] for row in rows}
    memory = results["memory_mb"]["torch"]
    assert memory["peak"]["VmHWM"] >= memory["started"]["VmRSS"] > 100
