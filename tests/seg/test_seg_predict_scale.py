"""Folder inference for large archives, in this process: shares of the sorted inputs (shards and
ranks), input list files, resuming from complete outputs, ``--overwrite``, masks only,
``summary.json``, and the trainer options read from a config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from seg.console import main
from seg.inference.inputs import InputFiles, Shard
from seg.predict_options import folder_predict_parser, trainer_options
from tests.seg.scale_helpers import (
    CONFIG,
    leftovers,
    output_digests,
    train_checkpoint,
    write_odd_folder,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("trained"))


def predict(*args: str) -> int:
    """``seg predict`` as the console script runs it; the exit status."""
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *args])
    return int(exit_info.value.code)


@pytest.mark.parametrize("total", [0, 1, 5, 13])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_shards_cover_every_input_once_in_distributed_sampler_order(total: int, count: int) -> None:
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    shares = [list(Shard(index, count).indices(total)) for index in range(count)]
    assert sorted(i for share in shares for i in share) == list(range(total))
    if total >= count:  # Lightning's sampler for prediction asserts one sample per rank
        for index, share in enumerate(shares):
            sampler = UnrepeatedDistributedSampler(
                range(total), num_replicas=count, rank=index, shuffle=False
            )
            assert share == list(sampler)
    # shard K of N split over W ranks: every input once across all N * W processes
    split = [
        i
        for shard in range(count)
        for rank in range(2)
        for i in Shard(shard, count).within(rank, 2).indices(total)
    ]
    assert sorted(split) == list(range(total))


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0"])
def test_bad_shards_are_named(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected K/N"):
        Shard.parse(text)


def test_list_file_inputs(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    names = write_odd_folder(tmp_path / "archive")
    listed = tmp_path / "lists" / "files.txt"
    listed.parent.mkdir()
    lines = ["# a comment", "", "../archive/img00.png", str(tmp_path / "archive/a/img01.png")]
    lines += ["../archive/b/c/img02.png", "../archive/img00.png", "../archive/missing.png"]
    listed.write_text("\n".join(lines) + "\n")
    inputs = InputFiles.from_source(listed)
    assert [item.name for item in inputs.files] == ["a/img01", "b/c/img02", "img00", "missing"]
    assert "img00" in names
    out = tmp_path / "out"
    assert (
        predict("--ckpt_path", str(checkpoint), "--input", str(listed), "--output", str(out)) == 1
    )
    err = capsys.readouterr().err
    assert f"skipped {tmp_path / 'archive' / 'missing.png'}: file not found" in err
    assert "3 image(s) written, 1 skipped" in err
    assert (out / "masks" / "b" / "c" / "img02.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["written"], summary["failed"]) == (4, 3, 1)
    assert summary["failures"][0]["reason"] == "file not found"


def test_a_second_run_keeps_complete_outputs_and_redoes_the_rest(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    names = write_odd_folder(tmp_path / "in")
    out = tmp_path / "out"
    common = ["--ckpt_path", str(checkpoint), "--input", str(tmp_path / "in"), "--output"]
    common += [str(out), "--tile_size", "64", "--overlap", "8", "--batch_size", "3"]
    assert predict(*common) == 1  # broken.png
    assert f"{len(names)} image(s) written, 1 skipped" in capsys.readouterr().err
    first = output_digests(out)
    assert len(first) == 2 * len(names)
    # a killed run's leftovers: a temporary file of an output of this share, a missing overlay
    (out / "overlays" / "img03.jpg").unlink()
    leftover = out / "masks" / "a" / ".img01.k3v9x_2q.tmp.png"
    leftover.write_bytes(b"half a PNG")
    assert predict(*common) == 1
    err = capsys.readouterr().err
    assert f"1 image(s) written, 1 skipped, {len(names) - 1} already complete" in err
    assert output_digests(out) == first and not leftovers(out)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["written"], summary["already_complete"], summary["failed"]) == (
        1,
        len(names) - 1,
        1,
    )
    assert summary["images"] == len(names) + 1 and summary["images_per_s"] > 0
    assert predict(*common, "--overwrite") == 1
    assert f"{len(names)} image(s) written, 1 skipped" in capsys.readouterr().err
    assert output_digests(out) == first


def test_masks_only_and_probabilities_count_as_outputs(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_odd_folder(tmp_path / "in", count=4)
    (tmp_path / "in" / "b" / "broken.png").unlink()
    out = tmp_path / "out"
    common = ["--ckpt_path", str(checkpoint), "--input", str(tmp_path / "in"), "--output"]
    assert predict(*common, str(out), "--no_overlays", "--no_progress") == 0
    assert not (out / "overlays").exists() and len(list((out / "masks").rglob("*.png"))) == 6
    # probabilities asked for now: no input is complete without them
    threads = ["--num_workers", "0", "--writer_threads", "2"]  # decoding in this process
    assert predict(*common, str(out), "--no_overlays", "--save_probabilities", *threads) == 0
    assert "6 image(s) written, 0 skipped" in capsys.readouterr().err
    mask = Image.open(out / "masks" / "a" / "big_jpg.png")
    assert mask.size == (170, 150) and mask.mode == "P"


def test_trainer_options_come_from_a_config_and_the_command_line(tmp_path: Path) -> None:
    parser = folder_predict_parser()
    base = ["--ckpt_path", "c", "--input", "i", "--output", "o"]

    def parsed(*args: str) -> argparse.Namespace:
        return parser.parse_args([*base, *args])

    assert trainer_options(parsed()) is None
    shipped = trainer_options(parsed("--config", str(REPO / CONFIG), "--trainer.devices", "2"))
    assert shipped == {"accelerator": "auto", "devices": 2}
    config = tmp_path / "predict.yaml"
    config.write_text("trainer:\n  accelerator: cpu\n  devices: 2\n  num_nodes: 1\n")
    assert trainer_options(parsed("--config", str(config))) == {
        "accelerator": "cpu",
        "devices": 2,
        "num_nodes": 1,
    }
    with pytest.raises(ValueError, match="--trainer.accelerator"):
        trainer_options(parsed("--trainer.devices", "2", "--device", "cpu"))


def test_one_device_through_lightning_writes_what_one_process_writes(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run across devices (Lightning's launcher, the ranks' agreements, the reduced summary)
    with one CPU device, in this process: the same files and counts as without Lightning."""
    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE"):
        # the launcher sets these; removed afterwards (a LOCAL_RANK left behind would make every
        # later launch in this process believe it is a rank that another process started)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    names = write_odd_folder(tmp_path / "in")
    common = ["--ckpt_path", str(checkpoint), "--input", str(tmp_path / "in")]
    common += ["--tile_size", "64", "--overlap", "8", "--no_progress"]
    assert predict(*common, "--output", str(tmp_path / "one")) == 1
    lightning = ["--trainer.devices", "1", "--trainer.accelerator", "cpu"]
    assert predict(*common, "--output", str(tmp_path / "ranks"), *lightning) == 1
    assert output_digests(tmp_path / "ranks") == output_digests(tmp_path / "one")
    summary = json.loads((tmp_path / "ranks" / "summary.json").read_text())
    assert (summary["written"], summary["failed"], summary["world_size"]) == (len(names), 1, 1)
    assert predict(*common, "--output", str(tmp_path / "ranks"), *lightning) == 1  # resumed
    resumed = json.loads((tmp_path / "ranks" / "summary.json").read_text())
    assert (resumed["written"], resumed["already_complete"]) == (0, len(names))
