"""The Segment tab: photos in, ``seg predict``'s overlays, masks and the pixel share of each
class out; the opacity slider blends the overlays again without running the network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from upsample_app import segment as seg
from upsample_app.models import SegmenterModel
from upsample_app.tabs.common import (
    IMAGE_BUTTONS,
    IMAGE_HEIGHT,
    MODEL_WORKER,
    AppSettings,
    legend_html,
    shown_in_page,
)
from upsample_app.tabs.downloads import request_folder, save_jpeg


@dataclass(frozen=True)
class SegmentControls:
    """The tab's components that its handlers read or fill: the segmentations kept for the
    opacity slider (``segmentations``), the photos and TTA switch in, the overlays, opacity,
    share table and downloads out."""

    segmentations: gr.State
    files: gr.File
    tta: gr.Checkbox
    gallery: gr.Gallery
    opacity: gr.Slider
    table: gr.Dataframe
    downloads: gr.File


def segment_tab(model: SegmenterModel, settings: AppSettings, photos: list[Path]) -> None:
    """Lay out the Segment tab of ``model`` (inside a ``gr.Tab``), ``photos`` as its examples,
    and connect its handlers: ``segment`` (on new photos or TTA) and ``blend`` (opacity)."""
    segmentations = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            files, tta = _photo_inputs(model, photos)
        with gr.Column(scale=2):
            gallery, opacity, table, downloads = _result_outputs(model)
    controls = SegmentControls(segmentations, files, tta, gallery, opacity, table, downloads)
    _connect(model, settings, controls)


def _photo_inputs(model: SegmenterModel, photos: list[Path]) -> tuple[gr.File, gr.Checkbox]:
    """The photos' upload (with ``photos`` as examples) and the TTA switch."""
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
    return files, tta


def _result_outputs(
    model: SegmenterModel,
) -> tuple[gr.Gallery, gr.Slider, gr.Dataframe, gr.File]:
    """The overlays, the opacity slider (with the classes' legend), the share table and the
    downloads."""
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
    return gallery, opacity, table, downloads


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


def _connect(model: SegmenterModel, settings: AppSettings, controls: SegmentControls) -> None:
    """Connect the handlers: the photos (or TTA) to the network, the opacity to a new blend."""

    def run(paths: list[str] | None, flip: bool, alpha: float) -> tuple:
        if not paths:
            return [], [], None, None
        batch = seg.segment_photos(model, paths, settings.limits, tta=flip)
        for message in batch.skipped:
            gr.Warning(f"skipped {message}")
        done = batch.done
        folder = request_folder(settings.work_dir)
        written = _download_names(seg.write_outputs(model, done, folder))
        if alpha == seg.DEFAULT_OPACITY:  # seg predict's overlay files, as they are
            overlays = list(zip(written[len(done) :], [s.name for s in done], strict=True))
        else:
            overlays = shown(done, alpha, folder)
        return done, overlays, seg.class_shares(model, done), written

    def shown(done: list[seg.Segmentation], alpha: float, folder: Path) -> list:
        # JPEG as seg predict's overlays: encoded in a millisecond where a PNG takes 20-110
        return [
            (save_jpeg(seg.overlay(model, s, alpha), folder, f"{s.name}_{alpha:.2f}"), s.name)
            for s in done
        ]

    def blend(done: list[seg.Segmentation], alpha: float) -> list:
        return shown(done, alpha, request_folder(settings.work_dir))

    gr.on(
        [controls.files.change, controls.tta.change],
        shown_in_page(run),
        [controls.files, controls.tta, controls.opacity],
        [controls.segmentations, controls.gallery, controls.table, controls.downloads],
        api_name="segment",
        concurrency_id=MODEL_WORKER,
    )
    controls.opacity.release(
        shown_in_page(blend),
        [controls.segmentations, controls.opacity],
        [controls.gallery],
        api_name="blend",
    )
