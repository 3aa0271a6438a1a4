"""The Generate tab as plain functions: a seed and a count give the images ``gan sample`` writes
for them (``gan.dcgan.sample.write_samples``: the same files, byte for byte), and two seeds give a
walk through the latent space between them.

The ends of the walk are the images that ``gan sample --num 1 --seed A`` (and ``--seed B``)
writes: the noise of one sample of that seed. Points between them follow the great circle
(``gan.dcgan.sample.slerp``), as ``gan sample --interpolate`` does.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from gan.dcgan.sample import generate_images, grid_image, sample_noise, slerp, to_pil, write_samples
from upsample_app.limits import AppInputError
from upsample_app.models import GeneratorModel

#: at most this many images per request (a grid of 16 x 16).
MAX_COUNT = 256
#: at most this many points on an interpolation strip.
MAX_STEPS = 32
#: seeds are integers in [0, MAX_SEED].
MAX_SEED = 2**63 - 1


def check_seed(seed: float | int | None, what: str = "seed") -> int:
    """``seed`` as an int in [0, ``MAX_SEED``]; else ``AppInputError``."""
    if seed is None or float(seed) != int(seed) or not 0 <= int(seed) <= MAX_SEED:
        raise AppInputError(f"{what} {seed}: expected a whole number from 0 to {MAX_SEED}")
    return int(seed)


def check_count(count: float | int | None, maximum: int, what: str, minimum: int = 1) -> int:
    """``count`` as an int in [``minimum``, ``maximum``]; else ``AppInputError``."""
    if count is None or float(count) != int(count) or not minimum <= int(count) <= maximum:
        raise AppInputError(f"{what} {count}: expected a whole number from {minimum} to {maximum}")
    return int(count)


@dataclass
class Samples:
    """What ``gan sample --num count --seed seed`` wrote under ``folder``: ``grid`` (grid.png)
    and ``samples`` (samples/sample_00000.png ...)."""

    folder: Path
    grid: Path
    samples: list[Path]


def generate(model: GeneratorModel, seed: float | int, count: float | int, folder: Path) -> Samples:
    """Write ``gan sample``'s files for ``seed`` and ``count`` images into ``folder``.

    Raises:
        AppInputError: a seed or count out of range.
    """
    seed, count = check_seed(seed), check_count(count, MAX_COUNT, "count")
    written = write_samples(model.network, folder, num=count, seed=seed)
    return Samples(Path(folder), written[0], written[1:])


def archive(samples: Samples, name: str) -> Path:
    """``samples``' files in one zip beside their folder (``<name>.zip``, ``grid.png`` and
    ``samples/*.png`` as ``gan sample`` lays them out): one download instead of hundreds."""
    path = samples.folder.parent / f"{name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zipped:  # PNGs do not compress
        for file in (samples.grid, *samples.samples):
            zipped.write(file, file.relative_to(samples.folder).as_posix())
    return path


@dataclass
class Walk:
    """A latent walk from seed A to seed B: the image at the slider's ``position`` and a
    ``strip`` of ``steps`` images from A to B (both PIL images)."""

    position: float
    image: Image.Image
    strip: Image.Image


def _endpoint(model: GeneratorModel, seed: int) -> torch.Tensor:
    return sample_noise(1, model.nz, seed)


def walk(
    model: GeneratorModel,
    seed_a: float | int,
    seed_b: float | int,
    position: float,
    steps: float | int = 8,
) -> Walk:
    """The image at ``position`` (0: seed A's, 1: seed B's) on the great circle between the two
    seeds' noise, and a strip of ``steps`` evenly spaced images from A to B.

    Raises:
        AppInputError: a seed, position or number of steps out of range.
    """
    start = _endpoint(model, check_seed(seed_a, "seed A"))
    end = _endpoint(model, check_seed(seed_b, "seed B"))
    steps = check_count(steps, MAX_STEPS, "steps", minimum=2)
    if position is None or not 0.0 <= float(position) <= 1.0:
        raise AppInputError(f"position {position}: expected a value from 0 to 1")
    # The point alone, in a batch of one as `gan sample --num 1` makes it: at the ends it is that
    # command's image, bit for bit.
    point = generate_images(model.network, slerp(start, end, torch.tensor([float(position)]))[0])
    strip = generate_images(model.network, slerp(start, end, torch.linspace(0, 1, steps))[0])
    return Walk(float(position), to_pil(point[0]), grid_image(strip, nrow=steps))
