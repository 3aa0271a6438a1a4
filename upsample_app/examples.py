"""The inputs the app offers to start from: photos that scikit-image ships (written once into the
app's folder) and, when the user points the app at CamVid, its test photos and label maps, read
where they lie (CamVid is research data: it is never copied)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from upsample.core.camvid import camvid_base

#: scikit-image's bundled photos offered as examples: file name -> ``skimage.data`` function.
BUNDLED_PHOTOS = {"chelsea.png": "chelsea", "coffee.png": "coffee", "astronaut.png": "astronaut"}
#: CamVid test photos offered beside them.
CAMVID_PHOTOS = 3


def bundled_photos(folder: Path) -> list[Path]:
    """Write scikit-image's example photos into ``folder`` (once) and return their paths; none
    when scikit-image is not installed (the app's extra installs it)."""
    try:
        from skimage import data
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, function in BUNDLED_PHOTOS.items():
        path = folder / name
        if not path.is_file():
            Image.fromarray(np.asarray(getattr(data, function)())).convert("RGB").save(path)
        paths.append(path)
    return paths


def camvid_test(root: str | Path | None) -> tuple[list[Path], list[Path]]:
    """CamVid's test photos and their label maps (sorted, paired by name) under ``root`` (the
    folder holding ``test/`` and ``testannot/``, or its parent as ``camvid_base`` accepts); two
    empty lists when ``root`` is None.

    Raises:
        FileNotFoundError: naming ``root``, when it holds no CamVid layout or no test maps.
    """
    if root is None:
        return [], []
    base = camvid_base(root)
    maps = sorted((base / "testannot").glob("*.png"))
    if not maps:
        raise FileNotFoundError(f"{base / 'testannot'}: no CamVid test label maps (*.png)")
    photos = [base / "test" / path.name for path in maps]
    return [photo for photo in photos if photo.is_file()], maps
