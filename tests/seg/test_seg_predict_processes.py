"""Folder inference in several processes, as users start it, under hard timeouts that kill every
process: two DDP ranks on CPU (gloo) through Lightning's launcher and two shards of a job array
write every readable image of an awkward folder exactly once, byte for byte as one process does;
a run stopped by SIGTERM or killed by SIGKILL halfway and started again ends with exactly the
outputs of an uninterrupted run. Every process runs one thread (``tests.processes.ddp_env``), so
outputs compare exactly."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import processes
from tests.seg.helpers import random_pair
from tests.seg.scale_helpers import (
    CONFIG,
    leftovers,
    output_digests,
    train_checkpoint,
    write_odd_folder,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("trained"))


def seg_predict(*args: str) -> list[str]:
    """The ``seg`` console script's ``predict`` as a process from this checkout."""
    return processes.python_command("upsample_app.console", "seg", "predict", *args)


def test_two_ranks_and_two_shards_write_every_image_once(checkpoint: Path, tmp_path: Path) -> None:
    names = write_odd_folder(tmp_path / "in")
    common = ["--ckpt_path", str(checkpoint), "--input", str(tmp_path / "in")]
    common += ["--tile_size", "64", "--overlap", "8", "--batch_size", "3", "--save_probabilities"]

    single = processes.run(seg_predict(*common, "--output", str(tmp_path / "one")), tmp_path)
    assert single.returncode == 1, single.output[-3000:]  # broken.png skipped
    reference = output_digests(tmp_path / "one")
    assert len(reference) == 3 * len(names)

    # the shipped training config's trainer: section, the devices from the command line
    ranks = processes.run(
        seg_predict(
            *common, "--output", str(tmp_path / "ranks"), "--config", str(REPO / CONFIG),
            "--trainer.devices", "2", "--trainer.accelerator", "cpu", "--trainer.num_nodes", "1",
        ),
        tmp_path,
    )  # fmt: skip
    assert ranks.returncode == 1, ranks.output[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in ranks.output
    assert ranks.output.count(f"{len(names)} image(s) written, 1 skipped") == 1
    assert ranks.output.count("  skipped ") == 1, "the failure named once in the report"
    summary = json.loads((tmp_path / "ranks" / "summary.json").read_text())
    assert (summary["images"], summary["written"], summary["failed"]) == (
        len(names) + 1,
        len(names),
        1,
    )
    assert summary["world_size"] == 2 and summary["failures"][0]["path"].endswith("broken.png")
    assert output_digests(tmp_path / "ranks") == reference

    for shard in ("0/2", "1/2"):
        result = processes.run(
            seg_predict(*common, "--output", str(tmp_path / "shards"), "--shard", shard), tmp_path
        )
        assert result.returncode in (0, 1), result.output[-3000:]
    parts = [json.loads(p.read_text()) for p in sorted((tmp_path / "shards").glob("summary.*"))]
    assert [part["shard"] for part in parts] == ["0/2", "1/2"]
    assert sum(part["written"] for part in parts) == len(names)
    assert sum(part["failed"] for part in parts) == 1
    assert output_digests(tmp_path / "shards") == reference


def write_photos(folder: Path, count: int) -> None:
    rng = np.random.default_rng(3)
    for index in range(count):
        sub = folder / f"part{index % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(random_pair(rng, 40, 56)[0]).save(sub / f"{index:04d}.png")


def stop_halfway(command: list[str], tmp_path: Path, masks: Path, signum: int) -> int:
    """Start ``command``, send ``signum`` to all its processes once some of its masks are
    written; its exit status."""
    log = tmp_path / f"stopped-{signum}.log"
    started = time.monotonic()
    process = processes.start(command, tmp_path, processes.ddp_env(), log)
    try:
        while len(list(masks.rglob("*.png"))) < 20 and process.poll() is None:
            time.sleep(0.01)
        os.killpg(process.pid, signum)
        return processes.wait(process, log, 120, started).returncode
    finally:
        if process.poll() is None:
            processes.kill_group(process)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_run_started_again_ends_as_an_uninterrupted_one(
    signum: int, checkpoint: Path, tmp_path: Path
) -> None:
    count = 240
    write_photos(tmp_path / "in", count)
    common = ["--ckpt_path", str(checkpoint), "--input", str(tmp_path / "in")]
    common += ["--tta", "--save_probabilities", "--batch_size", "4"]
    whole = processes.run(seg_predict(*common, "--output", str(tmp_path / "whole")), tmp_path)
    assert whole.returncode == 0, whole.output[-3000:]
    reference = output_digests(tmp_path / "whole")

    out = tmp_path / "out"
    status = stop_halfway(
        seg_predict(*common, "--output", str(out)), tmp_path, out / "masks", signum
    )
    done = len(list((out / "masks").rglob("*.png")))
    assert 0 < done < count, "the run was not stopped halfway"
    if signum == signal.SIGTERM:
        assert status == 128 + signal.SIGTERM
        stopped = json.loads((out / "summary.json").read_text())
        assert stopped["stopped_by"] == "SIGTERM" and stopped["not_done"] > 0
        assert not leftovers(out)  # it wrote what it had computed, and nothing half
    else:
        assert status == -signal.SIGKILL
        # what a process killed while writing leaves behind, beside its complete outputs
        (out / "overlays" / "part0").mkdir(parents=True, exist_ok=True)
        (out / "overlays" / "part0" / ".0236.x7y2k9q0.tmp.jpg").write_bytes(b"\xff\xd8 half")

    complete = sum(
        all((out / kind / f"{stem}{suffix}").is_file() for kind, suffix in OUTPUTS)
        for stem in (f"part{i % 4}/{i:04d}" for i in range(count))
    )
    again = processes.run(seg_predict(*common, "--output", str(out)), tmp_path)
    assert again.returncode == 0, again.output[-3000:]
    assert f"{count - complete} image(s) written, 0 skipped, {complete} already complete" in (
        again.output
    )
    assert output_digests(out) == reference
    assert not leftovers(out)


OUTPUTS = (("masks", ".png"), ("overlays", ".jpg"), ("probabilities", ".npy"))
