"""Nothing runs from a file: every command and loader that reads a checkpoint refuses one that
would run code, before anything in it runs, and says how to proceed; ``--trust_checkpoint``
loads it; hostile images are named and skipped by every reader.

The checkpoints are written by ``seg fit`` and ``gan fit`` with the shipped configs; the commands
run through the console scripts' entry points (``upsample_app.console.seg_main``, ``gan_main``), in
this process, and two of them as separate processes exactly as users type them.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.core.test_trust import Marker, hostile_images
from tests.gan.conftest import make_image_folder
from tests.gan.test_gan_pix2pix import TINY_PIX2PIX_ARGS, make_paired_folder
from tests.processes import ddp_env
from tests.seg.helpers import write_folder_split

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIG = str(REPO / "configs/seg/fcn8s_fashion.yaml")
GAN_CONFIG = str(REPO / "configs/gan/dcgan_folder.yaml")
P2P_CONFIG = str(REPO / "configs/gan/pix2pix_camvid.yaml")
# The progress bar stays on, as users run the commands; only the model summary is left out. The
# GAN runs in this process turn W&B off (in-process runs would share one W&B service, as in
# tests/gan/conftest.py); the console-script test below runs with W&B offline, the users' default.
QUIET = ["--trainer.enable_model_summary=false"]
#: a module outside the trusted packages whose import creates a marker file
EVIL_MODULE = "evil_net"


# ----------------------------------------------------------------------------------- fixtures
def seg_data_args(data: Path) -> list[str]:
    return [
        "--data.format=folder",
        f"--data.root={data}",
        "--data.num_classes=3",
        "--data.crop_size=32",
        "--data.batch_size=2",
        "--data.num_workers=0",
    ]


def gan_data_args(data: Path) -> list[str]:
    return [
        f"--data.root={data}",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--model.ngf=4",
        "--model.ndf=4",
        "--model.nz=8",
        "--model.num_sample_images=4",
        "--model.fid_features=random",
    ]


def p2p_data_args(data: Path) -> list[str]:
    return ["--data.format=folder", f"--data.root={data}", *TINY_PIX2PIX_ARGS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data folders and the ``last.ckpt`` of a few-step ``seg fit``, ``gan fit`` (DCGAN) and
    ``gan fit`` (pix2pix), each with its shipped config."""
    from gan.cli import run_cli as gan_cli
    from seg.cli import run_cli as seg_cli

    root = tmp_path_factory.mktemp("trusted")
    write_folder_split(root / "seg_data" / "train", 4)
    write_folder_split(root / "seg_data" / "val", 2, seed=1)
    make_image_folder(root / "gan_data", count=8)
    make_paired_folder(root / "p2p_data", count=4)
    runs = f"--trainer.default_root_dir={root / 'runs'}"
    seg_cli(
        [
            "fit",
            "--config",
            SEG_CONFIG,
            *seg_data_args(root / "seg_data"),
            "--model.network.width=0.0625",
            "--trainer.max_steps=2",
            runs,
            *QUIET,
        ]
    )
    gan_cli(
        [
            "fit",
            "--config",
            GAN_CONFIG,
            *gan_data_args(root / "gan_data"),
            "--trainer.max_steps=2",
            runs,
            "--wandb=false",
            *QUIET,
        ]
    )
    gan_cli(
        [
            "fit",
            "--config",
            P2P_CONFIG,
            *p2p_data_args(root / "p2p_data"),
            "--trainer.max_steps=2",
            runs,
            "--wandb=false",
            *QUIET,
        ]
    )
    found = {name: next((root / "runs" / name).rglob("last.ckpt")) for name in ("seg", "gan")}
    found["p2p"] = next((root / "runs" / "pix2pix").rglob("last.ckpt"))
    return {**found, "root": root}


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER"


def with_payload(source: Path, target: Path, payload: Any) -> Path:
    """A copy of checkpoint ``source`` with one more entry, ``payload``."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    checkpoint["extra"] = payload
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, target)
    return target


def with_hparams(source: Path, target: Path, **hparams: Any) -> Path:
    """A copy of checkpoint ``source`` whose hyperparameters are updated with ``hparams``."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"].update(hparams)
    torch.save(checkpoint, target)
    return target


@pytest.fixture
def evil_module(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``evil_net`` on the import path: importing it creates ``marker``; it holds an
    ``nn.Module`` and an instantiator, as a real attacker's module would."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / f"{EVIL_MODULE}.py").write_text(
        textwrap.dedent(f"""
        from pathlib import Path
        from torch import nn
        Path({str(marker)!r}).touch()

        class EvilNet(nn.Conv2d):
            def __init__(self, num_classes=3):
                super().__init__(3, num_classes, 1)

        def instantiate(*args, **kwargs):
            raise RuntimeError("ran")
        """)
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", f"{folder}:{REPO}")
    sys.modules.pop(EVIL_MODULE, None)
    return folder


def exit_status(main: Callable[[list[str]], Any], args: list[str]) -> int:
    """The exit status of a console entry point run in this process."""
    try:
        result = main(args)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return int(result or 0)


def seg_main(args: list[str]) -> Any:
    from upsample_app.console import seg_main

    return seg_main(args)


def gan_main(args: list[str]) -> Any:
    from upsample_app.console import gan_main

    return gan_main(args)


# ------------------------------------------------------------------------- every entry point
def photos(root: Path) -> Path:
    folder = root / "photos"
    if not folder.exists():
        folder.mkdir()
        pixels = np.random.default_rng(0).integers(0, 255, (24, 28, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "a.png")
    return folder


def label_maps(root: Path) -> Path:
    return root / "p2p_data" / "labels"


#: every way a command reads a checkpoint: (checkpoint kind, tool, arguments for the file)
COMMANDS: dict[str, tuple[str, Callable[..., Any], Callable[[Path, Path, Path], list[str]]]] = {
    "seg predict --input": (
        "seg",
        seg_main,
        lambda c, r, o: [
            "predict",
            "--ckpt_path",
            str(c),
            "--input",
            str(photos(r)),
            "--output",
            str(o),
            "--no_progress",
        ],
    ),
    "seg predict --config": (
        "seg",
        seg_main,
        lambda c, r, o: [
            "predict",
            "--config",
            SEG_CONFIG,
            "--ckpt_path",
            str(c),
            *seg_data_args(r / "seg_data"),
            f"--data.predict_dir={photos(r)}",
            f"--trainer.default_root_dir={o}",
            *QUIET,
        ],
    ),
    "seg validate": (
        "seg",
        seg_main,
        lambda c, r, o: [
            "validate",
            "--config",
            SEG_CONFIG,
            "--ckpt_path",
            str(c),
            *seg_data_args(r / "seg_data"),
            f"--trainer.default_root_dir={o}",
            *QUIET,
        ],
    ),
    "seg test": (
        "seg",
        seg_main,
        lambda c, r, o: [
            "test",
            "--config",
            SEG_CONFIG,
            "--ckpt_path",
            str(c),
            *seg_data_args(r / "seg_data"),
            f"--trainer.default_root_dir={o}",
            *QUIET,
        ],
    ),
    "seg fit --ckpt_path": (
        "seg",
        seg_main,
        lambda c, r, o: [
            "fit",
            "--config",
            SEG_CONFIG,
            "--ckpt_path",
            str(c),
            *seg_data_args(r / "seg_data"),
            "--trainer.max_steps=4",
            f"--trainer.default_root_dir={o}",
            *QUIET,
        ],
    ),
    "seg export": (
        "seg",
        seg_main,
        lambda c, r, o: ["export", "--ckpt_path", str(c), "--output", str(o / "model.onnx")],
    ),
    "gan sample": (
        "gan",
        gan_main,
        lambda c, r, o: ["sample", "--ckpt_path", str(c), "--num", "4", "--output", str(o)],
    ),
    "gan fid": (
        "gan",
        gan_main,
        lambda c, r, o: [
            "fid",
            "--ckpt_path",
            str(c),
            "--fid_features",
            "random",
            "--num",
            "8",
            f"--data.root={r / 'gan_data'}",
            "--data.format=folder",
            f"--cache_dir={o}",
        ],
    ),
    "gan export": (
        "gan",
        gan_main,
        lambda c, r, o: ["export", "--ckpt_path", str(c), "--output", str(o / "generator.onnx")],
    ),
    "gan validate": (
        "gan",
        gan_main,
        lambda c, r, o: [
            "validate",
            "--config",
            GAN_CONFIG,
            "--ckpt_path",
            str(c),
            *gan_data_args(r / "gan_data"),
            f"--trainer.default_root_dir={o}",
            "--wandb=false",
            *QUIET,
        ],
    ),
    "gan fit --ckpt_path": (
        "gan",
        gan_main,
        lambda c, r, o: [
            "fit",
            "--config",
            GAN_CONFIG,
            "--ckpt_path",
            str(c),
            *gan_data_args(r / "gan_data"),
            "--trainer.max_steps=4",
            f"--trainer.default_root_dir={o}",
            "--wandb=false",
            *QUIET,
        ],
    ),
    "gan translate": (
        "p2p",
        gan_main,
        lambda c, r, o: [
            "translate",
            "--ckpt_path",
            str(c),
            "--input",
            str(label_maps(r)),
            "--output",
            str(o),
        ],
    ),
    "gan validate --task pix2pix": (
        "p2p",
        gan_main,
        lambda c, r, o: [
            "validate",
            "--config",
            P2P_CONFIG,
            "--ckpt_path",
            str(c),
            *p2p_data_args(r / "p2p_data"),
            f"--trainer.default_root_dir={o}",
            "--wandb=false",
            *QUIET,
        ],
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_a_checkpoint_that_would_run_code(
    command: str, trained: dict[str, Path], tmp_path: Path, marker: Path, capsys: Any
) -> None:
    kind, main, arguments = COMMANDS[command]
    hostile = with_payload(trained[kind], tmp_path / "hostile.ckpt", Marker(marker))
    assert exit_status(main, arguments(hostile, trained["root"], tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "hostile.ckpt: refused" in error and "system" in error and "--trust_checkpoint" in error
    assert not marker.exists()


def test_resuming_from_a_hostile_last_checkpoint_is_refused(
    trained: dict[str, Path], tmp_path: Path, marker: Path, capsys: Any
) -> None:
    """``--ckpt_path last`` is read by Lightning, through the toolkit's checkpoint I/O."""
    last = tmp_path / "runs" / "seg" / "version_0" / "checkpoints" / "last.ckpt"
    with_payload(trained["seg"], last, Marker(marker))
    args = [
        "fit",
        "--config",
        SEG_CONFIG,
        "--ckpt_path",
        "last",
        "--trainer.max_steps=4",
        *seg_data_args(trained["root"] / "seg_data"),
        f"--trainer.default_root_dir={tmp_path / 'runs'}",
        *QUIET,
    ]
    assert exit_status(seg_main, args) == 2
    assert "last.ckpt: refused" in capsys.readouterr().err
    assert not marker.exists()


def loaders() -> dict[str, tuple[str, Callable[..., Any]]]:
    from gan.dcgan.module import GANModule
    from gan.dcgan.network_io import load_generator
    from gan.translation.loading import load_translator
    from gan.translation.pix2pix import Pix2PixModule
    from seg.module import SegmentationModule
    from seg.network_io import load_network

    return {
        "load_network": ("seg", load_network),
        "SegmentationModule.load_from_checkpoint": ("seg", SegmentationModule.load_from_checkpoint),
        "load_generator": ("gan", load_generator),
        "GANModule.load_from_checkpoint": ("gan", GANModule.load_from_checkpoint),
        "load_translator": ("p2p", load_translator),
        "Pix2PixModule.load_from_checkpoint": ("p2p", Pix2PixModule.load_from_checkpoint),
    }


@pytest.mark.parametrize("name", list(loaders()))
def test_every_loader_refuses_a_checkpoint_that_would_run_code_unless_trusted(
    name: str, trained: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    from upsample.core.checkpoint import CheckpointError
    from upsample.core.trust import UntrustedFileError

    kind, load = loaders()[name]
    hostile = with_payload(trained[kind], tmp_path / "hostile.ckpt", Marker(marker))
    with pytest.raises(CheckpointError, match=r"hostile.ckpt: refused.*system") as error_info:
        load(hostile)
    assert isinstance(error_info.value, UntrustedFileError) and not marker.exists()
    dated = with_payload(trained[kind], tmp_path / "dated.ckpt", datetime.date(2026, 12, 4))
    with pytest.raises(CheckpointError, match=r"dated.ckpt: refused.*datetime.date"):
        load(dated)
    assert load(dated, trust=True) is not None  # a harmless global, loaded when trusted


def test_encoder_weights_and_the_fid_cache_never_run_code(tmp_path: Path, marker: Path) -> None:
    from gan.fid import load_cached_features
    from upsample.core.pretrained import EncoderWeightsError, read_state_dict

    hostile = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.ones(1), "extra": Marker(marker)}, hostile)
    with pytest.raises(EncoderWeightsError, match=r"weights.pth: refused.*only tensors"):
        read_state_dict(hostile)
    with pytest.warns(UserWarning, match=r"weights.pth: refused.*computed again"):
        assert load_cached_features(hostile, num_features=1) is None
    assert not marker.exists()


# -------------------------------------------------------------------- classes a file names
def test_a_network_class_outside_the_trusted_packages_is_never_imported(
    trained: dict[str, Path], tmp_path: Path, marker: Path, evil_module: Path, capsys: Any
) -> None:
    from seg.module import SegmentationModule
    from seg.network_io import load_network
    from upsample.core.checkpoint import CheckpointError

    network = {"class_path": f"{EVIL_MODULE}.EvilNet", "init_args": {"num_classes": 3}}
    named = with_hparams(trained["seg"], tmp_path / "named.ckpt", network=network)
    root, out = trained["root"], tmp_path / "out"
    for command in ("seg predict --input", "seg test", "seg fit --ckpt_path"):
        assert exit_status(seg_main, COMMANDS[command][2](named, root, out)) == 2
        assert f"named.ckpt: refused: it names the class '{EVIL_MODULE}.EvilNet'" in (
            capsys.readouterr().err
        )
    for load in (load_network, SegmentationModule.load_from_checkpoint):
        with pytest.raises(CheckpointError, match=rf"refused.*{EVIL_MODULE}"):
            load(named)
    given_as_text = with_hparams(trained["seg"], tmp_path / "text.ckpt", network="evil_net.EvilNet")
    assert exit_status(seg_main, COMMANDS["seg validate"][2](given_as_text, root, out)) == 2
    instantiator = with_hparams(
        trained["seg"], tmp_path / "inst.ckpt", _instantiator=f"{EVIL_MODULE}.instantiate"
    )
    with pytest.raises(CheckpointError, match=rf"inst.ckpt: refused.*{EVIL_MODULE}.instantiate"):
        SegmentationModule.load_from_checkpoint(instantiator)
    generator = with_hparams(trained["gan"], tmp_path / "gen.ckpt", generator="evil_net.EvilGen")
    assert exit_status(gan_main, COMMANDS["gan validate"][2](generator, root, out)) == 2
    assert not marker.exists()
    # trusted, the class is imported (its module runs): that is what the flag means; this
    # network's weights are then found not to fit it
    with pytest.raises(CheckpointError, match="does not match the network"):
        load_network(named, trust=True)
    assert marker.exists()


# ------------------------------------------------------------------- as users type them
def test_the_console_scripts_refuse_and_trust_as_documented(
    trained: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    """``seg predict`` and ``gan sample`` as separate processes: the case the issue found
    (a ``seg fit`` checkpoint with one more entry that runs a command when unpickled)."""
    bin_dir = Path(sys.executable).parent
    env = ddp_env()
    seg_hostile = with_payload(trained["seg"], tmp_path / "evil_seg.ckpt", Marker(marker))
    gan_hostile = with_payload(trained["gan"], tmp_path / "evil_gan.ckpt", Marker(marker))
    seg = [
        str(bin_dir / "seg"),
        "predict",
        "--input",
        str(photos(trained["root"])),
        "--output",
        str(tmp_path / "masks"),
        "--no_progress",
        "--ckpt_path",
    ]
    gan = [
        str(bin_dir / "gan"),
        "sample",
        "--num",
        "4",
        "--output",
        str(tmp_path / "samples"),
        "--ckpt_path",
    ]
    for command, hostile in ((seg, seg_hostile), (gan, gan_hostile)):
        result = subprocess.run(
            [*command, str(hostile)], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"{hostile.name}: refused" in result.stderr
    assert not marker.exists()
    dated = with_payload(trained["seg"], tmp_path / "dated.ckpt", datetime.date(2026, 12, 4))
    result = subprocess.run(
        [*seg, str(dated), "--trust_checkpoint"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "masks" / "masks" / "a.png").is_file()


# ------------------------------------------------------------ checkpoints that must still load
def test_normal_and_earlier_checkpoints_load_alike_with_and_without_trust(
    trained: dict[str, Path],
) -> None:
    from gan.dcgan.network_io import load_generator
    from gan.translation.loading import load_translator
    from seg.network_io import load_network

    legacy_seg = REPO / "tests/seg/checkpoints/flat_hparams_atrous.ckpt"
    legacy_gan = REPO / "tests/gan/fixtures/dcgan_v1_resize_conv.ckpt"
    cases = [
        (load_network, trained["seg"]),
        (load_network, legacy_seg),
        (load_generator, trained["gan"]),
        (load_generator, legacy_gan),
        (lambda path, **kw: load_translator(path, **kw)[0], trained["p2p"]),
    ]
    for load, path in cases:
        safe, trusted = load(path).state_dict(), load(path, trust=True).state_dict()
        assert safe.keys() == trusted.keys(), path
        assert all(torch.equal(safe[key], trusted[key]) for key in safe), path


# --------------------------------------------------------------------------- hostile images
def test_seg_predict_names_and_skips_hostile_images(
    trained: dict[str, Path], tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.core.test_trust import REASONS
    from upsample.core.io import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV

    # --max_image_pixels holds for the rest of its process (and the workers it starts)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, str(DEFAULT_MAX_IMAGE_PIXELS))

    folder = tmp_path / "in"
    hostile_images(folder)
    args = [
        "predict",
        "--ckpt_path",
        str(trained["seg"]),
        "--input",
        str(folder),
        "--output",
        str(tmp_path / "out"),
        "--no_progress",
        "--num_workers",
        "2",
    ]
    assert exit_status(seg_main, args) == 1  # some files skipped, the rest written
    error = capsys.readouterr().err
    for kind, reason in REASONS.items():
        assert f"{kind}.png: " in error and reason in error, kind
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["good.png"]
    limited = [*args[:-4], str(tmp_path / "small"), "--max_image_pixels", "100"]
    assert exit_status(seg_main, limited) == 1
    assert "good.png: image of 40 x 30 = 1200 pixels exceeds the limit of 100" in (
        capsys.readouterr().err
    )


def test_gan_translate_names_and_skips_hostile_label_maps(
    trained: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    from tests.core.test_trust import REASONS

    folder = tmp_path / "labels"
    files = hostile_images(folder)
    files["good"].unlink()  # a label map is single-channel
    Image.fromarray(np.zeros((16, 24), np.uint8)).save(folder / "good.png")
    args = [
        "translate",
        "--ckpt_path",
        str(trained["p2p"]),
        "--input",
        str(folder),
        "--output",
        str(tmp_path / "out"),
    ]
    assert exit_status(gan_main, args) == 1
    error = capsys.readouterr().err
    for kind, reason in REASONS.items():
        assert f"{kind}.png" in error and reason in error, kind
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["good.png"]


def test_the_datasets_name_hostile_images(tmp_path: Path) -> None:
    import warnings

    from gan.dcgan.data import FittedImageFolder
    from seg.data.datasets import SegmentationDataError, SegmentationDataset
    from seg.data.sources.folder import find_folder_pairs
    from tests.core.test_trust import REASONS

    split = tmp_path / "seg" / "train"
    for kind, path in hostile_images(tmp_path / "hostile").items():
        if kind == "good":
            continue
        for role in ("images", "masks"):  # each file as the photo, then as the mask
            write_folder_split(split, 1)
            target = split / role / "000.png"
            if kind == "truncated":  # a truncated file of the role's own kind
                whole = target.read_bytes()
                target.write_bytes(whole[: len(whole) // 2])
            else:
                target.write_bytes(path.read_bytes())
            dataset = SegmentationDataset(find_folder_pairs(split), 3)
            with pytest.raises(SegmentationDataError, match=rf"000.png: .*{REASONS[kind]}"):
                dataset[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = FittedImageFolder(tmp_path / "hostile", 16, 3, "crop")
    assert len(folder) == 1  # the good image; the four others named in one warning
    message = " ".join(str(w.message) for w in caught)
    assert all(f"{kind}.png" in message for kind in REASONS)


def test_the_app_refuses_a_checkpoint_that_would_run_code_unless_trusted(
    trained: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    """``seg app`` / ``gan app`` load every model through ``upsample_app.models.load_models``,
    before anything is served: the same refusal, and ``--trust_checkpoint`` passed on."""
    pytest.importorskip("gradio")
    from upsample.core.checkpoint import CheckpointError
    from upsample_app.models import ModelSource, load_models

    for role, kind in (("segmenter", "seg"), ("generator", "gan"), ("translator", "p2p")):
        hostile = with_payload(trained[kind], tmp_path / f"{role}.ckpt", Marker(marker))
        with pytest.raises(CheckpointError, match=rf"{role}.ckpt: refused.*system"):
            load_models(**{role: ModelSource.of(hostile)})
        assert not marker.exists()
        dated = with_payload(trained[kind], tmp_path / f"{role}_dated.ckpt", datetime.date.today())
        assert getattr(load_models(**{role: ModelSource.of(dated)}, trust=True), role) is not None
