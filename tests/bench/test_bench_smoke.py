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


@pytest.mark.slow
def test_overhead_and_folder_inference_quick_runs_write_results(
    tmp_path: Path, restore_threads
) -> None:
    from bench import folder_inference, overhead

    overhead.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    results = _read(tmp_path, "overhead")
    loops = [row["loop"] for row in results["tables"][0]["rows"]]
    assert loops == ["ours (Lightning)", "bare loop", "data loading only"]
    assert results["settings"]["ratio"] > 0 and results["settings"]["profiled"]
    assert "of the bare loop's throughput (target >= 95%)" in results["findings"][0]

    folder_inference.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    results = _read(tmp_path, "folder_inference")
    assert [row["contender"] for row in results["tables"][0]["rows"]] == [
        "end to end (seg predict)",
        "model only",
        "pipeline only (seg predict, 1x1-conv network)",
    ]
    assert results["settings"]["ratio"] > 0 and len(results["findings"]) == 2


@pytest.mark.slow
def test_quality_seg_quick_run_trains_scores_and_draws(tmp_path: Path, restore_threads) -> None:
    from bench import quality_seg

    names = ["FCN-8s", "smp Unet-resnet18"]
    quality_seg.main(["--quick", "--only", *names, "--results-dir", str(tmp_path)])
    results = _read(tmp_path, "quality_seg")
    assert [row["contender"] for row in results["tables"][0]["rows"]] == names
    assert results["best_of_ours"] == "FCN-8s"
    assert any(line.startswith("Our best config FCN-8s") for line in results["findings"])
    assert len(results["method"]) == 6
    for picture in ("seg_overlays.png", "seg_overlays_all.png"):
        assert (tmp_path / "images" / picture).is_file()


@pytest.mark.slow
def test_quality_gan_and_fid_check_quick_runs(tmp_path: Path, restore_threads) -> None:
    from bench import fid_check, quality_gan

    quality_gan.main(["--quick", "--results-dir", str(tmp_path)])
    results = _read(tmp_path, "quality_gan")
    assert {"toolkit_p100", "classic_p100", "toolkit_p025"} <= set(results["scores"])
    assert [table["title"].split(" (")[0] for table in results["tables"]][1:] == [
        "Toolkit defaults vs classic recipe after the same CPU budget",
        "Toolkit defaults vs classic recipe at the same number of steps",
    ]
    assert results["findings"][0].startswith("Toolkit FID over the budget")
    for picture in ("gan_samples.png", "gan_interpolation.png", "gan_samples_classic.png"):
        assert (tmp_path / "images" / picture).is_file()

    fid_check.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    results = _read(tmp_path, "fid_check")
    rows = results["tables"][0]["rows"]
    assert [row["disturbance"] for row in rows][:2] == ["none", "none"]
    assert all(row["images"] == 100 for row in rows)
