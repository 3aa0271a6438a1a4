"""``bench.quality_cifar10`` end to end at tiny sizes: the CIFAR-10 config trains through the
same CLI for a few generator steps, keeps the generator at each point, and the report sets the
toolkit's FID beside StudioGAN's with the real-vs-real floor."""

from __future__ import annotations

import json

import pytest

from bench.quality_cifar10 import KeepGenerator, main
from bench.quality_cifar10_report import curve_rows, findings_of

pytestmark = pytest.mark.skipif(
    not (main.__globals__["ARCHIVE_DIR"] / "cifar10-jpeg.tar.gz").is_file(),
    reason="the CIFAR-10 archive is not beside the repository",
)


@pytest.mark.slow
def test_quick_run_reports_the_curve(tmp_path, restore_threads) -> None:
    main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    report = json.loads((tmp_path / "quality_cifar10.json").read_text())
    rows = report["tables"][0]["rows"]
    assert [row["generator step"] for row in rows] == [2, 4]
    assert "Real-vs-real floor" in " ".join(report["findings"])
    assert (tmp_path / "images" / "cifar10.png").is_file()
    # scoring again reads every cached score; without the floor the report says so
    score = ["--quick", "--phase", "score", "--no-floor", "--fid-images", "100"]
    main([*score, "--results-dir", str(tmp_path)])
    report = json.loads((tmp_path / "quality_cifar10.json").read_text())
    assert "floor: not measured" in " ".join(report["findings"])
    assert "FID here is of 100 generated images against the 200 test" in " ".join(
        report["findings"]
    )


def test_the_curve_compares_at_studiogans_steps() -> None:
    training = {"kept": {"4000": {"train_cpu_s": 60, "train_wall_s": 30},
                         "5000": {"train_cpu_s": 90, "train_wall_s": 45}}}  # fmt: skip
    results = {
        "points": {
            "4000": {"fid": 80.0, "kid_mean": 0.05},
            "5000": {"fid": 70.0, "kid_mean": 0.04},
        },
        "floor": {"fid": 3.0, "kid_mean": 0.0},
        "num": 10_000,
    }
    rows = curve_rows(training, results)
    assert rows[0]["StudioGAN FID"] == 92.6 and rows[0]["below StudioGAN"] is True
    assert rows[1]["StudioGAN FID"] is None  # not a step of StudioGAN's table
    findings = findings_of(rows, results)
    assert findings[0].startswith("Below StudioGAN's FID at 1 of the 1 steps")
    assert "Best FID within the budget: 70.0 at step 5,000" in findings[1]
    assert "Real-vs-real floor (the first 10,000 training images" in findings[2]
    without_floor = findings_of(rows, {**results, "floor": None})
    assert "floor: not measured in this run (--no-floor)" in without_floor[2]
    assert KeepGenerator([3, 1], None).points == [1, 3]  # type: ignore[arg-type]
