"""upsample.core.io: atomic writes and image normalisation."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from upsample.core.io import ImageReadError, atomic_path, list_images, read_image, save_image_atomic


def test_atomic_path_keeps_old_content_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("partial")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind


def test_atomic_path_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not private 0600


def test_save_image_atomic_uses_extension_format(tmp_path: Path) -> None:
    path = save_image_atomic(Image.new("RGB", (5, 3), (1, 2, 3)), tmp_path / "a.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (5, 3)


def test_read_image_grayscale_rgba_16bit_palette(tmp_path: Path) -> None:
    Image.new("L", (4, 3), 200).save(tmp_path / "gray.png")
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 128  # half transparent red over black -> about 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((3, 4), 65535, np.uint16)).save(tmp_path / "deep.png")
    Image.new("P", (4, 3), 1).save(tmp_path / "palette.png")

    gray = np.asarray(read_image(tmp_path / "gray.png"))
    assert gray.shape == (3, 4, 3) and (gray == 200).all()
    red = np.asarray(read_image(tmp_path / "rgba.png"))
    assert abs(int(red[0, 0, 0]) - 128) <= 1 and red[0, 0, 1] == 0
    deep = np.asarray(read_image(tmp_path / "deep.png"))
    assert (deep == 255).all()
    assert read_image(tmp_path / "palette.png").mode == "RGB"


def test_read_image_applies_exif_orientation(tmp_path: Path) -> None:
    image = Image.new("RGB", (6, 2), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").size == (2, 6)


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(broken)
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        read_image(tmp_path / "missing.png")


def test_list_images_is_recursive_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ["b/z.png", "a.JPG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == [
        "a.JPG",
        "b/z.png",
    ]
