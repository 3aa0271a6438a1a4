"""The wheel a user installs: built from this checkout, installed into a fresh virtual environment,
it puts only ``seg``, ``gan`` and names of the project's own (``upsample``, ``upsample_app``) on
the import path, and its console scripts run and fit outside the source tree.

The fresh environment takes the dependencies from the test's own environment (a path file to its
site-packages) and the toolkit from the wheel alone: nothing of this checkout is importable there.
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests import processes
from tests.seg.helpers import write_folder_split

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"gan", "seg", "upsample", "upsample_app"}


def build_wheel(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(folder), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = folder.glob("upsample_toolkit-*.whl")
    return wheel


def fresh_environment(folder: Path, wheel: Path) -> Path:
    """A virtual environment with the wheel installed and this environment's site-packages
    (the dependencies) on its path; its ``bin`` folder."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    dependencies = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    (Path(purelib) / "dependencies.pth").write_text("\n".join(dict.fromkeys(dependencies)))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return folder / "bin"


def test_the_wheel_installs_its_own_names_and_runs_outside_the_tree(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        packages = {name.split("/")[0] for name in archive.namelist() if name.endswith(".py")}
    assert packages == TOP_LEVEL

    bin_dir = fresh_environment(tmp_path / "venv", wheel)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = processes.ddp_env()
    env.pop("PYTHONPATH")  # only what the environment installed

    def run(*command: str, timeout: float = 300) -> processes.Finished:
        return processes.run(list(command), outside, env, timeout=timeout)

    where = run(
        str(bin_dir / "python"), "-c",
        "import seg, gan, upsample.blocks, upsample_app; print(seg.__file__, gan.__file__)",
    )  # fmt: skip
    assert where.returncode == 0, where.output[-3000:]
    assert str(REPO) not in where.output and str(tmp_path / "venv") in where.output
    for tool in ("seg", "gan"):
        helped = run(str(bin_dir / tool), "--help")
        assert helped.returncode == 0, helped.output[-3000:]
        assert f"usage: {tool}" in helped.output

    write_folder_split(tmp_path / "data" / "train", 4, size=(32, 32))
    write_folder_split(tmp_path / "data" / "val", 2, size=(32, 32), seed=1)
    fit = run(
        str(bin_dir / "seg"), "fit", f"--config={REPO / 'configs/seg/fcn8s_fashion.yaml'}",
        "--data.format=folder", f"--data.root={tmp_path / 'data'}", "--data.num_classes=3",
        "--data.crop_size=32", "--data.batch_size=2", "--data.num_workers=0",
        "--model.network.width=0.0625", "--trainer.max_steps=2",
        f"--trainer.default_root_dir={tmp_path / 'runs'}",
    )  # fmt: skip
    assert fit.returncode == 0, fit.output[-3000:]
    assert (tmp_path / "runs" / "seg" / "version_0" / "checkpoints" / "last.ckpt").is_file()
