"""Upload limits: checked from a file's header before its pixels are decoded, with messages that
name the file, the value and the limit."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import write_photo
from upsample.core.io import read_image
from upsample_app.limits import AppInputError, UploadLimits, read_label_upload, read_photo


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` pixels but holds almost no data: what a
    decompression bomb looks like from its header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("side", "limit"),
    [
        (5000, "at most 12 megapixels"),  # above the app's limit
        (20000, "exceeds the limit of 89478485 pixels"),  # above every reader's limit too
    ],
)
def test_a_bomb_is_refused_from_its_header(tmp_path: Path, side: int, limit: str) -> None:
    bomb = png_header_only(tmp_path / "bomb.png", side, side)
    assert bomb.stat().st_size < 100
    megapixels = side * side / 1e6
    for read in (read_photo, read_label_upload):
        with pytest.raises(AppInputError, match=rf"bomb.png: .*{megapixels:.0f}.*{limit}"):
            read(bomb, UploadLimits())


def test_photos_are_read_as_seg_predict_reads_them(tmp_path: Path) -> None:
    limits = UploadLimits()
    path = write_photo(tmp_path / "p.png", (20, 30))
    rgba = np.dstack([np.asarray(Image.open(path)), np.full((20, 30), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16)).save(
        tmp_path / "deep.png"
    )
    for name in ("p.png", "rgba.png", "deep.png"):
        np.testing.assert_array_equal(
            read_photo(tmp_path / name, limits), np.asarray(read_image(tmp_path / name))
        )
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert read_photo(grey, limits).shape == (3, 4, 3)
    np.testing.assert_array_equal(
        read_photo(rgba, limits), read_photo(tmp_path / "rgba.png", limits)
    )
    with pytest.raises(AppInputError, match=r"an empty image \(0x0 pixels\)"):
        read_photo(np.zeros((0, 0, 3), np.uint8), limits)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="upload limit must be positive, got 0 MB"):
        UploadLimits(max_mb=0)
    with pytest.raises(ValueError, match="pixel limit must be positive, got 0"):
        UploadLimits(max_pixels=0)
    assert UploadLimits(max_mb=1.5).max_bytes == int(1.5 * 2**20)
