"""The trust boundary's pieces (``upsample.core.trust``, ``upsample.core.io.open_image``, the ONNX
external-data check): a hostile file is refused before anything in it runs or is decoded, with
an error naming the file and what it would have done; ``trust=True`` lifts the refusal."""

from __future__ import annotations

import datetime
import io
import os
import pathlib
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from upsample.core.io import (
    MAX_IMAGE_PIXELS_ENV,
    ImageReadError,
    open_image,
    read_image,
    set_max_image_pixels,
)
from upsample.core.trust import (
    UntrustedFileError,
    check_class_path,
    check_hyperparameters,
    check_pt2_archive,
    class_typed_parameters,
    torch_load,
)


class Marker:
    """Unpickling it creates ``path`` (what a hostile pickle could do instead)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.path}",))


def hostile_pickle(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A torch file holding tensors and one object whose unpickling creates ``marker``."""
    torch.save(
        {"weights": torch.ones(2), "payload": Marker(marker)},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pickle_that_would_run_code_is_refused_before_it_runs(
    tmp_path: Path, legacy: bool
) -> None:
    marker = tmp_path / "MARKER"
    path = hostile_pickle(tmp_path / "hostile.pt", marker, legacy)
    with pytest.raises(
        UntrustedFileError, match=r"hostile.pt: refused.*system.*--trust_checkpoint"
    ):
        torch_load(path)
    assert not marker.exists()
    torch_load(path, trust=True)  # what the flag means: the file's code runs
    assert marker.exists()


def test_paths_and_plain_data_load_without_trust(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    saved = {"root": pathlib.Path("/data/x"), "sizes": (1, 2), "weights": torch.arange(3)}
    torch.save(saved, path)
    loaded = torch_load(path)
    assert loaded["root"] == pathlib.Path("/data/x") and loaded["sizes"] == (1, 2)
    assert torch.equal(loaded["weights"], saved["weights"])


def test_a_harmless_global_outside_the_allowlist_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "dated.pt"
    torch.save({"day": datetime.date(2026, 12, 4)}, path)
    with pytest.raises(UntrustedFileError, match=r"dated.pt: refused.*datetime.date"):
        torch_load(path)
    assert torch_load(path, trust=True)["day"] == datetime.date(2026, 12, 4)


def test_a_corrupt_file_is_not_called_untrusted(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(Exception) as error_info:
        torch_load(path)
    assert not isinstance(error_info.value, UntrustedFileError)


def test_a_checkpoint_stream_is_checked_as_a_file_is(tmp_path: Path) -> None:
    """``load_checkpoint`` of a binary stream: read without trust, and a truncated stream is a
    ``CheckpointError`` named ``<file object>``, as a truncated file is named by its path."""
    from upsample.core.checkpoint import CheckpointError, load_checkpoint

    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {"p": Path("a")}}, buffer)
    data = buffer.getvalue()
    assert torch.equal(load_checkpoint(io.BytesIO(data))["state_dict"]["w"], torch.ones(2))
    with pytest.raises(CheckpointError, match="<file object>: not a readable PyTorch checkpoint"):
        load_checkpoint(io.BytesIO(data[: len(data) // 2]))


def test_class_paths_outside_the_trusted_packages_are_refused() -> None:
    check_class_path("seg.peers.SmpNetwork", "a.ckpt")
    check_class_path("torch.nn.Conv2d", "a.ckpt")
    check_class_path("segmentation_models_pytorch.Unet", "a.ckpt")
    for refused in ("evil.Net", "segx.Net", "os.system", "torchvisionx.Net"):
        with pytest.raises(UntrustedFileError, match=rf"a.ckpt: refused.*{refused}"):
            check_class_path(refused, "a.ckpt")
    check_class_path("evil.Net", "a.ckpt", trust=True)


class GivenNetworks(nn.Module):
    def __init__(
        self, network: nn.Module | None = None, name: str = "x", sizes: list[int] | None = None
    ) -> None:
        super().__init__()


def test_every_way_hyperparameters_name_a_class_is_checked() -> None:
    assert class_typed_parameters(GivenNetworks) == {"network"}
    from gan.dcgan.module import GANModule
    from seg.module import SegmentationModule

    assert class_typed_parameters(SegmentationModule) == {"network"}
    assert class_typed_parameters(GANModule) == {"generator", "discriminator"}
    check_hyperparameters({"network": {"class_path": "torch.nn.Conv2d"}}, "a.ckpt", GivenNetworks)
    check_hyperparameters({"name": "evil.Net"}, "a.ckpt", GivenNetworks)  # a plain string
    hostile = [
        {"network": {"class_path": "evil.Net", "init_args": {}}},
        {"deep": [{"inner": {"class_path": "evil.Net"}}]},
        {"_class_path": "evil.Module"},
        {"_instantiator": "evil.instantiate"},
        {"network": "evil.Net"},  # a string given for a class-typed parameter
    ]
    for hparams in hostile:
        with pytest.raises(UntrustedFileError, match="a.ckpt: refused.*evil"):
            check_hyperparameters(hparams, "a.ckpt", GivenNetworks)
        check_hyperparameters(hparams, "a.ckpt", GivenNetworks, trust=True)


# ------------------------------------------------------------------------------------ .pt2
def exported_program(path: Path) -> Path:
    network = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)).eval()
    program = torch.export.export(network, (torch.zeros(1, 3, 8, 8),))
    torch.export.save(program, path)
    return path


def rewrite_member(source: Path, target: Path, suffix: str, data: bytes) -> Path:
    """A copy of the zip ``source`` with the member ending in ``suffix`` replaced by ``data``."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as copy:
        names = archive.namelist()
        assert any(name.endswith(suffix) for name in names), names
        for info in archive.infolist():
            copy.writestr(info, data if info.filename.endswith(suffix) else archive.read(info))
    return target


def test_a_pt2_archive_that_would_run_code_is_refused(tmp_path: Path) -> None:
    program = exported_program(tmp_path / "model.pt2")
    check_pt2_archive(program)  # what torch.export.save writes passes
    marker = tmp_path / "MARKER"
    buffer = io.BytesIO()
    torch.save({"x": Marker(marker)}, buffer)
    target = tmp_path / "hostile.pt2"
    hostile = rewrite_member(program, target, "sample_inputs/model.pt", buffer.getvalue())
    with pytest.raises(UntrustedFileError, match=r"hostile.pt2: refused.*sample_inputs.*system"):
        check_pt2_archive(hostile)
    from upsample.core.deploy import load_pt2

    with pytest.raises(UntrustedFileError):
        load_pt2(hostile)
    assert not marker.exists()
    check_pt2_archive(hostile, trust=True)


# ------------------------------------------------------------------------------- images
def declared_size_png(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's
    header; its data would not fill them)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = bytearray(data[16:29])
    header[0:8] = struct.pack(">II", width, height)
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(header)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def hostile_images(folder: Path) -> dict[str, Path]:
    """A good PNG and four hostile files, by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "good.png")
    good = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    Image.fromarray(pixels).save(folder / "misnamed.png", format="JPEG")
    (folder / "not_an_image.png").write_bytes(b"<html>a page, not a picture</html>")
    return {
        "good": folder / "good.png",
        "bomb": declared_size_png(folder / "bomb.png", 40000, 40000),
        "truncated": folder / "truncated.png",
        "misnamed": folder / "misnamed.png",
        "not_an_image": folder / "not_an_image.png",
    }


REASONS = {
    "bomb": "exceeds the limit",
    "truncated": "truncated",
    "misnamed": "name says .png but the content is JPEG",
    "not_an_image": "not a recognised image format",
}


def test_hostile_images_are_named_and_never_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = hostile_images(tmp_path)
    assert read_image(files["good"]).size == (40, 30)
    decoded = []
    original_load = Image.Image.load

    def load(self: Image.Image):  # type: ignore[no-untyped-def]
        decoded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(Image.Image, "load", load)
    for kind, reason in REASONS.items():
        with pytest.raises(ImageReadError, match=rf"{files[kind].name}: .*{reason}"):
            read_image(files[kind])
    # only the truncated file's declared 40x30 pixels were ever decoded (and Pillow's small
    # internal tables): the bomb's 1.6 gigapixels were refused from the header
    assert (40, 30) in decoded
    assert max(width * height for width, height in decoded) == 40 * 30


def test_the_pixel_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = hostile_images(tmp_path)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "1000")
    with pytest.raises(ImageReadError, match=r"40 x 30 = 1200 pixels exceeds the limit of 1000"):
        read_image(files["good"])
    set_max_image_pixels(1200)
    with open_image(files["good"]) as image:
        assert image.size == (40, 30)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "many")
    with pytest.raises(ValueError, match="must be a positive integer"):
        read_image(files["good"])


# --------------------------------------------------------------------------------- ONNX
def onnx_with_external_data(folder: Path, location: str) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], np.ones(4, np.float32))
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        [weight],
    )
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph), path)
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "link.bin"])
def test_onnx_external_data_outside_the_model_folder_is_refused(
    tmp_path: Path, location: str
) -> None:
    from upsample.core.deploy import DeployError
    from upsample.core.onnx_runtime import check_external_data

    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")  # a link that leads out
    path = onnx_with_external_data(folder, location)
    with pytest.raises(DeployError, match=rf"model.onnx: refused: tensor 'w'.*{location}"):
        check_external_data(path)


def test_onnx_external_data_beside_the_model_is_read(tmp_path: Path) -> None:
    from upsample.core.onnx_runtime import check_external_data

    (tmp_path / "weights.bin").write_bytes(np.ones(4, np.float32).tobytes())
    check_external_data(onnx_with_external_data(tmp_path, "weights.bin"))
