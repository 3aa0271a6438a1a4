"""``seg app`` / ``gan app`` flags: which models they load with which engine, the defaults
(127.0.0.1, seg predict's tiling), and bad checkpoints, folders or flags stopping with status 2
and a message before anything is served. Gradio stays inside the page (``upsample_app.ui`` and
its tabs, ``upsample_app.tabs``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.conftest import Checkpoints
from tests.processes import REPO, ddp_env
from upsample_app import cli
from upsample_app.console import gan_main, seg_main
from upsample_app.models import ModelSource, predictor_defaults


def sources(tool: cli.Tool, *argv: str) -> dict[str, ModelSource | None]:
    return cli.model_sources(cli.app_parser(tool).parse_args(list(argv)), tool)


def test_defaults_bind_to_localhost_and_tile_as_seg_predict() -> None:
    options = cli.app_parser("seg").parse_args(["--ckpt_path", "s.ckpt"])
    assert options.host == "127.0.0.1" and options.port == 7860
    assert options.queue_size == 16 and not options.trust_checkpoint
    assert (options.max_upload_mb, options.max_pixels) == (20.0, 12_000_000)
    defaults = predictor_defaults()
    assert (options.tile_size, options.overlap) == (defaults["tile_size"], defaults["overlap"])
    assert options.camvid_root is None


def test_each_flag_names_a_model_and_its_engine() -> None:
    assert sources(
        "seg", "--ckpt_path", "s.ckpt", "--generator", "g.onnx", "--translator", "t.ckpt"
    ) == {
        "segmenter": ModelSource(Path("s.ckpt"), "torch"),
        "generator": ModelSource(Path("g.onnx"), "onnxruntime"),
        "translator": ModelSource(Path("t.ckpt"), "torch"),
    }
    assert sources("seg", "--engine", "onnxruntime", "--model", "m.onnx")["segmenter"] == (
        ModelSource(Path("m.onnx"), "onnxruntime")
    )
    assert sources("gan", "--ckpt_path", "g.ckpt", "--segmenter", "s.onnx") == {
        "segmenter": ModelSource(Path("s.onnx"), "onnxruntime"),
        "generator": ModelSource(Path("g.ckpt"), "torch"),
        "translator": None,
    }
    assert sources("gan", "--engine", "onnxruntime", "--model", "g.onnx")["generator"] == (
        ModelSource(Path("g.onnx"), "onnxruntime")
    )
    assert sources("gan", "--translator", "t.ckpt") == {
        "segmenter": None,
        "generator": None,
        "translator": ModelSource(Path("t.ckpt"), "torch"),
    }


def run_app(main, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    with pytest.raises(SystemExit) as status:
        main(["app", *argv])
    return status.value.code, capsys.readouterr().err


def test_bad_models_and_flags_stop_with_status_2_before_serving(
    checkpoints: Checkpoints, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(checkpoints.segmenter.read_bytes()[:500])
    seg, gen = str(checkpoints.segmenter), str(checkpoints.generator)
    cases = [
        (seg_main, ["--ckpt_path", str(broken)], "broken.ckpt: not a readable PyTorch"),
        (seg_main, ["--ckpt_path", gen], "generator.ckpt: hyperparameters have no 'num_classes'"),
        (gan_main, ["--ckpt_path", seg], "segmenter.ckpt: hyper_parameters lack"),
        (seg_main, ["--ckpt_path", seg, "--translator", gen], "generator.ckpt: hyper_parameters"),
        (
            gan_main,
            ["--translator", str(tmp_path / "t.onnx")],
            "a translator is a pix2pix or OASIS checkpoint",
        ),
        (seg_main, ["--engine", "onnxruntime", "--ckpt_path", seg], "onnxruntime needs --model"),
        (
            seg_main,
            ["--engine", "onnxruntime", "--model", "nope.onnx"],
            "nope.onnx: file not found",
        ),
        (gan_main, [], "the app needs at least one model"),
        (seg_main, ["--ckpt_path", seg, "--camvid_root", str(tmp_path)], "no CamVid layout found"),
        (
            seg_main,
            ["--ckpt_path", seg, "--queue_size", "0"],
            "--queue_size must be positive, got 0",
        ),
        (seg_main, ["--ckpt_path", seg, "--max_upload_mb", "0"], "upload limit must be positive"),
    ]
    for main, argv, message in cases:
        status, error = run_app(main, argv, capsys)
        assert status == 2, (argv, error)
        assert message in error, (argv, error)
        assert "serving on" not in error


def test_the_trust_flag_reaches_the_one_loading_function(
    checkpoints: Checkpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    seen: list[dict] = []

    def load_models(**kwargs):
        seen.append(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(cli, "load_models", load_models)
    for flags in ([], ["--trust_checkpoint"]):
        status, error = run_app(
            seg_main,
            [
                "--ckpt_path",
                str(checkpoints.segmenter),
                "--tile_size",
                "96",
                "--overlap",
                "8",
                *flags,
            ],
            capsys,
        )
        assert status == 2 and "stop here" in error
    assert [call["trust"] for call in seen] == [False, True]
    assert seen[0]["tile_size"] == 96 and seen[0]["overlap"] == 8


def test_gradio_is_imported_by_the_app_page_only() -> None:
    importers = sorted(
        path.relative_to(REPO).as_posix()
        for folder in ("upsample_app", "upsample", "seg", "gan", "bench")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"^\s*(import gradio|from gradio)\b", path.read_text(), re.MULTILINE)
    )
    assert importers == [
        "upsample_app/cli.py",  # only to say that the app needs it
        "upsample_app/tabs/common.py",
        "upsample_app/tabs/generate.py",
        "upsample_app/tabs/segment.py",
        "upsample_app/tabs/translate.py",
        "upsample_app/ui.py",
    ]
    # the tabs' functions, the models and the command line import no Gradio
    code = (
        "import sys, upsample_app.cli, upsample_app.segment, upsample_app.generate, "
        "upsample_app.translate, upsample_app.models, upsample_app.examples, "
        "upsample_app.console, seg.console, gan.console; "
        "print('gradio' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=ddp_env(), capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_the_browser_tests_server_wrapper_refuses_and_records_outside_calls(
    tmp_path: Path,
) -> None:
    record = tmp_path / "calls.txt"
    code = (
        "import socket, sys\n"
        "from tests.app.offline_server import refuse_outside\n"
        "refuse_outside(open(sys.argv[1], 'a', buffering=1))\n"
        "for call in (lambda: socket.getaddrinfo('example.org', 443),\n"
        "             lambda: socket.socket().connect(('192.0.2.1', 80))):\n"
        "    try:\n"
        "        call()\n"
        "    except OSError as error:\n"
        "        print(type(error).__name__)\n"
        "socket.getaddrinfo('localhost', 80)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(record)],
        env=ddp_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gaierror", "ConnectionRefusedError"]
    assert record.read_text().splitlines() == [
        "getaddrinfo example.org",
        "connect ('192.0.2.1', 80)",
    ]
