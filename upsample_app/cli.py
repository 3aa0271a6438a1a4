"""``seg app`` and ``gan app``: serve the app's page with the models a user has.

``seg app`` takes a segmenter the way ``seg predict`` does (``--ckpt_path CKPT``, or ``--engine
onnxruntime --model model.onnx``) and ``gan app`` a generator the way ``gan sample`` does; either
adds the other models with ``--segmenter`` / ``--generator`` (a ``.ckpt`` runs in PyTorch, an
``.onnx`` in ONNX Runtime) and ``--translator`` (a pix2pix or OASIS checkpoint). The models load
once, then the page is served until Ctrl+C or SIGTERM, which stop it within seconds (exit status
128 + signal, as every ``seg`` and ``gan`` command).

The server binds to 127.0.0.1 unless ``--host`` says otherwise and makes no network call:
Gradio's analytics, share links, server-side rendering and the Hugging Face hub are off before
Gradio is imported, and the page needs nothing from a CDN.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from upsample.core.commands import add_engine_arguments, check_engine_sources, run_command
from upsample_app.limits import DEFAULT_MAX_MB, DEFAULT_MAX_PIXELS, UploadLimits
from upsample_app.models import ModelSource, load_models, predictor_defaults

Tool = Literal["seg", "gan"]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_QUEUE_SIZE = 16
#: what keeps Gradio and the Hugging Face hub from the network, set before Gradio is imported.
OFFLINE_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_SSR_MODE": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
#: the model file each command runs itself, as its predict/sample command names it.
OWN_MODEL_FILE = {"seg": "model.onnx", "gan": "generator.onnx"}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def app_parser(tool: Tool) -> argparse.ArgumentParser:
    """The flags of ``seg app`` / ``gan app``."""
    own, other = ("segmenter", "generator") if tool == "seg" else ("generator", "segmenter")
    parser = argparse.ArgumentParser(
        prog=f"{tool} app",
        description=(
            f"Serve the toolkit's web app with a {own} (--ckpt_path, or --engine onnxruntime "
            f"--model), and optionally a {other} (--{other}) and a translator "
            "(--translator): one tab each (Segment, Generate, Translate). The models load "
            "once; the page is served on 127.0.0.1 unless --host says otherwise, offline, "
            "until Ctrl+C or SIGTERM. Exit status 2 for a bad checkpoint, model or flag."
        ),
    )
    add_engine_arguments(parser, tool, OWN_MODEL_FILE[tool])
    if tool == "seg":
        parser.add_argument(
            "--generator", help="generator: a `gan fit` checkpoint or a `gan export` .onnx"
        )
    else:
        parser.add_argument(
            "--segmenter", help="segmenter: a `seg fit` checkpoint or a `seg export` .onnx"
        )
    parser.add_argument("--translator", help="a pix2pix or OASIS `gan fit` checkpoint (label maps)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (0.0.0.0: all)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port to serve on (0: a free one)"
    )
    parser.add_argument(
        "--queue_size",
        type=int,
        default=DEFAULT_QUEUE_SIZE,
        help="requests that may wait; more are turned away with a message",
    )
    parser.add_argument(
        "--max_upload_mb", type=float, default=DEFAULT_MAX_MB, help="largest upload (MB)"
    )
    parser.add_argument(
        "--max_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="largest image (width x height) the app decodes",
    )
    defaults = predictor_defaults()
    parser.add_argument(
        "--tile_size",
        type=int,
        default=defaults["tile_size"],
        help="photos larger than this are tiled (as seg predict)",
    )
    parser.add_argument(
        "--overlap", type=int, default=defaults["overlap"], help="overlap of tiles in pixels"
    )
    parser.add_argument(
        "--camvid_root",
        type=Path,
        help="CamVid folder: its test photos and label maps become examples",
    )
    return parser


def model_sources(options: argparse.Namespace, tool: Tool) -> dict[str, ModelSource | None]:
    """The ``load_models`` sources that the flags name.

    Raises:
        DeployError: the tool's own model flags mix the engines (``--ckpt_path`` with
            ``--engine onnxruntime``, ...).
    """
    own: ModelSource | None = None
    if options.ckpt_path or options.model or options.engine != "torch":
        check_engine_sources(options, tool, OWN_MODEL_FILE[tool])
        path = options.model if options.engine == "onnxruntime" else options.ckpt_path
        own = ModelSource(Path(path), options.engine)
    other = options.generator if tool == "seg" else options.segmenter
    other_source = ModelSource.of(other) if other else None
    segmenter, generator = (own, other_source) if tool == "seg" else (other_source, own)
    translator = ModelSource.of(options.translator) if options.translator else None
    return {"segmenter": segmenter, "generator": generator, "translator": translator}


def free_port(host: str) -> int:
    """A port on ``host`` that nothing listens on now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def go_offline() -> None:
    """Turn off everything in Gradio and the Hugging Face hub that calls out, and let local
    requests bypass a proxy (Gradio checks its own URL at start)."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [host for host in os.environ.get(name, "").split(",") if host]
        os.environ[name] = ",".join(dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))


def wait_for_stop() -> int:
    """Block until SIGINT or SIGTERM; return the signal's number."""
    received: list[int] = []
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        while not stop.wait(0.5):  # a timed wait lets the main thread run the handler
            pass
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    return received[0]


def app_command(argv: Sequence[str], tool: Tool) -> int:
    """``seg app`` / ``gan app``; returns the exit status: 128 + signal once stopped, or 2 with
    the reason on stderr for a bad checkpoint, model, folder or flag."""
    return run_command(argv, app_parser(tool), functools.partial(_serve, tool=tool))


def _serve(options: argparse.Namespace, tool: Tool) -> int:
    for flag in ("queue_size", "max_pixels", "tile_size"):
        if getattr(options, flag) < 1:
            raise ValueError(f"--{flag} must be positive, got {getattr(options, flag)}")
    limits = UploadLimits(options.max_upload_mb, options.max_pixels)
    if options.camvid_root is not None:
        from upsample_app.examples import camvid_test

        camvid_test(options.camvid_root)  # a wrong folder fails now, not in the page
    go_offline()
    work_dir = Path(tempfile.mkdtemp(prefix="upsample-app-"))
    # Gradio's copies of uploads and results go there too, and with it when the app stops.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(work_dir / "gradio"))
    try:
        return _load_and_serve(options, tool, limits, work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _load_and_serve(
    options: argparse.Namespace, tool: Tool, limits: UploadLimits, work_dir: Path
) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise ValueError(
            'the app needs Gradio: pip install -c constraints.txt -e ".[app]"'
        ) from error
    from upsample_app.tabs.common import AppSettings
    from upsample_app.ui import build_page, serve

    models = load_models(
        **model_sources(options, tool),
        trust=options.trust_checkpoint,
        tile_size=options.tile_size,
        overlap=options.overlap,
    )
    port = options.port or free_port(options.host)
    settings = AppSettings(limits, work_dir, options.camvid_root)
    page = build_page(models, settings)
    url, stop = serve(page, options.host, port, options.queue_size, limits)
    print(f"serving on {url} (Ctrl+C stops)", file=sys.stderr, flush=True)
    signum = wait_for_stop()
    print(f"stopping ({signal.Signals(signum).name})", file=sys.stderr, flush=True)
    stop()
    return 128 + signum
