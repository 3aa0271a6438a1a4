"""Sampling: interpolation maths, byte-identical files, checkpoint -> bare generator -> files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from gan.cli import main
from gan.dcgan.models import Generator
from gan.dcgan.module import GANModule
from gan.dcgan.network_io import load_generator
from gan.dcgan.sample import interpolation_noise, lerp, slerp, write_samples
from upsample.core.checkpoint import CheckpointError


def test_lerp_and_slerp_hit_the_endpoints() -> None:
    start, end = torch.randn(3, 16), torch.randn(3, 16)
    weights = torch.linspace(0, 1, 5)
    for interpolate in (lerp, slerp):
        path = interpolate(start, end, weights)
        assert path.shape == (3, 5, 16)
        assert torch.allclose(path[:, 0], start, atol=1e-5)
        assert torch.allclose(path[:, -1], end, atol=1e-5)


def test_slerp_follows_the_great_circle() -> None:
    start = torch.tensor([[3.0, 0.0]])
    end = torch.tensor([[0.0, 3.0]])
    middle = slerp(start, end, torch.tensor([0.5]))[0, 0]
    assert torch.allclose(middle, torch.tensor([3.0, 3.0]) / 2**0.5, atol=1e-5)
    assert float(lerp(start, end, torch.tensor([0.5]))[0, 0].norm()) < 2.2  # lerp cuts inside
    parallel = slerp(start, 2 * start, torch.tensor([0.5]))[0, 0]  # falls back to lerp
    assert torch.allclose(parallel, torch.tensor([4.5, 0.0]))


def test_interpolation_noise_layout() -> None:
    noise = interpolation_noise(pairs=2, steps=4, nz=8, seed=0)
    assert noise.shape == (8, 8)
    assert torch.equal(noise, interpolation_noise(2, 4, 8, 0))
    with pytest.raises(ValueError, match="2 steps"):
        interpolation_noise(2, 1, 8, 0)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = Generator(nz=8, ngf=4, channels=1, image_size=32)
    write_samples(generator, tmp_path / "a", num=5, seed=3, interpolate=4, pairs=2)
    write_samples(generator, tmp_path / "b", num=5, seed=3, interpolate=4, pairs=2)
    write_samples(generator, tmp_path / "c", num=5, seed=4, interpolate=4, pairs=2)
    first, second, other = (_files(tmp_path / name) for name in "abc")
    assert sorted(first) == [
        "grid.png",
        "interpolation.png",
        "interpolation/pair_00.png",
        "interpolation/pair_01.png",
        *(f"samples/sample_{i:05d}.png" for i in range(5)),
    ]
    assert first == second
    assert first["samples/sample_00000.png"] != other["samples/sample_00000.png"]
    # image i of a seed does not depend on how many are drawn
    write_samples(generator, tmp_path / "d", num=1, seed=3)
    assert _files(tmp_path / "d")["samples/sample_00000.png"] == first["samples/sample_00000.png"]
    with Image.open(tmp_path / "a" / "samples" / "sample_00000.png") as image:
        assert image.mode == "L" and image.size == (32, 32)
    with Image.open(tmp_path / "a" / "interpolation.png") as image:
        assert image.size == (2 + 4 * 34, 2 + 2 * 34)  # 4 columns, 2 rows, 2-pixel gaps


def test_load_generator_matches_the_trained_module(trained_checkpoint: Path) -> None:
    module = GANModule.load_from_checkpoint(trained_checkpoint, map_location="cpu")
    noise = torch.randn(3, module.hparams.nz)
    ema = load_generator(trained_checkpoint)
    assert isinstance(ema, Generator) and not ema.training
    assert torch.equal(ema(noise), module.generate(noise))
    raw = load_generator(trained_checkpoint, ema=False)
    assert torch.equal(raw(noise), module.generator.eval()(noise))
    assert not torch.equal(raw(noise), ema(noise))


def test_sample_command_round_trip(trained_checkpoint: Path, tmp_path: Path) -> None:
    for name in ("one", "two"):
        with pytest.raises(SystemExit) as status:
            main(
                [
                    "sample",
                    f"--ckpt_path={trained_checkpoint}",
                    "--num=3",
                    "--seed=1",
                    f"--output={tmp_path / name}",
                    "--interpolate=3",
                    "--pairs=1",
                ]
            )
        assert status.value.code == 0
    files = _files(tmp_path / "one")
    assert len(files) == 1 + 3 + 1 + 1 and files == _files(tmp_path / "two")
    with Image.open(tmp_path / "one" / "samples" / "sample_00000.png") as image:
        assert image.mode == "RGB" and image.size == (32, 32)


def test_corrupt_checkpoint_is_a_clear_error(
    trained_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(trained_checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="broken.ckpt"):
        load_generator(broken)
    with pytest.raises(SystemExit) as status:
        main(["sample", f"--ckpt_path={broken}", f"--output={tmp_path / 'out'}"])
    assert status.value.code == 2
    assert "broken.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_mismatched_checkpoint_is_a_clear_error(trained_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = torch.load(trained_checkpoint, weights_only=False)
    checkpoint["hyper_parameters"]["ngf"] = 8  # weights no longer fit the architecture
    mismatched = tmp_path / "mismatched.ckpt"
    torch.save(checkpoint, mismatched)
    with pytest.raises(CheckpointError, match=r"mismatched\.ckpt.*shape"):
        load_generator(mismatched)
    del checkpoint["hyper_parameters"]["nz"]
    torch.save(checkpoint, mismatched)
    with pytest.raises(CheckpointError, match="nz"):
        load_generator(mismatched)
    checkpoint = torch.load(trained_checkpoint, weights_only=False)
    checkpoint["state_dict"] = {
        k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("ema.")
    }
    torch.save(checkpoint, mismatched)
    with pytest.raises(CheckpointError, match="no EMA generator"):
        load_generator(mismatched)
    assert isinstance(load_generator(mismatched, ema=False), Generator)
