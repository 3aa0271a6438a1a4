"""Pictures of the app's three tabs for the README, taken in headless Chromium.

Starts ``seg app`` with the given checkpoints and CamVid's examples, and in each tab does what a
user does: Segment uploads a CamVid test photo; Generate makes a 64-image grid and a latent walk;
Translate starts from a CamVid test label map, paints a stroke of Car (a CamVid translator's; else
its second class) over it and translates it. Each tab's picture is written as a palette PNG
(small files) to ``--out``.

    python -m bench.app_pictures --segmenter SEG.ckpt --generator GEN.ckpt \\
        --translator PIX2PIX.ckpt [--camvid CAMVID] [--out bench/results/images]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from bench import browser
from bench.harness import CAMVID, REPO, RUNS_DIR, log
from upsample.core.camvid import CAMVID_CLASSES, CAMVID_PALETTE

OUT = REPO / "bench" / "results" / "images"
WIDTH, HEIGHT = 1280, 860
#: the colour of CamVid's Car, the class painted over the label map.
CAR = CAMVID_PALETTE[CAMVID_CLASSES.index("Car")]
START_TIMEOUT_S = 180.0


@contextlib.contextmanager
def running_app(argv: list[str], log_path: Path, threads: int) -> Iterator[str]:
    """``seg app argv`` on a free local port in its own process group until the block ends
    (SIGTERM, then SIGKILL after 30 s); yields its URL once it answers."""
    from upsample_app.cli import free_port

    port = free_port("127.0.0.1")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "upsample_app.console", "seg", "app", *argv]
    with open(log_path, "w") as stream:
        server = subprocess.Popen(
            [*command, "--port", str(port)], cwd=REPO, env=env, stdout=stream,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
                break
            time.sleep(0.5)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def small_png(screenshot: Path, target: Path, colours: int = 128) -> Path:
    """``screenshot`` as a palette PNG of ``colours`` colours (a third of the bytes)."""
    with Image.open(screenshot) as image:
        image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT).save(
            target, optimize=True
        )
    return target


def stroke_colour(translator: Path) -> tuple[int, int, int]:
    """The colour of the stroke painted over the label map: CamVid's Car for a CamVid
    translator, else its second class's colour."""
    from gan.translation.loading import load_translator
    from gan.translation.paired_data import draws_camvid

    spec = load_translator(translator)[1]
    return CAR if draws_camvid(spec) else spec.palette[min(1, len(spec.palette) - 1)]


def choose_brush(page: Any, colour: tuple[int, int, int]) -> None:
    """Pick the Translate tab's brush of ``colour`` (a class's) from the editor's swatches."""
    page.locator("#translate-editor button[aria-label='Color']").first.click()
    red, green, blue = colour
    swatch = f"#translate-editor [style*='background-color: rgb({red}, {green}, {blue})']"
    page.locator(swatch).first.click()


def paint_stroke(page: Any, fraction: tuple[float, float, float, float]) -> None:
    """Drag the brush across the Translate tab's canvas from (x0, y0) to (x1, y1), given as
    fractions of the canvas's width and height."""
    canvas = page.locator("#translate-editor canvas").first
    box = canvas.bounding_box()
    x0, y0, x1, y1 = fraction
    page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=20)
    page.mouse.up()


def segment_tab(page: Any, photo: Path, screenshot: Path) -> None:
    """The Segment tab with ``photo`` segmented."""
    browser.segment_timed(page, photo)
    page.mouse.move(0, 0)
    page.screenshot(path=str(screenshot), full_page=True)


def generate_tab(page: Any, screenshot: Path) -> None:
    """The Generate tab with a 64-image grid of seed 0 and the walk from seed 0 to 3."""
    browser.show_tab(page, "Generate")
    browser.generate(page, seed=0, count=64)
    page.locator("#gen-seed-b input").fill("3")
    page.locator("#gen-seed-b input").press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#gen-walk img').length >= 2")
    page.screenshot(path=str(screenshot), full_page=True)


def translate_tab(page: Any, label_map: str, brush: tuple[int, int, int], screenshot: Path) -> None:
    """The Translate tab: CamVid's test ``label_map`` with a stroke of ``brush`` painted over
    it, translated."""
    browser.show_tab(page, "Translate")
    previous = browser.image_source(page, "#translate-photo")
    page.locator("#translate-camvid input").fill(label_map)
    page.locator("#translate-camvid input").press("Enter")
    browser.wait_for_new_image(page, "#translate-photo", previous)
    previous = browser.image_source(page, "#translate-photo")
    choose_brush(page, brush)
    paint_stroke(page, (0.35, 0.82, 0.7, 0.82))
    page.locator("#translate-button").click()
    browser.wait_for_new_image(page, "#translate-photo", previous)
    page.mouse.move(0, 0)
    page.screenshot(path=str(screenshot), full_page=True)


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    """The checkpoints, the CamVid folder, where the pictures go and the app's threads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmenter", type=Path, required=True)
    parser.add_argument("--generator", type=Path, required=True)
    parser.add_argument("--translator", type=Path, required=True)
    parser.add_argument("--camvid", type=Path, default=CAMVID, help="the CamVid folder")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Take the three tabs' pictures and write them to ``--out``."""
    args = parse_options(argv)
    # scratch files (screenshots before shrinking, the app's log, the browser's profile)
    default = args.out.resolve() == OUT.resolve()
    work = RUNS_DIR / "app_pictures" if default else args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    flags = [
        "--ckpt_path", str(args.segmenter), "--generator", str(args.generator),
        "--translator", str(args.translator), "--camvid_root", str(args.camvid),
    ]  # fmt: skip
    photos = sorted((args.camvid / "test").glob("*.png"))
    photo = photos[min(40, len(photos) - 1)]
    label_map = sorted((args.camvid / "testannot").glob("*.png"))[0].name
    brush = stroke_colour(args.translator)
    with (
        running_app(flags, work / "app.log", args.threads) as url,
        browser.chromium_page(work / "profile", width=WIDTH, height=HEIGHT) as page,
    ):
        browser.open_app(page, url, "Segment")
        segment_tab(page, photo, work / "segment.png")
        generate_tab(page, work / "generate.png")
        translate_tab(page, label_map, brush, work / "translate.png")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("segment", "generate", "translate"):
        written = small_png(work / f"{name}.png", args.out / f"app_{name}.png")
        log(f"wrote {written} ({written.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
