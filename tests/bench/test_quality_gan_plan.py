"""bench.quality_gan: which generators are compared "at the same number of steps"."""

from pathlib import Path

import pytest

from bench.quality_gan import same_step_plan


def test_a_faster_toolkit_is_compared_at_its_last_snapshot_before_the_classic_end(
    tmp_path: Path,
) -> None:
    step, toolkit, classic = same_step_plan({"batches": 3776}, {"batches": 1935}, tmp_path, 100)
    assert step == 1900  # never more steps than the classic generator had
    assert toolkit == tmp_path / "toolkit" / "steps" / "001900.ckpt"
    assert classic == tmp_path / "classic" / "classic_p100.pt"


def test_a_faster_classic_loop_is_compared_at_the_toolkit_final_step(tmp_path: Path) -> None:
    exact = tmp_path / "classic" / "classic_step002153.pt"
    exact.parent.mkdir(parents=True)
    exact.touch()
    step, toolkit, classic = same_step_plan({"batches": 2153}, {"batches": 2200}, tmp_path, 100)
    assert (step, toolkit, classic) == (2153, tmp_path / "toolkit" / "toolkit_p100.ckpt", exact)


def test_without_the_exact_file_both_use_a_common_snapshot(tmp_path: Path) -> None:
    step, toolkit, classic = same_step_plan({"batches": 2153}, {"batches": 2200}, tmp_path, 100)
    assert step == 2100
    assert toolkit.name == "002100.ckpt" and classic.name == "002100.pt"
    with pytest.raises(RuntimeError, match="no common snapshot"):
        same_step_plan({"batches": 50}, {"batches": 40}, tmp_path, 100)
