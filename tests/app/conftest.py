"""Fixtures of the app's tests: tiny checkpoints of the three models, written as Lightning writes
them (``Trainer.save_checkpoint``) once per session (the segmenter briefly taught, the others
random); photos and label maps; one intra-op thread (tiny tensors)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from tests.seg.helpers import random_pair
from upsample.core.checkpoint import save_module_checkpoint
from upsample_app.limits import UploadLimits
from upsample_app.models import LoadedModels, ModelSource, load_models

#: the segmenter's classes and colours (none black: every pixel of an overlay is tinted).
CLASS_NAMES = ["sky", "road", "car"]
PALETTE = [[70, 130, 230], [200, 60, 200], [250, 200, 30]]
#: the translator's input: 3 classes plus void (255), 16 x 24 training resolution.
TRANSLATOR_SIZE = (16, 24)
VOID = 255


@dataclass(frozen=True)
class Checkpoints:
    """Tiny ``fit`` checkpoints: ``segmenter`` (FCN-8s, 3 classes), ``generator`` (DCGAN 32x32
    RGB, nz 8, EMA weights) and ``translator`` (pix2pix U-Net, 3 classes + void, 16x24)."""

    segmenter: Path
    generator: Path
    translator: Path


def teach_colours(network: nn.Module, steps: int = 40) -> None:
    """A few Adam steps on blocks whose colour encodes their class (``tests.seg.helpers``): a
    random FCN labels a whole photo with one class, a taught one with several (under a second)."""
    rng = np.random.default_rng(0)
    pairs = [random_pair(rng, 48, 48) for _ in range(8)]
    images = torch.stack([torch.from_numpy(image).permute(2, 0, 1) for image, _ in pairs])
    masks = torch.stack([torch.from_numpy(mask).long() for _, mask in pairs])
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-2)
    network.train()
    for _ in range(steps):
        loss = F.cross_entropy(network(images.float() / 255), masks)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    network.eval()


def tiny_checkpoints(folder: Path) -> Checkpoints:
    """Write the three tiny checkpoints into ``folder``."""
    from gan.dcgan.module import GANModule
    from gan.translation.paired_data import InputSpec
    from gan.translation.pix2pix import Pix2PixModule
    from seg.module import SegmentationModule

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    segmenter = SegmentationModule(
        num_classes=len(CLASS_NAMES),
        network={"variant": "fcn8s", "width": 0.0625},
        class_names=CLASS_NAMES,
        palette=PALETTE,
    )
    teach_colours(segmenter.network)
    generator = GANModule(nz=8, ngf=4, ndf=4, channels=3, image_size=32)
    spec = InputSpec("labels", TRANSLATOR_SIZE, num_classes=3, void_values=(VOID,))
    translator = Pix2PixModule(input_spec=spec.to_dict(), ngf=4, ndf=4, depth=4, patch_size=16)
    return Checkpoints(
        save_module_checkpoint(segmenter, folder / "segmenter.ckpt"),
        save_module_checkpoint(generator, folder / "generator.ckpt"),
        save_module_checkpoint(translator, folder / "translator.ckpt"),
    )


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    return tiny_checkpoints(tmp_path_factory.mktemp("app_checkpoints"))


@pytest.fixture(scope="session")
def models(checkpoints: Checkpoints) -> LoadedModels:
    """All three models, loaded once as the app loads them."""
    return load_models(
        segmenter=ModelSource.of(checkpoints.segmenter),
        generator=ModelSource.of(checkpoints.generator),
        translator=ModelSource.of(checkpoints.translator),
    )


@pytest.fixture
def limits() -> UploadLimits:
    return UploadLimits()


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_photo(path: Path, size: tuple[int, int] = (120, 160), seed: int = 0) -> Path:
    """A colourful RGB photo (height, width) of smooth blobs, saved at ``path`` (PNG or JPEG by
    suffix)."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[:height, :width] / max(height, width)
    channels = [
        np.sin(6 * xx * rng.uniform(0.5, 2) + rng.uniform(0, 6))
        * np.cos(5 * yy * rng.uniform(0.5, 2) + rng.uniform(0, 6))
        for _ in range(3)
    ]
    image = ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def write_label_map(path: Path, size: tuple[int, int] = (40, 56)) -> Path:
    """A single-channel label map (height, width) of the translator's classes 0-2 in blocks and
    void (255) in a corner."""
    height, width = size
    values = np.zeros((height, width), np.uint8)
    values[: height // 2, width // 3 :] = 1
    values[height // 2 :, : width // 2] = 2
    values[:4, :4] = VOID
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)
    return path
