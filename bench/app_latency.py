"""The app's Segment tab against ``seg predict`` on the same photo, side by side, and the app's
memory with its three models loaded.

Contenders, alternating (one 480x360 photo, the CamVid FCN-8s on EfficientNet-Lite0 of
``camvid_fcn8s_lite0.yaml`` with random weights; for each engine, PyTorch and ONNX Runtime, the
same engine and threads for all):

- ``seg predict``, model loaded: ``FolderPredictor.predict_folder`` over a folder that holds the
  photo, as the command runs once it has started (decoding worker, masks and overlays written),
  in a process of its own with the app's threads (``bench.predictor_process``);
- ``seg predict`` command: the whole command as a user types it (start-up, imports, the model's
  loading, the photo);
- app over HTTP: upload the photo, segment it, download the overlay and the files
  (``gradio_client``, the page's own API);
- app in Chromium: from giving the photo to the page's file input to the overlay shown;
- model only: the predictor on the decoded photo in memory (tiling, network, argmax), in that
  process too.

Memory: the app's resident set (``VmRSS`` of its process) once started with the segmenter, the
DCGAN generator of ``dcgan_rgb64.yaml`` and the pix2pix translator of ``pix2pix_camvid.yaml``,
and its peak (``VmHWM``) after a request on each tab. Target (issue 22): upload to overlay within
1.2x ``seg predict``'s time for the photo.

    python -m bench.app_latency [--quick] [--threads 2] [--engines torch onnxruntime] [--repeats 10]
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from bench.harness import (
    REPO,
    Report,
    Table,
    base_parser,
    log,
    parse,
    time_alternating,
    work_dir,
)
from upsample.core.checkpoint import save_module_checkpoint

TARGET = 1.2
CAMVID_TEST = REPO.parent / "shared" / "data" / "camvid" / "test"
PHOTO_SIZE = (480, 360)  # width, height
SEGMENTER_CONFIG = "configs/seg/camvid_fcn8s_lite0.yaml"
COLUMNS = ["contender", "median ms", "x seg predict (model loaded)", "spread", "repeats"]
BASELINE = "seg predict, model loaded"
TRACE_COLUMNS = ["phase", "median ms", "min ms", "max ms"]
ENGINES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
START_TIMEOUT_S = 180.0


def contender_environment(threads: int) -> dict[str, str]:
    """The environment of every contender's process (the app, ``seg predict``'s predictor, the
    command): this checkout importable, ``threads`` OpenMP threads that wait passively. The
    contenders alternate on the same cores, and OpenMP's default active waiting in one process
    takes them from the next: this network's forward pass measured 130-240 ms (outliers 1.9 s)
    instead of 60 ms on a loaded 2-core machine, which would decide the comparison."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": str(threads),
        "OMP_WAIT_POLICY": "PASSIVE",
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }


def _config_model(config: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / config).read_text()).get("model", {}))


def write_checkpoints(folder: Path, quick: bool) -> dict[str, Path]:
    """The three models with random weights as ``fit`` checkpoints (``quick``: narrow ones)."""
    from bench.onnx_inference import random_module
    from gan.dcgan.module import GANModule
    from gan.translation.paired_data import camvid_spec
    from gan.translation.pix2pix import Pix2PixModule

    torch.manual_seed(0)
    generator = _config_model("configs/gan/dcgan_rgb64.yaml")
    translator = _config_model("configs/gan/pix2pix_camvid.yaml")
    if quick:
        generator.update(nz=8, ngf=4, ndf=4)
        translator.update(ngf=4, ndf=4)
    return {
        "segmenter": save_module_checkpoint(
            random_module(SEGMENTER_CONFIG, quick), folder / "seg.ckpt"
        ),
        "generator": save_module_checkpoint(
            GANModule(**generator, channels=3, image_size=64), folder / "generator.ckpt"
        ),
        "translator": save_module_checkpoint(
            Pix2PixModule(input_spec=camvid_spec([96, 128]).to_dict(), **translator),
            folder / "pix2pix.ckpt",
        ),
    }


def the_photo(source: Path, folder: Path) -> Path:
    """``folder/photo.png``: the first CamVid test photo (480x360), or scikit-image's coffee cut
    to 480x360 when CamVid is not at ``source``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "photo.png"
    photos = sorted(source.glob("*.png")) if source.is_dir() else []
    if photos:
        shutil.copyfile(photos[0], target)
    else:
        from skimage import data

        width, height = PHOTO_SIZE
        Image.fromarray(data.coffee()).resize((width, height * 600 // 400)).crop(
            (0, 0, width, height)
        ).save(target)
    with Image.open(target) as image:
        if image.size != PHOTO_SIZE:
            raise ValueError(f"{target}: {image.size} pixels, expected {PHOTO_SIZE}")
    return target


def photo_name(camvid: Path, photo: Path) -> str:
    """What the photo is, for the report."""
    photos = sorted(camvid.glob("*.png")) if camvid.is_dir() else []
    return f"CamVid test/{photos[0].name}" if photos else "scikit-image coffee, 480x360"


def memory_mb(pid: int) -> dict[str, float]:
    """Resident set now and at its peak (``VmRSS``, ``VmHWM``) of process ``pid``, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


@contextlib.contextmanager
def running_app(
    argv: list[str], log_path: Path, threads: int, profiled: bool = False
) -> Iterator[tuple[Any, str]]:
    """``seg app argv`` on a free local port, in its own process group, until the block ends
    (SIGTERM, then SIGKILL after 30 s); yields the process and its URL once it answers.
    ``profiled``: with Gradio's profiler on (``bench.app_trace``)."""
    from upsample_app.cli import free_port

    port = free_port("127.0.0.1")
    env = contender_environment(threads)
    if profiled:
        env["GRADIO_PROFILING"] = "1"
    command = [sys.executable, "-m", "upsample_app.console", "seg", "app", *argv]
    command += ["--port", str(port)]
    with open(log_path, "w") as stream:
        server = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT,
            start_new_session=True,
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
        yield server, url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


BROWSER = "app in Chromium (upload to overlay shown)"
COMMAND = "seg predict command (start-up and model loading included)"
MODEL_ONLY = "model only (predictor on the decoded photo)"


@contextlib.contextmanager
def predictor_process(
    engine: str, model: Path, photo: Path, output: Path, args: Any
) -> Iterator[Callable[[str], None]]:
    """``bench.predictor_process`` started with ``args.threads`` threads, as the app is; yields
    the function that runs one of its commands (``folder``, ``model``) and waits for it."""
    env = contender_environment(args.threads)
    command = [
        sys.executable, "-m", "bench.predictor_process", engine, str(model), str(photo),
        str(output),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None

    def run(what: str) -> None:
        process.stdin.write(f"{what}\n")
        process.stdin.flush()
        answer = process.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"bench.predictor_process {what}: {answer or 'no answer'}")

    try:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("bench.predictor_process did not start")
        yield run
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def contenders_of(
    stack: contextlib.ExitStack,
    engine: str,
    args: Any,
    photo: Path,
    segmenter_flags: list[str],
    url: str,
    page: Any,
    work: Path,
    browser_seconds: list[float],
) -> dict[str, Callable[[], object]]:
    """The five contenders (the browser one only when ``page`` is given: it appends its upload
    to overlay seconds to ``browser_seconds``, its clearing of the previous photo left out);
    ``seg predict``'s predictor runs in a process of its own (``bench.predictor_process``),
    which ``stack`` stops."""
    from gradio_client import Client, handle_file

    from bench import browser

    predictor = stack.enter_context(
        predictor_process(engine, Path(segmenter_flags[-1]), photo, work / "in_process", args)
    )
    client = Client(url, verbose=False, download_files=str(work / "client"))
    env = contender_environment(args.threads)
    command = [
        sys.executable, "-m", "seg.console", "predict", *segmenter_flags,
        "--input", str(photo.parent), "--output", str(work / "command"), "--no_progress",
    ]  # fmt: skip

    def folder() -> None:
        predictor("folder")

    def over_http() -> None:
        gallery = client.predict([handle_file(str(photo))], False, 0.5, api_name="/segment")[0]
        if not gallery:
            raise RuntimeError("the app returned no overlay")

    def in_chromium() -> None:
        # The page's previous photo is cleared first; only upload to overlay is recorded.
        if browser.image_source(page, "#segment-overlays"):
            browser.clear_photos(page)
        browser_seconds.append(browser.segment_timed(page, photo)[1])

    contenders: dict[str, Callable[[], object]] = {
        BASELINE: folder,
        COMMAND: lambda: subprocess.run(
            command, env=env, cwd=REPO, check=True, capture_output=True, timeout=300
        ),
        "app over HTTP (upload, segment, download)": over_http,
    }
    if page is not None:
        contenders[BROWSER] = in_chromium
    contenders[MODEL_ONLY] = lambda: predictor("model")
    return contenders


def exercise_every_tab(url: str, photo: Path, work: Path) -> None:
    """One request on each tab through the page's API (the memory's peak includes them)."""
    from gradio_client import Client, handle_file

    from gan.translation.paired_data import camvid_spec

    client = Client(url, verbose=False, download_files=str(work / "client"))
    client.predict(0, 64, api_name="/generate")
    client.predict(0, 1, 0.5, 8, api_name="/walk")
    spec = camvid_spec([96, 128])
    label_map = np.full(PHOTO_SIZE[::-1], spec.num_classes, np.uint8)  # void...
    label_map[PHOTO_SIZE[1] // 2 :] = 3  # ... over road
    picture = work / "label_map.png"
    Image.fromarray(np.asarray([*spec.palette, spec.void_colour], np.uint8)[label_map]).save(
        picture
    )
    value = {
        "background": handle_file(str(picture)),
        "layers": [],
        "composite": handle_file(str(picture)),
    }
    client.predict(value, 0, api_name="/translate")
    client.predict([handle_file(str(photo))], True, 0.5, api_name="/segment")


def measure_engine(
    engine: str,
    args: Any,
    checkpoints: dict[str, Path],
    photo: Path,
    work: Path,
    repeats: int,
    chromium: str | None,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The app with all three models and ``engine`` for the segmenter: the contenders' timings
    and its memory (started; after a request on each tab)."""
    from bench import browser

    segmenter_flags = ["--ckpt_path", str(checkpoints["segmenter"])]
    if engine == "onnxruntime":
        from seg.deploy import export_checkpoint

        model = export_checkpoint(checkpoints["segmenter"], work / "checkpoints" / "model.onnx")
        segmenter_flags = ["--engine", "onnxruntime", "--model", str(model)]
    app_flags = [
        *segmenter_flags,
        "--generator", str(checkpoints["generator"]),
        "--translator", str(checkpoints["translator"]),
    ]  # fmt: skip
    log(f"timing the {engine} engine")
    with running_app(app_flags, work / f"app_{engine}.log", args.threads) as (server, url):
        started = memory_mb(server.pid)
        with contextlib.ExitStack() as stack:
            page = None
            if chromium is not None:
                page = stack.enter_context(browser.chromium_page(work / "profile", chromium))
                browser.open_app(page, url, "Segment")
                browser.disable_cache(page)
            browser_seconds: list[float] = []
            contenders = contenders_of(
                stack, engine, args, photo, segmenter_flags, url, page, work, browser_seconds
            )
            timings = time_alternating(
                contenders,
                warmup=1,
                repeats=repeats,
                min_repeats={
                    name: min(3, repeats) if name == COMMAND else repeats for name in contenders
                },
                budget_s=30.0,
            )
            if page is not None:  # its own upload to overlay times, the warm-up left out
                timings[BROWSER].seconds = browser_seconds[1:]
        exercise_every_tab(url, photo, work)
        peak = memory_mb(server.pid)
    return timings, {"started": started, "peak": peak}


def trace_table(
    args: Any,
    checkpoints: dict[str, Path],
    photo: Path,
    work: Path,
    repeats: int,
    chromium: str,
    model_ms: float,
) -> tuple[Table, str]:
    """Where the Chromium contender's time goes with the first engine (``bench.app_trace``),
    in an app started with Gradio's profiler on; its table and its finding (``model_ms``: the
    model alone, from the timing of that engine)."""
    from bench import app_trace, browser

    engine = args.engines[0]
    flags = ["--ckpt_path", str(checkpoints["segmenter"])]
    if engine == "onnxruntime":
        flags = ["--engine", "onnxruntime", "--model", str(work / "checkpoints" / "model.onnx")]
    log(f"tracing the app's Segment tab ({engine})")
    with (
        running_app(flags, work / "app_trace.log", args.threads, profiled=True) as (_, url),
        browser.chromium_page(work / "profile", chromium) as page,
    ):
        browser.open_app(page, url, "Segment")
        browser.disable_cache(page)
        uploads = app_trace.trace_uploads(page, url, photo, repeats)
    rows = app_trace.phase_rows(uploads)
    title = f"Where the app's time goes: {len(uploads)} uploads, {ENGINES[engine]} engine (ms)"
    finding = app_trace.finding_of(rows, model_ms, f"{ENGINES[engine]}, {len(uploads)} uploads")
    return Table(title, TRACE_COLUMNS, rows), finding


def main(argv: Sequence[str] | None = None) -> Report:
    """Time the contenders with each engine and write ``app_latency.json`` / ``.md``."""
    from upsample_app.cli import go_offline

    go_offline()  # Gradio's analytics off before its client is imported, here as in the app
    from bench import browser

    parser = base_parser(__doc__)
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="segmenter engines"
    )
    parser.add_argument("--repeats", type=int, default=None, help="default 10 (1 --quick)")
    parser.add_argument("--camvid", type=Path, default=CAMVID_TEST, help="CamVid test photos")
    parser.add_argument("--no-browser", action="store_true", help="leave out Chromium")
    args = parse(parser, argv)
    repeats = args.repeats or (1 if args.quick else 10)
    work = work_dir(args, "app_latency")
    checkpoints = write_checkpoints(work / "checkpoints", args.quick)
    photo = the_photo(args.camvid, work / "photo")
    report = Report.start(
        args,
        "app_latency",
        "The app's Segment tab vs seg predict on one 480x360 photo; the app's memory",
        engines=" ".join(args.engines),
        repeats=repeats,
        photo=photo_name(args.camvid, photo),
        gradio=importlib.metadata.version("gradio"),
    )
    chromium = None if args.no_browser else browser.find_chromium()
    if chromium is None:
        log("no Chromium: the browser contender is left out")
    model_only: dict[str, float] = {}
    for engine in args.engines:
        timings, memory = measure_engine(engine, args, checkpoints, photo, work, repeats, chromium)
        baseline = timings[BASELINE].median
        model_only[engine] = timings[MODEL_ONLY].median
        rows = [
            {
                "contender": name,
                "median ms": 1000 * timing.median,
                "x seg predict (model loaded)": timing.median / baseline,
                "spread": timing.spread,
                "repeats": timing.repeats,
            }
            for name, timing in timings.items()
        ]
        title = f"Upload to overlay, one 480x360 photo, {ENGINES[engine]} engine"
        report.tables.append(Table(title, COLUMNS, rows))
        ratios = {name: timing.median / baseline for name, timing in timings.items()}
        report.data.setdefault("ratios", {})[engine] = ratios
        report.data.setdefault("memory_mb", {})[engine] = memory
        report.findings += findings_of(ratios, timings, memory, engine)
    memory_rows = [
        {
            "segmenter engine": ENGINES[engine],
            "started, three models loaded (VmRSS)": memory["started"]["VmRSS"],
            "peak after a request on each tab (VmHWM)": memory["peak"]["VmHWM"],
        }
        for engine, memory in report.data["memory_mb"].items()
    ]
    report.tables.append(Table("The app's memory (MB)", list(memory_rows[0]), memory_rows))
    if chromium is not None:
        model_ms = 1000 * model_only[args.engines[0]]
        table, finding = trace_table(args, checkpoints, photo, work, repeats, chromium, model_ms)
        report.tables.append(table)
        report.findings.append(finding)
    report.values.update(target=TARGET)
    report.write(args.results_dir)
    return report


def findings_of(
    ratios: dict[str, float],
    timings: dict[str, Any],
    memory: dict[str, dict[str, float]],
    engine: str,
) -> list[str]:
    """The verdicts of one engine."""
    lines = []
    for name, ratio in ratios.items():
        if name.startswith("app"):
            verdict = "met" if ratio <= TARGET else "NOT met"
            baseline_ms = 1000 * timings[BASELINE].median
            lines.append(
                f"{name}: {1000 * timings[name].median:.0f} ms, {ratio:.2f}x `seg predict` with "
                f"the model loaded ({baseline_ms:.0f} ms, {ENGINES[engine]}; target <= {TARGET}x: "
                f"{verdict})."
            )
    lines.append(
        f"{ENGINES[engine]}: the `seg predict` command for the one photo takes "
        f"{timings[COMMAND].median:.1f} s "
        f"({ratios[COMMAND]:.0f}x): start-up and the model's loading, which the app pays once."
    )
    lines.append(
        f"Memory ({ENGINES[engine]} segmenter): {memory['started']['VmRSS']:.0f} MB resident "
        f"once started with the three models, {memory['peak']['VmHWM']:.0f} MB at the peak "
        "after a request on each tab."
    )
    return lines


if __name__ == "__main__":
    main()
