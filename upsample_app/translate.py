"""The Translate tab as plain functions: a label map (painted in the classes' colours, uploaded,
or a dataset's) in, the translator's photo of the map's size out; with a segmenter of the same
classes, its reading of that photo and the per-class IoU against the map (the FCN-score of one
image, as ``bench.pix2pix_camvid`` computes it over a test set).

The photo is ``gan translate``'s for the same map, seed and file name (the input encoded by the
checkpoint's ``InputSpec``, the dropout noise seeded by ``gan.translation.translate.file_seed``), at
the training resolution, then resized bilinearly to the map's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan.fid import to_uint8
from gan.translation.paired_data import InputSpec, LabelMapError, draws_camvid
from gan.translation.translate import file_seed
from seg.metrics import scores_from_confusion_matrix
from upsample.core.camvid import CAMVID_CLASSES
from upsample.core.seeding import seeded
from upsample_app.limits import (
    AppInputError,
    Upload,
    UploadLimits,
    read_label_upload,
    read_photo,
    upload_name,
)
from upsample_app.models import SegmenterModel, TranslatorModel

#: an uploaded colour map whose pixels lie farther than this from every class colour (RGB
#: distance) is not a map in these colours: a photo given by mistake, say.
COLOUR_TOLERANCE = 48.0
#: ... when more than this share of its pixels do (antialiased brush edges fall in between).
MAX_OFF_COLOUR_SHARE = 0.1


@dataclass
class LabelMap:
    """A translator's input: its ``name`` (file name; it seeds the dropout noise as in ``gan
    translate``) and its ``values``: raw label values int64 (H, W) (classes 0..K-1, void as the
    spec's first void value) for a label-map translator, the picture uint8 (H, W, 3) for one
    that translates RGB images (``A/`` -> ``B/`` folders)."""

    name: str
    values: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.values.shape[0]), int(self.values.shape[1])


def class_colours(spec: InputSpec) -> np.ndarray:
    """(K + 1, 3) uint8: the colour of each class, then void's."""
    return np.asarray([*spec.palette, spec.void_colour], dtype=np.uint8)


def class_names(model: TranslatorModel, segmenter: SegmenterModel | None = None) -> list[str]:
    """The names of the translator's classes: the segmenter's when it has as many, CamVid's
    when the translator draws CamVid's colours, else ``class_<i>`` (a checkpoint records its
    classes' colours, not their names)."""
    spec = model.spec
    if segmenter is not None and segmenter.num_classes == spec.num_classes:
        return list(segmenter.class_names)
    if draws_camvid(spec):
        return list(CAMVID_CLASSES)
    return [f"class_{index}" for index in range(spec.num_classes)]


def _values_from_colours(
    spec: InputSpec, picture: np.ndarray, name: str, strict: bool
) -> np.ndarray:
    """Raw label values (H, W) of a picture (H, W, 3) in the classes' colours: each pixel takes
    the class of the nearest colour (void's colour gives void). ``strict``: refuse a picture
    whose pixels are mostly far from every class colour."""
    colours = class_colours(spec).astype(np.int32)
    pixels = picture.reshape(-1, 3).astype(np.int32)
    # Distances to K + 1 colours, in chunks so that a large map needs little memory.
    nearest = np.empty(len(pixels), dtype=np.int64)
    far = 0
    for start in range(0, len(pixels), 1 << 18):
        chunk = pixels[start : start + (1 << 18)]
        distance = ((chunk[:, None, :] - colours[None]) ** 2).sum(-1)
        nearest[start : start + len(chunk)] = distance.argmin(1)
        far += int((distance.min(1) > COLOUR_TOLERANCE**2).sum())
    if strict and far > MAX_OFF_COLOUR_SHARE * len(pixels):
        raise AppInputError(
            f"{name}: {100 * far / len(pixels):.0f}% of the pixels are none of the "
            f"{spec.num_classes} class colours (or void's); expected class indices (a "
            "single-channel or palette PNG) or a picture in the legend's colours"
        )
    void = spec.void_values[0]
    values = np.where(nearest == spec.num_classes, void, nearest)
    return values.reshape(picture.shape[:2])


def read_label_map(
    model: TranslatorModel,
    source: Upload,
    limits: UploadLimits,
    name: str | None = None,
    painted: bool = False,
) -> LabelMap:
    """A label map from an upload: class indices (single-channel or palette file, as ``gan
    translate`` reads it) or a picture in the classes' colours; ``painted``: a canvas painted
    with the class colours as brushes (every pixel takes the nearest class colour).

    Raises:
        AppInputError: naming the upload, when it is not an image, too large, of a channel count
            that is not a label map's, has values that are neither a class nor void, or (not
            ``painted``) is mostly in other colours than the classes'.
    """
    spec = model.spec
    name = name or upload_name(source, "painted.png")
    if spec.kind == "rgb":
        return LabelMap(name, read_photo(source, limits, name))
    raw = read_label_upload(source, limits, name)
    if raw.ndim == 3:
        raw = _values_from_colours(spec, raw, name, strict=not painted)
    try:
        spec.class_indices(raw, name)  # values that are neither a class nor void
    except LabelMapError as error:
        raise AppInputError(str(error)) from error
    return LabelMap(name, raw.astype(np.int64))


def picture(model: TranslatorModel, label_map: LabelMap) -> np.ndarray:
    """The map in the classes' colours (void in void's colour), uint8 (H, W, 3): what the canvas
    shows and the brushes paint in (an RGB translator's input as it is)."""
    if model.spec.kind == "rgb":
        return label_map.values
    indices = model.spec.class_indices(label_map.values, label_map.name)
    return class_colours(model.spec)[indices]


def blank_label_map(model: TranslatorModel, scale: int = 4) -> LabelMap:
    """An all-void map of ``scale`` times the training resolution (white for an RGB
    translator): a canvas to paint on."""
    height, width = model.spec.image_size[0] * scale, model.spec.image_size[1] * scale
    if model.spec.kind == "rgb":
        return LabelMap("painted.png", np.full((height, width, 3), 255, np.uint8))
    void = model.spec.void_values[0]
    return LabelMap("painted.png", np.full((height, width), void, np.int64))


@dataclass
class Translation:
    """The translator's photo of a map: ``native`` at the training resolution (``gan
    translate``'s file) and ``photo`` at the map's size, both uint8 (H, W, 3)."""

    native: np.ndarray
    photo: np.ndarray


@torch.no_grad()
def translate(model: TranslatorModel, label_map: LabelMap, seed: float | int = 0) -> Translation:
    """Paint the photo of ``label_map`` with the dropout noise of ``seed`` and the map's name.

    Raises:
        AppInputError: a seed that is not a whole number >= 0, or invalid label values.
    """
    if seed is None or float(seed) != int(seed) or int(seed) < 0:
        raise AppInputError(f"seed {seed}: expected a whole number >= 0")
    try:
        if model.spec.kind == "rgb":
            pixels = torch.from_numpy(np.ascontiguousarray(label_map.values.transpose(2, 0, 1)))
            inputs = model.spec.encode_image(pixels)
        else:
            inputs = model.spec.encode_label_values(label_map.values, label_map.name)
    except LabelMapError as error:
        raise AppInputError(str(error)) from error
    network = model.network.eval()
    with seeded(file_seed(int(seed), Path(label_map.name)), torch.device("cpu")):
        output = network(inputs[None]).float()
    native = to_uint8(output)  # (1, 3, h, w)
    height, width = label_map.size
    resized = F.interpolate(
        native.float() / 255.0, size=(height, width), mode="bilinear", align_corners=False
    )
    photo = resized.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return Translation(_hwc(native[0]), _hwc(photo[0]))


def _hwc(image: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


@dataclass
class FcnScore:
    """A segmenter's reading of a translated photo against the painted map: the ``reading``
    (class indices, uint8 (H, W)), per-class ``rows`` (class, painted %, read %, IoU %) for the
    classes in either, ``mean_iou`` and ``pixel_accuracy`` in percent (void pixels left out)."""

    reading: np.ndarray
    rows: list[list[str | float]]
    mean_iou: float
    pixel_accuracy: float


#: the columns of ``FcnScore.rows``.
SCORE_COLUMNS = ("class", "painted %", "read %", "IoU %")


def fcn_score(
    segmenter: SegmenterModel, translator: TranslatorModel, photo: np.ndarray, label_map: LabelMap
) -> FcnScore:
    """Segment ``photo`` uint8 (H, W, 3) as ``seg predict`` does and score the reading against
    ``label_map`` (same size) with one confusion matrix, void left out.

    Raises:
        AppInputError: the segmenter's classes are not the translator's (their number differs).
    """
    spec = translator.spec
    if spec.kind != "labels":
        raise AppInputError(
            f"{translator.source.path.name} translates RGB images: there is no label map to "
            "score a segmenter's reading against"
        )
    if segmenter.num_classes != spec.num_classes:
        raise AppInputError(
            f"the segmenter ({segmenter.source.path.name}) has {segmenter.num_classes} classes "
            f"and the translator ({translator.source.path.name}) {spec.num_classes}: the "
            "FCN-score needs a segmenter of the translator's classes"
        )
    pixels = torch.from_numpy(np.ascontiguousarray(photo.transpose(2, 0, 1)))
    reading = segmenter.predictor(False).predict_image(pixels).numpy()
    target = spec.class_indices(label_map.values, label_map.name)
    counted = target != spec.num_classes
    k = spec.num_classes
    confusion = np.bincount(
        target[counted] * k + reading[counted].astype(np.int64), minlength=k * k
    ).reshape(k, k)
    scores = scores_from_confusion_matrix(torch.from_numpy(confusion))
    total = max(1, int(counted.sum()))
    rows: list[list[str | float]] = []
    for index in range(k):
        if not bool(scores.present[index]):
            continue
        rows.append(
            [
                segmenter.class_names[index],
                round(100.0 * confusion[index].sum() / total, 2),
                round(100.0 * confusion[:, index].sum() / total, 2),
                round(100.0 * float(scores.per_class_iou[index]), 1),
            ]
        )
    return FcnScore(
        reading,
        rows,
        round(100.0 * scores.mean_iou, 1),
        round(100.0 * scores.pixel_accuracy, 1),
    )


def to_image(array: np.ndarray) -> Image.Image:
    """uint8 (H, W, 3) -> PIL RGB image."""
    return Image.fromarray(array, "RGB")
