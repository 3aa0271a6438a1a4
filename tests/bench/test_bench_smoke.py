"""Smoke test of the benchmark scripts: they run end to end on tiny sizes and write their files.

Nothing about speed is asserted (timings on a shared CI machine are noise); the real figures come
from ``python -m bench.<name>`` and live in ``bench/results/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("segmentation_models_pytorch")


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _read(results_dir: Path, name: str) -> dict:
    markdown = (results_dir / f"{name}.md").read_text()
    assert markdown.startswith("# ")
    assert "Command: `python" in markdown
    return json.loads((results_dir / f"{name}.json").read_text())


@pytest.mark.slow
def test_peak_and_throughput_quick_runs_write_results(tmp_path: Path, restore_threads) -> None:
    from bench import peak, throughput

    peak.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    peak_results = _read(tmp_path, "peak")
    assert set(peak_results["settings"]["peak_gflops"]) == {"float32", "bfloat16"}
    assert peak_results["machine"]["torch"] == torch.__version__

    throughput.main(
        ["--quick", "--threads", "1", "--results-dir", str(tmp_path),
         "--seg-models", "ours", "smp_unet_resnet34"]
    )  # fmt: skip
    results = _read(tmp_path, "throughput")
    titles = [table["title"] for table in results["tables"]]
    assert [title.split(":")[0] for title in titles] == [
        "Segmentation training",
        "Segmentation inference",
        "DCGAN training",
        "DCGAN generator inference",
    ]
    seg_training = results["tables"][0]["rows"]
    assert {(row["model"], row["numerics"]) for row in seg_training} == {
        ("ours FCN-8s (VGG16)", "fp32"),
        ("ours FCN-8s (VGG16)", "fp32+cl"),
        ("ours FCN-8s (VGG16)", "bf16+cl"),
        ("smp Unet (resnet34)", "fp32"),
        ("smp Unet (resnet34)", "fp32+cl"),
    }
    for table in results["tables"]:
        for row in table["rows"]:
            assert row["images/s"] > 0
            assert row["repeats"] == 1
    assert all(row["GFLOP/step"] > 0 for row in seg_training)

    from bench import summary

    summary_path = summary.main(["--results-dir", str(tmp_path)])
    text = summary_path.read_text()
    assert "DCGAN trains >= 1.5x faster than the classic float32 loop" in text
    assert "Default numerics from data: FCN-8s training" in text
