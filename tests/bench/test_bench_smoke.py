"""Smoke test of the benchmark scripts: they run end to end on tiny sizes and write their files.

Nothing about speed is asserted (timings on a shared CI machine are noise); the real figures come
from ``python -m bench.<name>`` and live in ``bench/results/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _read(results_dir: Path, name: str) -> dict:
    markdown = (results_dir / f"{name}.md").read_text()
    assert markdown.startswith("# ")
    assert "Command: `python" in markdown
    return json.loads((results_dir / f"{name}.json").read_text())


@pytest.mark.slow
def test_quality_gan_quick_run(
    tmp_path: Path, restore_threads, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import quality_gan

    # Fresh runs and caches: trained, scored and drawn from scratch.
    monkeypatch.setattr("bench.harness.RUNS_DIR", tmp_path / "runs")
    quality_gan.main(["--quick", "--results-dir", str(tmp_path)])
    results = _read(tmp_path, "quality_gan")
    assert {"toolkit_p100", "classic_p100", "toolkit_p025"} <= set(results["scores"])
    assert [table["title"].split(" (")[0] for table in results["tables"]][1:] == [
        "Toolkit defaults vs classic recipe after the same CPU budget",
        "Toolkit defaults vs classic recipe at the same number of steps",
    ]
    assert results["findings"][0].startswith("Toolkit FID over the budget")
    assert all(score["num_fake"] == 200 for score in results["scores"].values())
    for picture in ("gan_samples.png", "gan_interpolation.png", "gan_samples_classic.png"):
        assert (tmp_path / "images" / picture).is_file()


@pytest.mark.slow
def test_throughput_gan_device_study_runs_on_the_cpu(tmp_path: Path, restore_threads) -> None:
    """``bench.throughput_gan --device cuda``'s study, here on the CPU at tiny sizes and eager
    only, on a small image folder."""
    from bench import throughput_gan
    from tests.gan.conftest import make_image_folder

    folder = make_image_folder(tmp_path / "images", count=12)
    args = ["--device", "cpu", "--quick", "--no-compile", "--workers", "0"]
    args += ["--data-root", str(folder), "--threads", "1", "--results-dir", str(tmp_path)]
    throughput_gan.main(args)
    (path,) = tmp_path.glob("throughput_gan_*.json")
    with pytest.raises(SystemExit):  # the CPU study is retired: a CPU run must ask for the study
        throughput_gan.main(["--quick", "--results-dir", str(tmp_path)])
    rows = json.loads(path.read_text())["tables"][0]["rows"]
    assert [row["what"] for row in rows] == ["data loader", "model step", "fit"]
    assert all(row["images/s"] > 0 for row in rows)
