"""The Generate tab: a seed and a count give ``gan sample``'s grid and files; the latent walk
shows the image between two seeds at a slider's position and the strip from one to the other."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from PIL import Image

from upsample_app import generate as gen
from upsample_app.models import GeneratorModel
from upsample_app.tabs.common import (
    IMAGE_BUTTONS,
    IMAGE_HEIGHT,
    MODEL_WORKER,
    AppSettings,
    shown_in_page,
)
from upsample_app.tabs.downloads import request_folder


@dataclass(frozen=True)
class SampleControls:
    """The sampling's seed, count and button in; its grid and zip of files out."""

    seed: gr.Number
    count: gr.Slider
    button: gr.Button
    grid: gr.Image
    files: gr.File


@dataclass(frozen=True)
class WalkControls:
    """The walk's two seeds, strip length and position in; the image at the position and the
    strip out."""

    seed_a: gr.Number
    seed_b: gr.Number
    steps: gr.Slider
    position: gr.Slider
    point: gr.Image
    strip: gr.Image


def generate_tab(model: GeneratorModel, settings: AppSettings) -> None:
    """Lay out the Generate tab of ``model`` (inside a ``gr.Tab``) and connect its handlers:
    ``generate`` (the button) and ``walk`` (the walk's seeds, length and slider)."""
    gr.Markdown(
        f"Generator: `{model.source.path.name}` ({model.source.engine}), {model.image_size}x"
        f"{model.image_size} images. A seed and a count give the files `gan sample --seed S "
        "--num N` writes; the ends of a walk are `gan sample --num 1`'s image of each seed."
    )
    sampling = _sample_controls()
    gr.Markdown("### Latent walk")
    walking = _walk_controls()
    _connect(model, settings, sampling, walking)


def _sample_controls() -> SampleControls:
    """The sampling's row: seed, count and button beside the grid and its files."""
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
    return SampleControls(seed, count, button, grid, files)


def _walk_controls() -> WalkControls:
    """The walk's row: seeds, strip length and slider beside the image and the strip."""
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
    return WalkControls(seed_a, seed_b, steps, position, point, strip)


def _connect(
    model: GeneratorModel, settings: AppSettings, sampling: SampleControls, walking: WalkControls
) -> None:
    """Connect the handlers: the button to a sample, the walk's controls to a walk."""

    def sample(seed_value: float, number: float) -> tuple[str, str]:
        samples = gen.generate(model, seed_value, number, request_folder(settings.work_dir) / "s")
        return str(samples.grid), str(gen.archive(samples, f"samples_seed{int(seed_value)}"))

    def walk(a: float, b: float, at: float, points: float) -> tuple[Image.Image, Image.Image]:
        result = gen.walk(model, a, b, at, points)
        return result.image, result.strip

    sampling.button.click(
        shown_in_page(sample),
        [sampling.seed, sampling.count],
        [sampling.grid, sampling.files],
        api_name="generate",
        concurrency_id=MODEL_WORKER,
    )
    gr.on(
        [
            walking.position.release,
            walking.seed_a.submit,
            walking.seed_b.submit,
            walking.steps.release,
        ],
        shown_in_page(walk),
        [walking.seed_a, walking.seed_b, walking.position, walking.steps],
        [walking.point, walking.strip],
        api_name="walk",
        concurrency_id=MODEL_WORKER,
    )
