"""``bench.input_pipeline``: a tiny run times the four input pipelines and the CPU training
epochs with each data setting on CamVid photos (skipped without the data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("timm")

from bench import input_pipeline, quality_camvid


@pytest.mark.slow
def test_quick_run_reports_pipelines_and_training(
    tmp_path: Path, restore_threads, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not quality_camvid.DATA_ROOT.is_dir():
        pytest.skip(f"CamVid not found at {quality_camvid.DATA_ROOT}")
    monkeypatch.setenv("UPSAMPLE_CACHE_DIR", str(tmp_path / "cache"))
    input_pipeline.main(["--quick", "--results-dir", str(tmp_path)])
    report = json.loads((tmp_path / "input_pipeline.json").read_text())
    pipelines, training = (table["rows"] for table in report["tables"])
    assert [row["pipeline"] for row in pipelines] == list(input_pipeline.CONTENDERS)
    assert pipelines[0]["x today"] == 1.0 and all(row["photos/s per core"] > 0 for row in pipelines)
    assert [row["data options"] for row in training] == list(input_pipeline.TRAINING)
    assert training[0]["x today"] == 1.0 and all(row["photos/s"] > 0 for row in training)
    assert list((tmp_path / "cache" / "decoded").glob("*.u8store"))
    markdown = (tmp_path / "input_pipeline.md").read_text()
    assert "today's photos per core (target >= 5x" in markdown
    assert "## Method" in markdown
