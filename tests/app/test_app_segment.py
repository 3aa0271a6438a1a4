"""The Segment tab as plain functions: what it shows for a photo is what ``seg predict`` writes
for it (mask, overlay bytes), whole or tiled, with or without flip TTA, in either engine."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import CLASS_NAMES, PALETTE, Checkpoints, write_photo
from upsample_app import segment
from upsample_app.console import seg_main
from upsample_app.limits import AppInputError, UploadLimits
from upsample_app.models import LoadedModels, ModelSource, load_models


def seg_predict(tmp_path: Path, photo: Path, *flags: str) -> Path:
    """Run ``seg predict`` on a folder holding only ``photo``; its output folder."""
    folder = tmp_path / f"in_{photo.stem}"
    folder.mkdir(exist_ok=True)
    (folder / photo.name).write_bytes(photo.read_bytes())
    output = tmp_path / f"out_{photo.stem}_{len(list(tmp_path.iterdir()))}"
    args = ["predict", "--input", str(folder), "--output", str(output), "--no_progress", *flags]
    with pytest.raises(SystemExit) as status:
        seg_main(args)
    assert status.value.code == 0
    return output


def jpeg_bytes(image: Image.Image) -> bytes:
    stream = io.BytesIO()
    image.save(stream, format="JPEG", quality=90)  # seg predict's overlay encoding
    return stream.getvalue()


def check_same_as_seg_predict(
    model: segment.SegmenterModel, shown: segment.Segmentation, written: Path
) -> None:
    name = shown.name
    mask = np.asarray(Image.open(written / "masks" / f"{name}.png"))
    np.testing.assert_array_equal(shown.mask, mask)
    overlay = segment.overlay(model, shown)  # the default opacity: seg predict's
    assert jpeg_bytes(overlay) == (written / "overlays" / f"{name}.jpg").read_bytes()


def test_a_photo_gives_seg_predicts_mask_overlay_and_table(
    models: LoadedModels, checkpoints: Checkpoints, tmp_path: Path, limits: UploadLimits
) -> None:
    photo = write_photo(tmp_path / "street.jpg", size=(90, 130))
    model = models.segmenter
    shown = segment.segment_photo(model, photo, limits)
    written = seg_predict(tmp_path, photo, "--ckpt_path", str(checkpoints.segmenter))
    check_same_as_seg_predict(model, shown, written)
    assert len(np.unique(shown.mask)) >= 2, "the taught segmenter sees several classes"
    overlay = np.asarray(segment.overlay(model, shown))
    assert (overlay != shown.image).any(axis=-1).all(), "no class is black: every pixel tinted"
    # the table: every class the mask shows, its pixel count and share
    rows = segment.class_shares(model, [shown])
    counts = np.bincount(shown.mask.ravel(), minlength=3)
    assert [row[:3] for row in rows] == [
        ["street", CLASS_NAMES[k], int(counts[k])] for k in np.flatnonzero(counts)
    ]
    assert sum(row[3] for row in rows) == pytest.approx(100.0, abs=0.02)
    assert segment.legend(model) == [
        (name, tuple(colour)) for name, colour in zip(CLASS_NAMES, PALETTE, strict=True)
    ]
    # the downloads are seg predict's files, byte for byte
    files = segment.write_outputs(model, [shown], tmp_path / "downloads")
    assert [p.relative_to(tmp_path / "downloads").as_posix() for p in files] == [
        "masks/street.png",
        "overlays/street.jpg",
    ]
    for path in files:
        assert path.read_bytes() == (written / path.relative_to(files[0].parents[1])).read_bytes()


def test_opacity_blends_from_the_photo_to_the_colours(
    models: LoadedModels, tmp_path: Path, limits: UploadLimits
) -> None:
    model = models.segmenter
    shown = segment.segment_photo(model, write_photo(tmp_path / "p.png", (30, 40)), limits)
    np.testing.assert_array_equal(np.asarray(segment.overlay(model, shown, 0.0)), shown.image)
    colours = np.asarray(PALETTE, np.uint8)[shown.mask]
    np.testing.assert_array_equal(np.asarray(segment.overlay(model, shown, 1.0)), colours)
    with pytest.raises(AppInputError, match="opacity 1.5"):
        segment.overlay(model, shown, 1.5)


def test_large_photos_are_tiled_and_tta_flips_as_seg_predict_does(
    checkpoints: Checkpoints, tmp_path: Path, limits: UploadLimits
) -> None:
    photo = write_photo(tmp_path / "large.png", size=(150, 230), seed=3)
    tiled = load_models(
        segmenter=ModelSource.of(checkpoints.segmenter), tile_size=64, overlap=16
    ).segmenter
    assert tiled.predictor(False).tiling.count(150, 230) > 1
    for tta, flags in ((False, []), (True, ["--tta"])):
        shown = segment.segment_photo(tiled, photo, limits, tta=tta)
        written = seg_predict(
            tmp_path,
            photo,
            "--ckpt_path",
            str(checkpoints.segmenter),
            "--tile_size=64",
            "--overlap=16",
            *flags,
        )
        check_same_as_seg_predict(tiled, shown, written)
    whole = load_models(segmenter=ModelSource.of(checkpoints.segmenter)).segmenter
    assert whole.predictor(True).tta and not whole.predictor(False).tta


def test_the_onnx_runtime_engine_shows_what_seg_predict_writes_with_it(
    checkpoints: Checkpoints, tmp_path: Path, limits: UploadLimits
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model_file = tmp_path / "model.onnx"
    with pytest.raises(SystemExit) as status:
        seg_main(["export", "--ckpt_path", str(checkpoints.segmenter), "--output", str(model_file)])
    assert status.value.code == 0
    model = load_models(segmenter=ModelSource.of(model_file)).segmenter
    assert model.source.engine == "onnxruntime"
    assert model.class_names == CLASS_NAMES and model.palette == [tuple(c) for c in PALETTE]
    photo = write_photo(tmp_path / "onnx.png", size=(70, 90), seed=5)
    shown = segment.segment_photo(model, photo, limits)
    engine = ["--engine", "onnxruntime", "--model", str(model_file)]
    check_same_as_seg_predict(model, shown, seg_predict(tmp_path, photo, *engine))


def test_several_photos_are_named_as_seg_predict_names_them(
    models: LoadedModels, tmp_path: Path, limits: UploadLimits
) -> None:
    photos = [
        write_photo(tmp_path / "a" / "x.png", (20, 30)),
        write_photo(tmp_path / "b" / "x.jpg", (25, 20), seed=1),
        tmp_path / "broken.png",
        write_photo(tmp_path / "y.png", (16, 16), seed=2),
    ]
    (tmp_path / "broken.png").write_bytes(photos[0].read_bytes()[:200])
    batch = segment.segment_photos(models.segmenter, photos, limits)
    assert [s.name for s in batch.done] == ["x_png", "x_jpg", "y"]
    assert [s.mask.shape for s in batch.done] == [(20, 30), (25, 20), (16, 16)]
    assert len(batch.skipped) == 1 and batch.skipped[0].startswith("broken.png: cannot decode")
    photo_column = [row[0] for row in segment.class_shares(models.segmenter, batch.done)]
    assert sorted(set(photo_column)) == ["x_jpg", "x_png", "y"]
    with pytest.raises(AppInputError, match="no photo"):
        segment.segment_photos(models.segmenter, [], limits)
    with pytest.raises(AppInputError, match="broken.png: cannot decode"):
        segment.segment_photos(models.segmenter, [tmp_path / "broken.png"], limits)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "notes.txt", "notes.txt: not a recognised image format"),
        (lambda d: d / "cut.png", "cut.png: cannot decode"),
        (lambda d: d / "huge.png", r"huge.png: 5000x4000 pixels \(20.0 megapixels\); the app "),
        (lambda d: d / "big.png", r"big.png: .* MB; the app takes files of at most 0.01 MB"),
        (lambda d: np.zeros((8, 8, 2), np.uint8), r"shape \(8, 8, 2\) \(2 channels\)"),
        (lambda d: np.zeros((8, 8, 5), np.uint8), "expected 1, 3 or 4 channels"),
        (lambda d: np.zeros((8, 8), np.float32), "float32 pixels; expected 8-bit"),
    ],
)
def test_bad_inputs_give_the_pages_message(
    models: LoadedModels, tmp_path: Path, make, message: str
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    photo = write_photo(tmp_path / "ok.png", (40, 40))
    (tmp_path / "cut.png").write_bytes(photo.read_bytes()[:300])
    # a bomb: 20 megapixels that compress to a few kilobytes; refused from its header
    Image.new("L", (5000, 4000)).save(tmp_path / "huge.png")
    write_photo(tmp_path / "big.png", (200, 200))
    limits = UploadLimits(max_mb=0.01 if "0.01 MB" in message else 20.0, max_pixels=12_000_000)
    with pytest.raises(AppInputError, match=message):
        segment.segment_photo(models.segmenter, make(tmp_path), limits)
