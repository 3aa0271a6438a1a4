"""Pairs of image and mask folders matched by their files' relative paths: the ``folder`` format
in any ``FolderLayout`` (``{split}/images`` with ``{split}/masks`` by default, Cityscapes' or
CamVid's layouts when declared)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seg.data.labels import FolderLayout, SegmentationDataError
from seg.data.pairs import SamplePair
from upsample.core.io import IMAGE_SUFFIXES

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")


def files_by_stem(folder: Path, suffixes: Sequence[str], name_suffix: str = "") -> dict[str, Path]:
    """Map relative path without suffix (e.g. ``sub/0001``) -> file, for files under ``folder``;
    with ``name_suffix`` only files whose name (without suffix) ends with it, which is removed
    from the key (``x_leftImg8bit.png`` -> ``x``)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            stem = path.relative_to(folder).with_suffix("").as_posix()
            if name_suffix:
                if not stem.endswith(name_suffix):
                    continue
                stem = stem[: -len(name_suffix)]
            found.setdefault(stem, path)
    return found


def find_layout_pairs(root: str | Path, split: str, layout: FolderLayout) -> list[SamplePair]:
    """Pairs of split ``split`` under ``root`` in ``layout`` (see ``FolderLayout``).

    Raises:
        SegmentationDataError: the folders are missing, hold no image, or an image has no mask
            (the message names the image and the mask paths looked for).
    """
    root = Path(root)
    image_dir, mask_dir = layout.images(root, split), layout.masks(root, split)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise SegmentationDataError(
                f"{folder}: folder not found (expected {image_dir} and {mask_dir})"
            )
    images = files_by_stem(image_dir, tuple(IMAGE_SUFFIXES), layout.image_suffix)
    masks = files_by_stem(mask_dir, MASK_SUFFIXES, layout.mask_suffix)
    if not images:
        raise SegmentationDataError(f"{image_dir}: empty dataset, no image files found")
    pairs = []
    for stem, image in images.items():
        if stem not in masks:
            raise SegmentationDataError(
                f"{image}: image has no mask (looked for {mask_dir / stem}{layout.mask_suffix}"
                f"{{{','.join(MASK_SUFFIXES)}}})"
            )
        pairs.append(SamplePair(image, masks[stem]))
    return pairs


def find_folder_pairs(split_dir: str | Path) -> list[SamplePair]:
    """Pairs from ``split_dir/images/**`` and ``split_dir/masks/**`` matched by relative stem.

    Raises:
        SegmentationDataError: as ``find_layout_pairs``.
    """
    split_dir = Path(split_dir)
    return find_layout_pairs(split_dir.parent, split_dir.name, FolderLayout())
