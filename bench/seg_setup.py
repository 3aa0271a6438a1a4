"""What the segmentation speed benchmarks build alike: a config's module, generated images, and
``seg predict``'s folder inference with its defaults beside the network alone."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench.harness import REPO

CONFIG = REPO / "configs" / "seg" / "fcn8s_fashion.yaml"
DATA_ROOT = REPO / "data" / "bench"


def load_config(path: Path = CONFIG) -> dict[str, Any]:
    """The LightningCLI config as a plain dict (``model``, ``data``, ``trainer`` sections)."""
    with Path(path).open() as handle:
        return yaml.safe_load(handle)


def make_module(config: dict[str, Any], seed: int = 0) -> Any:
    """The config's ``SegmentationModule``, seeded."""
    from seg.module import SegmentationModule

    torch.manual_seed(seed)
    return SegmentationModule(**dict(config.get("model", {})))


def generate_images(num_images: int, image_size: int) -> Path:
    """A folder of ``num_images`` Fashion-MNIST-Seg canvases of ``image_size`` pixels (PNG),
    made once."""
    from seg.data.fashion_seg import FashionSegParams, prepare_fashion_seg

    root = DATA_ROOT / f"infer{image_size}_{num_images}"
    params = FashionSegParams(canvas_size=image_size, min_garments=2, max_garments=5)
    base = prepare_fashion_seg(root, num_train=1, num_val=num_images, params=params)
    return base / "val" / "images"


def read_images(folder: Path) -> list[torch.Tensor]:
    """Every image of ``folder`` decoded as uint8 (3, H, W), as ``seg predict`` lists them."""
    from common.io import list_images, read_image

    return [torch.from_numpy(np.array(read_image(p))).permute(2, 0, 1) for p in list_images(folder)]


def predict_defaults() -> dict[str, Any]:
    """The defaults of ``seg predict --input ... --output ...``."""
    from seg.predict import folder_predict_parser

    unused = ["--ckpt_path", "unused", "--input", "unused", "--output", "unused"]
    return vars(folder_predict_parser().parse_args(unused))


def make_predictor(network: Any, channels_last: bool, **overrides: Any) -> Any:
    """A ``FolderPredictor`` with the defaults of ``seg predict`` (those its constructor takes),
    on the CPU, without a progress bar; ``overrides`` replace defaults (``precision="32"``).
    ``network``: a module or an engine (``seg.deploy.OnnxSegmenter``)."""
    from seg.inference.predictor import FolderPredictor

    accepted = inspect.signature(FolderPredictor).parameters
    options = {key: value for key, value in predict_defaults().items() if key in accepted}
    options.update(device="cpu", progress=False, channels_last=channels_last, **overrides)
    return FolderPredictor(network, **options)


class TrivialNetwork(torch.nn.Module):
    """A 1x1 convolution to ``num_classes`` logits: folder inference with (almost) no network,
    to measure what decoding, encoding and writing alone cost through the real pipeline."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)


def folder_inference(predictor: Any, input_dir: Path, output: Path) -> Callable[[], None]:
    """One ``seg predict`` run over ``input_dir``; fails unless every image was written."""
    from common.io import list_images

    expected = len(list_images(input_dir))

    def run() -> None:
        summary = predictor.predict_folder(input_dir, output)
        if not summary.ok or len(summary.written) != expected:
            raise RuntimeError(f"folder inference did not write every image: {summary}")

    return run


def model_only(
    network: Callable[[torch.Tensor], Any],
    images: list[torch.Tensor],
    batch_size: int,
    channels_last: bool = False,
    bf16: bool = False,
) -> Callable[[], None]:
    """The network's (or engine's) forward passes over in-memory float batches in [0, 1]."""
    batches = [
        torch.stack(images[start : start + batch_size]).float().div(255.0)
        for start in range(0, len(images), batch_size)
    ]
    if channels_last:
        batches = [batch.contiguous(memory_format=torch.channels_last) for batch in batches]
    if isinstance(network, torch.nn.Module):
        network.eval()

    def run() -> None:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            for batch in batches:
                network(batch)

    return run
