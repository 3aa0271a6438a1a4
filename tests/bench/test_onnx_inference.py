"""Smoke test of ``bench.onnx_inference``: both engines run through folder inference on tiny
sizes and the result files hold every contender (no speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.mark.slow
def test_onnx_inference_quick_run_writes_results(tmp_path: Path, restore_threads) -> None:
    from bench import onnx_inference

    onnx_inference.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    results = json.loads((tmp_path / "onnx_inference.json").read_text())
    markdown = (tmp_path / "onnx_inference.md").read_text()
    assert markdown.startswith("# ")
    assert len(results["tables"]) == 2
    # the per-case ratios are in the JSON's settings, not in the Markdown header's settings line
    cases = [table["title"] for table in results["tables"]]
    ratios = {"speedup", "onnx_share", "torch_share", "torch_vs_before", "folding_speedup"}
    assert all(set(results["settings"][case]) >= ratios for case in cases)
    settings_line = next(line for line in markdown.splitlines() if line.startswith("Settings:"))
    assert "num_images=4" in settings_line and "speedup" not in settings_line
    for table in results["tables"]:
        assert [row["contender"] for row in table["rows"]] == [
            "PyTorch, end to end",
            "PyTorch, end to end as before",
            "ONNX Runtime, end to end",
            "pipeline only",
            "PyTorch, model only",
            "PyTorch, model only, batch norm unfolded",
            "ONNX Runtime, model only",
        ]
        assert all(row["images/s"] > 0 for row in table["rows"])
    assert any("as fast as before" in finding for finding in results["findings"])
