"""The Generate tab as plain functions: a seed and a count give ``gan sample``'s files byte for
byte; a walk ends at ``gan sample --num 1``'s image of each seed; bad values give the page's
message."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import Checkpoints
from upsample_app import generate
from upsample_app.console import gan_main
from upsample_app.limits import AppInputError
from upsample_app.models import LoadedModels, ModelSource, load_models


def gan_sample(output: Path, *flags: str) -> dict[str, bytes]:
    """Run ``gan sample`` and return its files (relative path -> bytes)."""
    with pytest.raises(SystemExit) as status:
        gan_main(["sample", "--output", str(output), *flags])
    assert status.value.code == 0
    return {p.relative_to(output).as_posix(): p.read_bytes() for p in output.rglob("*.png")}


def test_a_seed_gives_the_same_bytes_as_gan_sample(
    models: LoadedModels, checkpoints: Checkpoints, tmp_path: Path
) -> None:
    shown = generate.generate(models.generator, seed=7, count=5, folder=tmp_path / "app")
    files = {
        p.relative_to(shown.folder).as_posix(): p.read_bytes() for p in [shown.grid, *shown.samples]
    }
    expected = gan_sample(
        tmp_path / "cli", "--ckpt_path", str(checkpoints.generator), "--num=5", "--seed=7"
    )
    assert sorted(files) == ["grid.png", *(f"samples/sample_{i:05d}.png" for i in range(5))]
    assert files == expected
    again = generate.generate(models.generator, 7, 5, tmp_path / "again")
    assert again.grid.read_bytes() == shown.grid.read_bytes()
    other = generate.generate(models.generator, 8, 5, tmp_path / "other")
    assert other.grid.read_bytes() != shown.grid.read_bytes()
    with Image.open(shown.grid) as grid:
        assert grid.size == (2 + 3 * 34, 2 + 2 * 34)  # 3 columns, 2 rows of 32x32
    # one download: gan sample's files in its layout
    with zipfile.ZipFile(generate.archive(shown, "seed7")) as zipped:
        assert {name: zipped.read(name) for name in zipped.namelist()} == expected


def test_the_onnx_runtime_generator_gives_gan_samples_files_with_it(
    checkpoints: Checkpoints, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model_file = tmp_path / "generator.onnx"
    with pytest.raises(SystemExit) as status:
        gan_main(["export", "--ckpt_path", str(checkpoints.generator), "--output", str(model_file)])
    assert status.value.code == 0
    model = load_models(generator=ModelSource.of(model_file)).generator
    assert (model.source.engine, model.nz, model.image_size) == ("onnxruntime", 8, 32)
    shown = generate.generate(model, seed=3, count=4, folder=tmp_path / "app")
    expected = gan_sample(
        tmp_path / "cli",
        "--engine",
        "onnxruntime",
        "--model",
        str(model_file),
        "--num=4",
        "--seed=3",
    )
    assert shown.grid.read_bytes() == expected["grid.png"]


def test_a_walk_runs_from_one_seeds_image_to_the_others(
    models: LoadedModels, checkpoints: Checkpoints, tmp_path: Path
) -> None:
    model = models.generator
    ends = []
    for seed in (4, 9):
        files = gan_sample(
            tmp_path / str(seed), "--ckpt_path", str(checkpoints.generator), "--num=1",
            f"--seed={seed}",
        )  # fmt: skip
        ends.append(np.asarray(Image.open(tmp_path / str(seed) / "samples/sample_00000.png")))
        assert files
    start = generate.walk(model, 4, 9, 0.0, steps=5)
    end = generate.walk(model, 4, 9, 1.0, steps=5)
    np.testing.assert_array_equal(np.asarray(start.image), ends[0])
    np.testing.assert_array_equal(np.asarray(end.image), ends[1])
    middle = generate.walk(model, 4, 9, 0.5, steps=5)
    assert not np.array_equal(np.asarray(middle.image), ends[0])
    assert middle.strip.size == (2 + 5 * 34, 2 + 34)
    # the strip's first and last cells are the two ends
    strip = np.asarray(middle.strip)
    np.testing.assert_array_equal(strip[2:34, 2:34], ends[0])
    np.testing.assert_array_equal(strip[2:34, 2 + 4 * 34 : 34 + 4 * 34], ends[1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, d: generate.generate(m, -1, 4, d), "seed -1: expected a whole number"),
        (lambda m, d: generate.generate(m, 1.5, 4, d), "seed 1.5: expected a whole number"),
        (lambda m, d: generate.generate(m, None, 4, d), "seed None"),
        (lambda m, d: generate.generate(m, 0, 0, d), "count 0: expected a whole number from 1"),
        (lambda m, d: generate.generate(m, 0, 257, d), "count 257: .* from 1 to 256"),
        (lambda m, d: generate.walk(m, 0, -3, 0.5), "seed B -3"),
        (lambda m, d: generate.walk(m, 0, 1, 1.2), "position 1.2: expected a value from 0 to 1"),
        (lambda m, d: generate.walk(m, 0, 1, 0.5, steps=1), "steps 1: .* from 2 to 32"),
    ],
)
def test_bad_values_give_the_pages_message(
    models: LoadedModels, tmp_path: Path, call, message: str
) -> None:
    with pytest.raises(AppInputError, match=message):
        call(models.generator, tmp_path / "out")
    assert not (tmp_path / "out").exists()
