"""The Translate tab as plain functions: a label map (file, painted canvas or colour picture) in,
a photo of the map's size out, ``gan translate``'s photo for that file and seed at the training
resolution; the segmenter's reading and the FCN-score of one image; bad maps give the page's
message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.app.conftest import TRANSLATOR_SIZE, VOID, Checkpoints, write_label_map
from upsample_app import translate as tr
from upsample_app.console import gan_main
from upsample_app.limits import AppInputError, UploadLimits
from upsample_app.models import LoadedModels


def gan_translate(tmp_path: Path, label_map: Path, checkpoint: Path, seed: int) -> np.ndarray:
    """``gan translate``'s photo of ``label_map`` (alone in its folder)."""
    folder = tmp_path / "maps"
    folder.mkdir(exist_ok=True)
    (folder / label_map.name).write_bytes(label_map.read_bytes())
    output = tmp_path / f"photos_{seed}"
    args = ["translate", "--ckpt_path", str(checkpoint), "--input", str(folder)]
    with pytest.raises(SystemExit) as status:
        gan_main([*args, "--output", str(output), "--seed", str(seed)])
    assert status.value.code == 0
    return np.asarray(Image.open(output / label_map.with_suffix(".png").name))


def test_a_label_map_gives_a_photo_of_its_size(
    models: LoadedModels, checkpoints: Checkpoints, tmp_path: Path, limits: UploadLimits
) -> None:
    model = models.translator
    path = write_label_map(tmp_path / "street.png", size=(40, 56))
    label_map = tr.read_label_map(model, path, limits)
    assert label_map.name == "street.png" and label_map.size == (40, 56)
    shown = tr.translate(model, label_map, seed=3)
    assert shown.photo.shape == (40, 56, 3) and shown.photo.dtype == np.uint8
    assert shown.native.shape == (*TRANSLATOR_SIZE, 3)
    np.testing.assert_array_equal(
        shown.native, gan_translate(tmp_path, path, checkpoints.translator, seed=3)
    )
    again = tr.translate(model, label_map, seed=3)
    np.testing.assert_array_equal(again.photo, shown.photo)
    other = tr.translate(model, label_map, seed=4)
    assert not np.array_equal(other.native, shown.native), "the seed drives the dropout noise"


def test_a_painted_canvas_reads_as_the_nearest_class_colours(
    models: LoadedModels, tmp_path: Path, limits: UploadLimits
) -> None:
    model = models.translator
    values = np.asarray(Image.open(write_label_map(tmp_path / "m.png", (32, 48)))).astype(np.int64)
    label_map = tr.LabelMap("m.png", values)
    picture = tr.picture(model, label_map)
    assert picture.shape == (32, 48, 3)
    # an antialiased brush edge: colours a little off the palette still read as their class
    painted = picture.astype(np.int16)
    painted[::3] += 9
    painted = painted.clip(0, 255).astype(np.uint8)
    read = tr.read_label_map(model, painted, limits, "m.png", painted=True)
    np.testing.assert_array_equal(read.values, values)
    # the same picture uploaded as a file
    Image.fromarray(picture).save(tmp_path / "colours.png")
    uploaded = tr.read_label_map(model, tmp_path / "colours.png", limits)
    np.testing.assert_array_equal(uploaded.values, values)
    # a blank canvas is void at four times the training resolution
    blank = tr.blank_label_map(model)
    assert blank.size == (4 * TRANSLATOR_SIZE[0], 4 * TRANSLATOR_SIZE[1])
    assert (blank.values == VOID).all()
    assert (tr.picture(model, blank) == 0).all()  # void is black


def test_the_segmenters_reading_is_scored_against_the_map(
    models: LoadedModels, tmp_path: Path, limits: UploadLimits
) -> None:
    label_map = tr.read_label_map(
        models.translator, write_label_map(tmp_path / "m.png", (40, 56)), limits
    )
    photo = tr.translate(models.translator, label_map).photo
    scored = tr.fcn_score(models.segmenter, models.translator, photo, label_map)
    assert scored.reading.shape == (40, 56)
    # the reading is what the Segment tab shows for that photo
    pixels = photo.transpose(2, 0, 1).copy()
    expected = models.segmenter.predictor(False).predict_image(torch.from_numpy(pixels))
    np.testing.assert_array_equal(scored.reading, expected.numpy())
    # IoU from one confusion matrix, void left out
    target = label_map.values
    counted = target != VOID
    names = [row[0] for row in scored.rows]
    for row in scored.rows:
        k = models.segmenter.class_names.index(row[0])
        truth, read = (target == k) & counted, (scored.reading == k) & counted
        union = (truth | read).sum()
        assert row[3] == pytest.approx(round(100 * (truth & read).sum() / union, 1))
        assert row[1] == pytest.approx(round(100 * truth.sum() / counted.sum(), 2))
    assert len(names) >= 3
    accuracy = 100 * (scored.reading[counted] == target[counted]).mean()
    assert scored.pixel_accuracy == pytest.approx(round(accuracy, 1))
    assert scored.mean_iou == pytest.approx(np.mean([row[3] for row in scored.rows]), abs=0.11)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "notes.txt", "notes.txt: not a recognised image format"),
        (lambda d: d / "class7.png", r"class7.png: label values 7 are neither classes 0..2"),
        (lambda d: d / "grey_alpha.png", r"grey_alpha.png: a LA image of 2 channels"),
        (lambda d: d / "cmyk.jpg", r"cmyk.jpg: a CMYK image of 4 channels"),
        (lambda d: d / "photo.png", r"photo.png: \d+% of the pixels are none of the 3 class"),
        (lambda d: d / "huge.png", r"huge.png: 4000x4000 pixels \(16.0 megapixels\)"),
        (lambda d: np.zeros((8, 8, 2), np.uint8), r"\(2 channels\); expected 1, 3 or 4"),
    ],
)
def test_bad_label_maps_give_the_pages_message(
    models: LoadedModels, tmp_path: Path, limits: UploadLimits, make, message: str
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    Image.fromarray(np.full((6, 6), 7, np.uint8)).save(tmp_path / "class7.png")
    Image.new("LA", (6, 6)).save(tmp_path / "grey_alpha.png")
    Image.new("CMYK", (6, 6), (0, 50, 100, 0)).save(tmp_path / "cmyk.jpg")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    Image.new("L", (4000, 4000)).save(tmp_path / "huge.png")
    with pytest.raises(AppInputError, match=message):
        tr.read_label_map(models.translator, make(tmp_path), limits)


def test_a_segmenter_of_other_classes_is_not_scored(
    models: LoadedModels, tmp_path: Path, limits: UploadLimits
) -> None:
    from dataclasses import replace

    other = replace(models.segmenter, class_names=["a", "b"])
    label_map = tr.blank_label_map(models.translator, scale=1)
    photo = tr.translate(models.translator, label_map).photo
    with pytest.raises(AppInputError, match="has 2 classes and the translator .* 3"):
        tr.fcn_score(other, models.translator, photo, label_map)
    with pytest.raises(AppInputError, match="seed -2: expected a whole number >= 0"):
        tr.translate(models.translator, label_map, seed=-2)


def test_the_classes_are_named_by_the_segmenter_or_camvid(models: LoadedModels) -> None:
    from dataclasses import replace

    from gan.translation.paired_data import camvid_spec
    from upsample.core.camvid import CAMVID_CLASSES

    assert tr.class_names(models.translator, models.segmenter) == ["sky", "road", "car"]
    assert tr.class_names(models.translator) == ["class_0", "class_1", "class_2"]
    camvid = replace(models.translator, spec=camvid_spec([96, 128]))
    assert tr.class_names(camvid, models.segmenter) == list(CAMVID_CLASSES)


def test_an_oasis_translator_serves_the_tab_as_pix2pix_does(
    tmp_path: Path, limits: UploadLimits
) -> None:
    """An OASIS checkpoint in the Translate tab: ``gan translate``'s photo for the same file and
    seed (its 3D noise seeded as pix2pix's dropout is), another photo for another seed."""
    from gan.translation.oasis import OASISModule
    from gan.translation.paired_data import InputSpec
    from upsample.core.checkpoint import save_module_checkpoint
    from upsample_app.models import ModelSource, load_models

    torch.manual_seed(0)
    spec = InputSpec("labels", TRANSLATOR_SIZE, num_classes=3, void_values=(VOID,))
    module = OASISModule(spec.to_dict(), ngf=2, num_blocks=3, noise_channels=2, spade_hidden=4)
    checkpoint = save_module_checkpoint(module, tmp_path / "oasis.ckpt")
    model = load_models(translator=ModelSource.of(checkpoint)).translator
    path = write_label_map(tmp_path / "street.png", size=(40, 56))
    shown = tr.translate(model, tr.read_label_map(model, path, limits), seed=3)
    assert shown.photo.shape == (40, 56, 3) and shown.native.shape == (*TRANSLATOR_SIZE, 3)
    np.testing.assert_array_equal(shown.native, gan_translate(tmp_path, path, checkpoint, seed=3))
    other = tr.translate(model, tr.read_label_map(model, path, limits), seed=4)
    assert not np.array_equal(other.native, shown.native), "the seed drives the 3D noise"
