"""The Translate tab: a label map (painted with the class colours, uploaded, or a CamVid test
map) or an RGB image in, the translator's photo out; with a segmenter loaded and a label-map
translator, also what the segmenter reads in the photo and its FCN-score against the map."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from upsample_app import segment as seg
from upsample_app import translate as tr
from upsample_app.examples import camvid_test
from upsample_app.limits import AppInputError
from upsample_app.models import SegmenterModel, TranslatorModel
from upsample_app.tabs.common import (
    IMAGE_BUTTONS,
    IMAGE_HEIGHT,
    MODEL_WORKER,
    AppSettings,
    legend_html,
    shown_in_page,
)
from upsample_app.tabs.downloads import request_folder, save_png


@dataclass(frozen=True)
class TranslateInputs:
    """The tab's inputs: the editor holding the map, the map's name (``current``), the upload,
    the CamVid test maps (``None`` without them), the dropout seed and the button."""

    editor: gr.ImageEditor
    current: gr.State
    upload: gr.File
    camvid: gr.Dropdown | None
    seed: gr.Number
    button: gr.Button


@dataclass(frozen=True)
class TranslateOutputs:
    """The tab's outputs: the photo and its file, then (``scores``) what the segmenter reads
    in it, the FCN-score's summary and its per-class table, or nothing."""

    photo: gr.Image
    photo_file: gr.File
    scores: list[Any]

    def all(self) -> list[Any]:
        """The outputs in the order the translate handler returns them."""
        return [self.photo, self.photo_file, *self.scores]


def translate_tab(
    model: TranslatorModel, segmenter: SegmenterModel | None, settings: AppSettings
) -> None:
    """Lay out the Translate tab of ``model`` (inside a ``gr.Tab``), scoring its photos with
    ``segmenter`` when there is one, and connect its handlers: ``translate`` (the button) and
    ``load_label_map`` / ``load_camvid_map`` (a map into the editor, then translated)."""
    labels = model.spec.kind == "labels"
    names = tr.class_names(model, segmenter)
    colours = [*model.spec.palette, model.spec.void_colour] if labels else []
    _, camvid_maps = camvid_test(settings.camvid_root) if labels else ([], [])
    current = gr.State(tr.blank_label_map(model).name)
    gr.Markdown(_introduction(model, labels, bool(camvid_maps)))
    with gr.Row():
        with gr.Column(scale=1):
            inputs = _inputs(model, current, names, colours, camvid_maps)
        with gr.Column(scale=1):
            outputs = _outputs(segmenter if labels else None)
    load, run = _handlers(model, segmenter, settings, bool(outputs.scores))
    _connect(inputs, outputs, load, run)


def _introduction(model: TranslatorModel, labels: bool, camvid: bool) -> str:
    """The tab's first line: the translator and what it takes."""
    spec = model.spec
    return f"Translator: `{model.source.path.name}`, {spec.image_size[1]}x{spec.image_size[0]} " + (
        "photos from label maps. Paint with the class colours (void is black), upload a "
        "label map (class indices, or a picture in these colours)"
        + (", or start from a CamVid test label map" if camvid else "")
        + "; the photo comes at the map's size."
        if labels
        else "photos from RGB images: draw or upload one."
    )


def _editor_value(picture: np.ndarray) -> dict[str, Any]:
    """The editor's value showing ``picture`` (uint8 (H, W, 3)) with nothing painted on it."""
    return {"background": picture, "layers": [], "composite": picture}


def _hex(colour: Sequence[int]) -> str:
    """``#rrggbb`` of an (r, g, b) colour, as the editor's brushes take it."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in colour))


def _editor(model: TranslatorModel, colours: list[Sequence[int]], labels: bool) -> gr.ImageEditor:
    """The editor, showing the blank map; a label map's brushes are the class ``colours``."""
    blank = tr.blank_label_map(model)
    height, width = blank.size
    return gr.ImageEditor(
        value=_editor_value(tr.picture(model, blank)),
        image_mode="RGB",
        type="numpy",
        format="png",
        sources=(),
        transforms=(),
        layers=False,
        canvas_size=(width, height),
        brush=gr.Brush(
            colors=[_hex(c) for c in colours] or None,
            default_color=_hex(colours[0]) if colours else None,
            color_mode="fixed" if labels else "defaults",
            default_size=max(2, width // 40),
        ),
        label="Label map" if labels else "Input image",
        elem_id="translate-editor",
    )


def _inputs(
    model: TranslatorModel,
    current: gr.State,
    names: list[str],
    colours: list[Sequence[int]],
    camvid_maps: list[Path],
) -> TranslateInputs:
    """The editor (with the classes' ``names`` and ``colours`` for a label map), the upload,
    the CamVid test maps (when there are), the seed and the button."""
    labels = model.spec.kind == "labels"
    editor = _editor(model, colours, labels)
    if labels:
        gr.HTML(legend_html([*names, "void"], colours))
    upload = gr.File(
        label="Upload a label map" if labels else "Upload an image",
        file_types=["image"],
        elem_id="translate-upload",
    )
    camvid = None
    if camvid_maps:
        camvid = gr.Dropdown(
            choices=[(path.name, str(path)) for path in camvid_maps],
            value=None,
            label="CamVid test label map",
            elem_id="translate-camvid",
        )
    seed = gr.Number(label="Seed (dropout noise)", value=0, precision=0, minimum=0)
    button = gr.Button("Translate", variant="primary", elem_id="translate-button")
    return TranslateInputs(editor, current, upload, camvid, seed, button)


def _outputs(segmenter: SegmenterModel | None) -> TranslateOutputs:
    """The photo and its file; with ``segmenter``, its reading of the photo and the score."""
    photo = gr.Image(
        label="Photo",
        format="png",
        height=IMAGE_HEIGHT,
        buttons=IMAGE_BUTTONS,
        interactive=False,
        elem_id="translate-photo",
    )
    photo_file = gr.File(label="The photo (PNG)", interactive=False)
    if segmenter is None:
        return TranslateOutputs(photo, photo_file, [])
    reading = gr.Image(
        label=f"What the segmenter ({segmenter.source.path.name}) reads in it",
        format="png",
        height=IMAGE_HEIGHT,
        buttons=IMAGE_BUTTONS,
        interactive=False,
    )
    score = gr.Markdown()
    score_table = gr.Dataframe(
        headers=list(tr.SCORE_COLUMNS),
        label="Per-class IoU against the painted map (FCN-score)",
        interactive=False,
    )
    return TranslateOutputs(photo, photo_file, [reading, score, score_table])


def _handlers(
    model: TranslatorModel,
    segmenter: SegmenterModel | None,
    settings: AppSettings,
    scores: bool,
) -> tuple[Callable[..., tuple], Callable[..., tuple]]:
    """The tab's handlers: ``load`` (a map's file into the editor) and ``run`` (the editor's
    map to a photo, with the segmenter's score when ``scores``)."""

    def load(path: str | None) -> tuple:
        if not path:
            return gr.update(), gr.update()
        loaded = tr.read_label_map(model, path, settings.limits)
        return _editor_value(tr.picture(model, loaded)), loaded.name

    def run(value: dict[str, Any] | None, name: str, seed_value: float) -> tuple:
        composite = (value or {}).get("composite")
        if composite is None:
            raise AppInputError("nothing to translate: paint or upload a label map")
        label_map = tr.read_label_map(model, composite, settings.limits, name, painted=True)
        result = tr.translate(model, label_map, seed_value)
        folder = request_folder(settings.work_dir)
        path = save_png(result.photo, folder, f"{Path(label_map.name).stem}_photo")
        outputs: list[Any] = [path, path]
        if scores and segmenter is not None:
            outputs += _scored(segmenter, model, result.photo, label_map, folder)
        return tuple(outputs)

    return load, run


def _scored(
    segmenter: SegmenterModel,
    model: TranslatorModel,
    picture: np.ndarray,
    label_map: tr.LabelMap,
    folder: Path,
) -> list[Any]:
    """The score outputs of a translated ``picture`` (uint8 (H, W, 3)): the segmenter's reading
    as an overlay file, the summary and the per-class rows (a message where it cannot score)."""
    try:
        scored = tr.fcn_score(segmenter, model, picture, label_map)
    except AppInputError as error:
        return [None, str(error), None]
    overlay = seg.overlay(segmenter, seg.Segmentation(label_map.name, picture, scored.reading))
    summary = (
        f"Mean IoU **{scored.mean_iou:.1f}%** over the {len(scored.rows)} classes painted or "
        f"read, pixel accuracy {scored.pixel_accuracy:.1f}% (void left out)."
        if scored.rows
        else "The map is all void: nothing to score."
    )
    return [save_png(overlay, folder, "reading"), summary, scored.rows]


def _connect(
    inputs: TranslateInputs,
    outputs: TranslateOutputs,
    load: Callable[..., tuple],
    run: Callable[..., tuple],
) -> None:
    """Connect the button to ``run``, and each map source to ``load`` followed by ``run``."""
    translate_inputs = [inputs.editor, inputs.current, inputs.seed]
    inputs.button.click(
        shown_in_page(run),
        translate_inputs,
        outputs.all(),
        api_name="translate",
        concurrency_id=MODEL_WORKER,
    )
    sources = [(inputs.upload.upload, inputs.upload, "load_label_map")]
    if inputs.camvid is not None:
        sources.append((inputs.camvid.input, inputs.camvid, "load_camvid_map"))
    editor_outputs = [inputs.editor, inputs.current]
    for event, source, name in sources:
        loaded = event(shown_in_page(load), [source], editor_outputs, api_name=name)
        loaded.success(
            shown_in_page(run),
            translate_inputs,
            outputs.all(),
            api_visibility="private",
            concurrency_id=MODEL_WORKER,
        )
