"""Folder inference building blocks: tiling and blending, output names, error handling."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from seg.inference.outputs import output_names
from seg.inference.predictor import FolderPredictor
from seg.inference.tiling import blend_window, tile_starts


class PointwiseNet(nn.Module):
    """A 1x1 convolution: its output at a pixel depends only on that pixel, so tiled and whole
    predictions must agree exactly."""

    min_input_size = 1

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 5


def test_tile_starts_cover_and_end_at_the_edge() -> None:
    assert tile_starts(100, 128, 16) == [0]
    starts = tile_starts(300, 128, 32)
    assert starts[0] == 0 and starts[-1] == 300 - 128
    assert all(b - a <= 128 - 32 for a, b in itertools.pairwise(starts))


def test_blend_window_is_positive_and_ramps() -> None:
    window = blend_window(8, 10, overlap=3)
    assert window.shape == (8, 10) and (window > 0).all()
    assert window[0, 5] == pytest.approx(0.25) and window[4, 5] == 1.0


def test_tiled_prediction_equals_whole_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(150, 230, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "big.png")
    outputs = {}
    for name, tile in (("whole", 512), ("tiled", 64)):
        predictor = FolderPredictor(
            PointwiseNet(),
            batch_size=3,
            tile_size=tile,
            overlap=16,
            tta=True,
            save_probabilities=True,
            num_workers=0,
            channels_last=False,
            progress=False,
        )
        summary = predictor.predict_folder(tmp_path / "in", tmp_path / name)
        assert summary.ok and len(summary.written) == 1
        outputs[name] = np.load(tmp_path / name / "probabilities" / "big.npy")
    assert outputs["whole"].shape == (4, 150, 230) and outputs["whole"].dtype == np.float16
    np.testing.assert_allclose(outputs["tiled"], outputs["whole"], atol=2e-3)
    np.testing.assert_allclose(outputs["whole"].astype(np.float32).sum(0), 1.0, atol=5e-3)


def test_output_names_disambiguate_same_stem() -> None:
    assert output_names(["a.jpg", "a.png", "sub/b.tif"]) == ["a_jpg", "a_png", "sub/b"]


def test_missing_input_folder(tmp_path: Path) -> None:
    predictor = FolderPredictor(PointwiseNet(), num_workers=0, progress=False)
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        predictor.predict_folder(tmp_path / "nope", tmp_path / "out")


def test_empty_input_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    predictor = FolderPredictor(PointwiseNet(), num_workers=0, progress=False)
    summary = predictor.predict_folder(tmp_path / "in", tmp_path / "out")
    assert not summary.ok and "no image files" in summary.report()


def test_overlay_blends_labelled_pixels_only_and_palette_round_trip(tmp_path: Path) -> None:
    from seg.visualize import PALETTE, overlay, palette_mask_image

    image = np.full((2, 3, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 1, 255], [2, 0, 15]], dtype=np.uint8)
    blended = overlay(image, mask, alpha=0.5)
    keep = (mask == 0) | (mask == 255)
    assert (blended[keep] == 100).all()
    expected = (100 + PALETTE[mask[~keep]].astype(int)) / 2
    assert np.abs(blended[~keep] - expected).max() <= 1
    palette_mask_image(mask).save(tmp_path / "m.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), mask)
    assert PALETTE[0].tolist() == [0, 0, 0] and PALETTE[1].tolist() == [128, 0, 0]
