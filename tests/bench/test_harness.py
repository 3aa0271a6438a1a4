"""``bench.harness`` and its parts: alternating timing, the one report type and its templates,
the common options."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from bench.harness import (
    RESULTS_DIR,
    RUNS_DIR,
    TEMPLATES_DIR,
    Report,
    Table,
    Timing,
    base_parser,
    parse,
    run_root,
    slug,
    time_alternating,
)


def test_timing_quartiles_interpolate_and_fall_back_to_the_extremes() -> None:
    timing = Timing("a", [4.0, 1.0, 3.0, 2.0, 5.0])
    assert timing.median == 3.0
    assert (timing.quantile(0.25), timing.quantile(0.75)) == (2.0, 4.0)
    assert timing.spread == pytest.approx(2.0 / 3.0)
    few = Timing("b", [2.0, 1.0, 3.0])
    assert (few.quantile(0.25), few.quantile(0.75)) == (1.0, 3.0)


def test_contenders_alternate_and_a_spent_budget_leaves_the_rotation() -> None:
    calls: list[str] = []
    contenders = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    timings = time_alternating(contenders, warmup=1, repeats=3, min_repeats=2, budget_s=0.0)
    # one warm-up call each, then both rotate until each has its two samples over a 0 s budget
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert [timings[name].repeats for name in contenders] == [2, 2]
    with pytest.raises(ValueError, match="min_repeats"):
        time_alternating(contenders, repeats=1, min_repeats=2)


def test_a_report_fills_its_template_and_writes_both_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("bench.report.TEMPLATES_DIR", tmp_path)
    (tmp_path / "header.md").write_text((TEMPLATES_DIR / "header.md").read_text())
    (tmp_path / "demo.md").write_text(
        "## Method\n\n- {count} items, {threads} threads.\n\n## Findings\n\n{findings}\n"
        "- A fixed finding.\n\n{tables}\n\n## Notes kept by hand\n\nProse.\n"
    )
    args = argparse.Namespace(threads=2, quick=True)
    report = Report.start(args, "demo", "A demo", count=3)
    report.findings.append("A measured finding.")
    report.tables.append(Table("Figures", ["name", "x"], [{"name": "a", "x": 0.5}]))
    json_path, markdown_path = report.write(tmp_path)
    markdown = markdown_path.read_text()
    assert markdown.startswith("# A demo\n\nCommand: `python")
    assert "- 3 items, 2 threads." in markdown and "## Notes kept by hand\n\nProse." in markdown
    assert "| a | 0.50 |" in markdown
    written = json.loads(json_path.read_text())
    assert written["method"] == ["3 items, 2 threads."]
    assert written["findings"] == ["A measured finding.", "A fixed finding."]
    assert written["settings"] == {"threads": 2, "quick": True, "count": 3}
    assert written["tables"][0]["rows"] == [{"name": "a", "x": 0.5}]


def test_a_quick_run_never_writes_over_the_committed_results(tmp_path: Path) -> None:
    def results_of(*argv: str) -> Path:
        return parse(base_parser("A benchmark."), list(argv)).results_dir

    assert results_of("--quick") == RUNS_DIR / "quick"
    assert results_of("--quick", "--results-dir", str(tmp_path)) == tmp_path
    assert results_of() == RESULTS_DIR


def test_names_as_file_names_and_the_run_folders_of_smoke_runs() -> None:
    assert slug("NVIDIA H100 80GB HBM3") == "nvidia_h100_80gb_hbm3"
    assert slug("tv fcn_resnet50 (scratch)") == "tv_fcn_resnet50_scratch"
    assert run_root("quality_camvid", quick=True) == RUNS_DIR / "quality_camvid_quick"
    assert run_root("quality_camvid", quick=False) == RUNS_DIR / "quality_camvid"


@pytest.mark.parametrize("markdown", sorted(RESULTS_DIR.glob("*.md")), ids=lambda p: p.name)
def test_every_section_of_a_committed_result_is_in_its_template(markdown: Path) -> None:
    """A rerun keeps the prose: every section heading of a result file is written by the
    benchmark's template."""
    template = TEMPLATES_DIR / markdown.name
    text = template.read_text()
    for heading in re.findall(r"^## (.+)$", markdown.read_text(), re.MULTILINE):
        assert f"## {heading}" in text, f"{markdown.name}: '## {heading}' is not in {template.name}"
