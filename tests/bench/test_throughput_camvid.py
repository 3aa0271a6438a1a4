"""``bench.throughput_camvid``: a tiny run times our FCN against a peer per training step on
CamVid photos, and the device study runs on the CPU (skipped without the data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("segmentation_models_pytorch")
pytest.importorskip("timm")

from bench import quality_camvid, throughput_camvid


@pytest.mark.slow
def test_quick_run_reports_the_networks(tmp_path: Path, restore_threads) -> None:
    if not quality_camvid.DATA_ROOT.is_dir():
        pytest.skip(f"CamVid not found at {quality_camvid.DATA_ROOT}")
    throughput_camvid.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    report = json.loads((tmp_path / "throughput_camvid.json").read_text())
    (networks,) = (table["rows"] for table in report["tables"])
    assert [row["contender"] for row in networks] == list(quality_camvid.QUICK_CONTENDERS)
    assert networks[0]["x ours"] == 1.0
    assert all(row["images/s"] > 0 for row in networks)
    assert report["findings"][0].startswith("FCN-8s lite0 trains at")


@pytest.mark.slow
def test_device_study_runs_on_the_cpu(tmp_path: Path, restore_threads) -> None:
    """The study ``--device cuda`` runs on a GPU (data loader, model step, seg fit side by side),
    here on the CPU at tiny sizes, eager only (compiling would take a minute): the same code."""
    if not quality_camvid.DATA_ROOT.is_dir():
        pytest.skip(f"CamVid not found at {quality_camvid.DATA_ROOT}")
    args = ["--device", "cpu", "--quick", "--no-compile", "--workers", "0"]
    report = throughput_camvid.main([*args, "--threads", "1", "--results-dir", str(tmp_path)])
    (path,) = tmp_path.glob("throughput_camvid_*.json")
    rows = json.loads(path.read_text())["tables"][0]["rows"]
    assert [(row["what"], row["batch"]) for row in rows] == [
        ("data loader", 2),
        ("model step", 2),
        ("fit", 2),
    ]
    assert all(row["images/s"] > 0 for row in rows)
    assert rows[1]["GFLOP/step"] > 0 and rows[2]["% of model step"] > 0
    assert any("fit delivers" in finding for finding in report.findings)
