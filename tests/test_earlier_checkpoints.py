"""Checkpoints written before the shared library moved under the ``upsample`` namespace load
with the trust rules unchanged and give the outputs they gave when they were written
(``tests/fixtures/before_namespace/README.md``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.dcgan.module import GANModule
from gan.dcgan.network_io import load_generator
from gan.translation.loading import load_translator
from gan.translation.pix2pix import Pix2PixModule
from seg.module import SegmentationModule
from seg.network_io import load_network
from upsample.core.seeding import seeded

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "before_namespace"
#: outputs were written on one CPU; another may round its float sums otherwise
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(FIXTURES / "expected_outputs.pt", weights_only=True)


@torch.no_grad()
def test_segmenter_gives_its_outputs(expected: dict) -> None:
    network = load_network(FIXTURES / "segmenter_fcn8s.ckpt")
    case = expected["segmenter_fcn8s"]
    torch.testing.assert_close(network(case["input"]), case["output"], **TOLERANCE)


@torch.no_grad()
def test_dcgan_gives_its_samples(expected: dict) -> None:
    generator = load_generator(FIXTURES / "dcgan.ckpt")
    case = expected["dcgan"]
    torch.testing.assert_close(generator(case["input"]), case["output"], **TOLERANCE)


@torch.no_grad()
def test_pix2pix_gives_its_photos(expected: dict) -> None:
    translator, spec = load_translator(FIXTURES / "pix2pix.ckpt")
    assert spec.num_classes == 3 and spec.image_size == (16, 24)
    case = expected["pix2pix"]
    with seeded(0, torch.device("cpu")):
        photos = translator(case["input"])
    torch.testing.assert_close(photos, case["output"], **TOLERANCE)


@pytest.mark.parametrize(
    ("module_class", "name"),
    [
        (SegmentationModule, "segmenter_fcn8s"),
        (GANModule, "dcgan"),
        (Pix2PixModule, "pix2pix"),
    ],
)
def test_modules_load_for_resuming(module_class: type, name: str) -> None:
    """The Lightning modules load them (as ``--ckpt_path`` and ``validate`` do), every weight in
    place."""
    path = FIXTURES / f"{name}.ckpt"
    module = module_class.load_from_checkpoint(path, map_location="cpu")
    stored = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    loaded = module.state_dict()
    assert stored.keys() == loaded.keys()
    for key, value in stored.items():
        assert torch.equal(loaded[key], value), key
