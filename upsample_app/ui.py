"""The app's page: the tabs' plain functions (``upsample_app.segment``, ``upsample_app.generate``,
``upsample_app.translate``) laid out with Gradio. The only module of the toolkit that imports
Gradio.

Every handler turns an ``AppInputError`` (and any other failure) into a message in the page: a
bad upload never stops the server. Handlers that run a network share one worker
(``MODEL_WORKER``): requests wait in the bounded queue and the models run one request at a time.
"""

from __future__ import annotations

import functools
import html
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from seg.inference.outputs import OVERLAY_JPEG_QUALITY
from upsample_app import generate as gen
from upsample_app import segment as seg
from upsample_app import translate as tr
from upsample_app.examples import bundled_photos, camvid_test
from upsample_app.limits import AppInputError, UploadLimits
from upsample_app.models import GeneratorModel, LoadedModels, SegmenterModel, TranslatorModel

#: the one worker that runs the networks (a concurrency id shared by every such handler).
MODEL_WORKER = "models"
#: the height of the pages' pictures (CSS pixels) and their buttons (no share button).
IMAGE_HEIGHT = 360
IMAGE_BUTTONS = ["download", "fullscreen"]
#: sessions whose segmented photos stay in memory.
SESSIONS_KEPT = 32
#: request folders of downloads older than this are removed.
DOWNLOADS_KEPT_S = 3600.0
TITLE = "upsample-toolkit"
CSS = """
.pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 0.9em; }
.legend span.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 4px;
  vertical-align: -0.1em; border: 1px solid #8886; }
"""


@dataclass(frozen=True)
class AppSettings:
    """How the page behaves: upload ``limits``, the ``work_dir`` of example and download files
    (the caller creates and removes it) and where CamVid lies (``camvid_root``, optional)."""

    limits: UploadLimits
    work_dir: Path
    camvid_root: Path | None = None


def shown_in_page(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with its failures shown in the page: an ``AppInputError``'s message as it
    is, anything else as the exception's type and message (its traceback on stderr)."""

    @functools.wraps(function)
    def handler(*args: Any) -> Any:
        try:
            return function(*args)
        except AppInputError as error:
            raise gr.Error(str(error), print_exception=False) from error
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f"{type(error).__name__}: {error}", print_exception=False) from error

    return handler


def legend_html(names: Sequence[str], colours: Sequence[Sequence[int]]) -> str:
    """Colour swatches with class names, in class order."""
    items = "".join(
        f'<span><span class="swatch" style="background: rgb({r}, {g}, {b})"></span>'
        f"{html.escape(str(name))}</span>"
        for name, (r, g, b) in zip(names, colours, strict=True)
    )
    return f'<div class="legend">{items}</div>'


def _request_folder(work_dir: Path) -> Path:
    """A new folder for one request's downloads; folders older than ``DOWNLOADS_KEPT_S`` go."""
    downloads = work_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for old in downloads.iterdir():
        if time.time() - old.stat().st_mtime > DOWNLOADS_KEPT_S:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=downloads))


def _download_names(paths: list[Path]) -> list[str]:
    """``seg predict``'s files renamed for the page's list of downloads, which shows names only:
    ``masks/a.png`` -> ``a_mask.png``, ``overlays/a.jpg`` -> ``a_overlay.jpg``."""
    renamed = []
    for path in paths:
        kind = path.parent.name.removesuffix("s")
        target = path.parents[1] / f"{path.stem}_{kind}{path.suffix}"
        path.rename(target)
        renamed.append(str(target))
    return renamed


def _png(image: Image.Image | np.ndarray, folder: Path, name: str) -> str:
    """Save a picture for the page as ``folder/name.png`` with fast (level 1) compression and
    return its path: Gradio would encode it at level 6, which takes longer than the network on
    a photo (70-110 ms for 450x300); the pixels are the same."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    path = folder / f"{name}.png"
    picture.save(path, compress_level=1)
    return str(path)


def _jpeg(image: Image.Image, folder: Path, name: str) -> str:
    """Save an overlay for the page as ``folder/name.jpg`` with ``seg predict``'s overlay
    settings and return its path."""
    path = folder / f"{name}.jpg"
    image.save(path, quality=OVERLAY_JPEG_QUALITY)
    return str(path)


def _hex(colour: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in colour))


# ------------------------------------------------------------------------------------- Segment
def _segment_tab(model: SegmenterModel, settings: AppSettings, photos: list[Path]) -> None:
    segmentations = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(
                label="Photos",
                file_count="multiple",
                file_types=["image"],
                elem_id="segment-photos",
            )
            if photos:
                gr.Examples(
                    examples=[[[str(path)]] for path in photos],
                    inputs=[files],
                    label="Examples",
                    example_labels=[path.stem for path in photos],
                )
            tta = gr.Checkbox(label="Flip TTA (average with the mirrored photo)", value=False)
            gr.Markdown(
                f"Segmenter: `{model.source.path.name}` ({model.source.engine}); large photos "
                f"are tiled as `seg predict` tiles them."
            )
        with gr.Column(scale=2):
            gallery = gr.Gallery(
                label="Overlays (seg predict's overlay files)",
                format="png",
                columns=4,
                height=IMAGE_HEIGHT + 160,
                preview=True,
                object_fit="contain",
                buttons=IMAGE_BUTTONS,
                elem_id="segment-overlays",
            )
            opacity = gr.Slider(0.0, 1.0, value=seg.DEFAULT_OPACITY, step=0.05, label="Opacity")
            gr.HTML(legend_html(model.class_names, model.palette))
            table = gr.Dataframe(
                headers=list(seg.SHARE_COLUMNS),
                label="Pixel share per class",
                interactive=False,
                elem_id="segment-table",
            )
            downloads = gr.File(
                label="Masks (palette PNG) and overlays (JPEG), as seg predict writes them",
                file_count="multiple",
                interactive=False,
                elem_id="segment-downloads",
            )

    def run(paths: list[str] | None, flip: bool, alpha: float) -> tuple:
        if not paths:
            return [], [], None, None
        batch = seg.segment_photos(model, paths, settings.limits, tta=flip)
        for message in batch.skipped:
            gr.Warning(f"skipped {message}")
        done = batch.done
        folder = _request_folder(settings.work_dir)
        written = _download_names(seg.write_outputs(model, done, folder))
        if alpha == seg.DEFAULT_OPACITY:  # seg predict's overlay files, as they are
            overlays = list(zip(written[len(done) :], [s.name for s in done], strict=True))
        else:
            overlays = shown(done, alpha, folder)
        return done, overlays, seg.class_shares(model, done), written

    def shown(done: list[seg.Segmentation], alpha: float, folder: Path) -> list:
        # JPEG as seg predict's overlays: encoded in a millisecond where a PNG takes 20-110
        return [
            (_jpeg(seg.overlay(model, s, alpha), folder, f"{s.name}_{alpha:.2f}"), s.name)
            for s in done
        ]

    def blend(done: list[seg.Segmentation], alpha: float) -> list:
        return shown(done, alpha, _request_folder(settings.work_dir))

    gr.on(
        [files.change, tta.change],
        shown_in_page(run),
        [files, tta, opacity],
        [segmentations, gallery, table, downloads],
        api_name="segment",
        concurrency_id=MODEL_WORKER,
    )
    opacity.release(shown_in_page(blend), [segmentations, opacity], [gallery], api_name="blend")


# ------------------------------------------------------------------------------------ Generate
def _generate_tab(model: GeneratorModel, settings: AppSettings) -> None:
    gr.Markdown(
        f"Generator: `{model.source.path.name}` ({model.source.engine}), {model.image_size}x"
        f"{model.image_size} images. A seed and a count give the files `gan sample --seed S "
        "--num N` writes; the ends of a walk are `gan sample --num 1`'s image of each seed."
    )
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="gen-seed")
            count = gr.Slider(
                1, gen.MAX_COUNT, value=16, step=1, label="Images", elem_id="gen-count"
            )
            button = gr.Button("Generate", variant="primary", elem_id="gen-button")
        with gr.Column(scale=2):
            grid = gr.Image(
                label="grid.png",
                type="filepath",
                format="png",
                height=IMAGE_HEIGHT,
                buttons=IMAGE_BUTTONS,
                interactive=False,
                elem_id="gen-grid",
                elem_classes=["pixelated"],
            )
            files = gr.File(
                label="grid.png and samples/*.png (a zip, as gan sample lays them out)",
                interactive=False,
            )
    gr.Markdown("### Latent walk")
    with gr.Row():
        with gr.Column(scale=1):
            seed_a = gr.Number(label="Seed A", value=0, precision=0, minimum=0)
            seed_b = gr.Number(
                label="Seed B", value=1, precision=0, minimum=0, elem_id="gen-seed-b"
            )
            steps = gr.Slider(2, gen.MAX_STEPS, value=8, step=1, label="Images on the strip")
            position = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="A -> B")
        with gr.Column(scale=2, elem_id="gen-walk"):
            point = gr.Image(
                label="At the slider",
                format="png",
                height=IMAGE_HEIGHT // 2,
                buttons=IMAGE_BUTTONS,
                interactive=False,
                elem_classes=["pixelated"],
            )
            strip = gr.Image(
                label="From A to B",
                format="png",
                buttons=IMAGE_BUTTONS,
                interactive=False,
                elem_classes=["pixelated"],
            )

    def sample(seed_value: float, number: float) -> tuple[str, str]:
        samples = gen.generate(model, seed_value, number, _request_folder(settings.work_dir) / "s")
        return str(samples.grid), str(gen.archive(samples, f"samples_seed{int(seed_value)}"))

    def walk(a: float, b: float, at: float, points: float) -> tuple[Image.Image, Image.Image]:
        result = gen.walk(model, a, b, at, points)
        return result.image, result.strip

    button.click(
        shown_in_page(sample),
        [seed, count],
        [grid, files],
        api_name="generate",
        concurrency_id=MODEL_WORKER,
    )
    gr.on(
        [position.release, seed_a.submit, seed_b.submit, steps.release],
        shown_in_page(walk),
        [seed_a, seed_b, position, steps],
        [point, strip],
        api_name="walk",
        concurrency_id=MODEL_WORKER,
    )


# ----------------------------------------------------------------------------------- Translate
def _editor_value(picture: np.ndarray) -> dict[str, Any]:
    return {"background": picture, "layers": [], "composite": picture}


def _translate_tab(
    model: TranslatorModel, segmenter: SegmenterModel | None, settings: AppSettings
) -> None:
    spec = model.spec
    labels = spec.kind == "labels"
    names = tr.class_names(model, segmenter)
    colours = [*spec.palette, spec.void_colour] if labels else []
    _, camvid_maps = camvid_test(settings.camvid_root) if labels else ([], [])
    blank = tr.blank_label_map(model)
    current = gr.State(blank.name)
    gr.Markdown(
        f"Translator: `{model.source.path.name}`, {spec.image_size[1]}x{spec.image_size[0]} "
        + (
            "photos from label maps. Paint with the class colours (void is black), upload a "
            "label map (class indices, or a picture in these colours)"
            + (", or start from a CamVid test label map" if camvid_maps else "")
            + "; the photo comes at the map's size."
            if labels
            else "photos from RGB images: draw or upload one."
        )
    )
    with gr.Row():
        with gr.Column(scale=1):
            height, width = blank.size
            editor = gr.ImageEditor(
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
        with gr.Column(scale=1):
            photo = gr.Image(
                label="Photo",
                format="png",
                height=IMAGE_HEIGHT,
                buttons=IMAGE_BUTTONS,
                interactive=False,
                elem_id="translate-photo",
            )
            photo_file = gr.File(label="The photo (PNG)", interactive=False)
            score_outputs: list[Any] = []
            if segmenter is not None and labels:
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
                score_outputs = [reading, score, score_table]

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
        folder = _request_folder(settings.work_dir)
        path = _png(result.photo, folder, f"{Path(label_map.name).stem}_photo")
        outputs: list[Any] = [path, path]
        if score_outputs:
            outputs += _score(result.photo, label_map, folder)
        return tuple(outputs)

    def _score(picture: np.ndarray, label_map: tr.LabelMap, folder: Path) -> list[Any]:
        if segmenter is None:
            return []
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
        return [_png(overlay, folder, "reading"), summary, scored.rows]

    outputs = [photo, photo_file, *score_outputs]
    translate_inputs = [editor, current, seed]
    button.click(
        shown_in_page(run),
        translate_inputs,
        outputs,
        api_name="translate",
        concurrency_id=MODEL_WORKER,
    )
    sources = [(upload.upload, upload, "load_label_map")]
    if camvid is not None:
        sources.append((camvid.input, camvid, "load_camvid_map"))
    for event, source, name in sources:
        event(shown_in_page(load), [source], [editor, current], api_name=name).success(
            shown_in_page(run),
            translate_inputs,
            outputs,
            api_visibility="private",
            concurrency_id=MODEL_WORKER,
        )


# ------------------------------------------------------------------------------------- the page
def build_page(models: LoadedModels, settings: AppSettings) -> gr.Blocks:
    """The page: one tab per loaded model (Segment, Generate, Translate); the Translate tab
    scores its photos with the segmenter when one is loaded."""
    photos = bundled_photos(settings.work_dir / "examples")
    camvid_photos, _ = camvid_test(settings.camvid_root)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"## {TITLE}\nSegment photos, generate images and translate label maps.")
        with gr.Tabs():
            if models.segmenter is not None:
                with gr.Tab("Segment", id="segment"):
                    _segment_tab(models.segmenter, settings, camvid_photos[:3] + photos)
            if models.generator is not None:
                with gr.Tab("Generate", id="generate"):
                    _generate_tab(models.generator, settings)
            if models.translator is not None:
                with gr.Tab("Translate", id="translate"):
                    _translate_tab(models.translator, models.segmenter, settings)
    return page


def serve(
    page: gr.Blocks, host: str, port: int, queue_size: int, limits: UploadLimits
) -> tuple[str, Callable[[], None]]:
    """Start serving ``page`` on ``host``:``port`` in the background with a queue of at most
    ``queue_size`` waiting requests and ``limits.max_mb`` per upload, offline (no share link,
    analytics, monitoring, server-side rendering or run history); return its local URL and the
    function that stops it."""
    page.queue(max_size=queue_size, default_concurrency_limit=1)
    page.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        show_error=True,
        quiet=True,
        max_file_size=limits.max_bytes,
        # the photos and masks of this many sessions are kept for the opacity slider; older
        # sessions' go (Gradio keeps 10,000 by default: unbounded memory with large photos)
        state_session_capacity=SESSIONS_KEPT,
        footer_links=[],
        run_history=False,
        enable_monitoring=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        css=CSS,
    )
    return page.local_url, page.close
