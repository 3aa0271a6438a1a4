"""Pictures of the benchmarks: labelled grids of panels, class legends, saved examples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from upsample.core.io import save_image_atomic

Example = dict[str, np.ndarray]  # "image" (H, W, 3), "mask" and "prediction" (H, W)


def labelled_grid(
    rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], scale: int = 2, gap: int = 4
) -> Image.Image:
    """Tile uint8 (H, W, 3) panels into rows under a line of column titles (white background);
    each panel is enlarged ``scale`` times with nearest-neighbour sampling."""
    height, width = rows[0][0].shape[:2]
    cell_h, cell_w, top = height * scale, width * scale, 16
    columns = max(len(row) for row in rows)
    size = (columns * cell_w + (columns + 1) * gap, top + len(rows) * (cell_h + gap) + gap)
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(titles):
        draw.text((gap + column * (cell_w + gap) + 2, 2), title, fill="black")
    for r, row in enumerate(rows):
        for column, panel in enumerate(row):
            tile = Image.fromarray(panel).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            canvas.paste(tile, (gap + column * (cell_w + gap), top + gap + r * (cell_h + gap)))
    return canvas


def with_legend(picture: Image.Image, class_names: Sequence[str], colours: Any) -> Image.Image:
    """``picture`` above a strip naming each class next to its colour, four to a line."""
    columns, cell = 4, picture.width // 4
    strip_height = 16 * -(-len(class_names) // columns) + 4
    combined = Image.new("RGB", (picture.width, picture.height + strip_height), "white")
    combined.paste(picture, (0, 0))
    draw = ImageDraw.Draw(combined)
    for index, name in enumerate(class_names):
        x, y = (index % columns) * cell + 4, picture.height + (index // columns) * 16 + 2
        draw.rectangle((x, y + 2, x + 10, y + 12), fill=tuple(int(v) for v in colours[index]))
        draw.text((x + 14, y + 1), name, fill="black")
    return combined


def save_picture(image: Image.Image, path: Path) -> Path:
    """Write ``image`` atomically, making the folder; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(image, path)
    return path


def save_examples(path: Path, examples: Sequence[Example]) -> None:
    """Keep a contender's example predictions for the pictures of a later report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        f"{key}_{i}": value for i, example in enumerate(examples) for key, value in example.items()
    }
    np.savez_compressed(path, **arrays)


def load_examples(path: Path) -> list[Example]:
    """The examples ``save_examples`` wrote, in order."""
    with np.load(path) as archive:
        count = len({key.rsplit("_", 1)[1] for key in archive.files})
        keys = ("image", "mask", "prediction")
        return [{key: archive[f"{key}_{i}"] for key in keys} for i in range(count)]


def overlay_pictures(
    examples: dict[str, list[Example]],
    best: str,
    colour: Any,
    legend: tuple[Sequence[str], Any],
    paths: tuple[Path, Path],
) -> None:
    """Two pictures above the class ``legend`` (names, colours): image | ground truth |
    prediction of ``best``; and every contender's prediction side by side at half size.
    ``colour``: mask -> RGB."""
    single = [[e["image"], colour(e["mask"]), colour(e["prediction"])] for e in examples[best]]
    everyone = [
        [e["image"], colour(e["mask"]), *(colour(examples[n][i]["prediction"]) for n in examples)]
        for i, e in enumerate(examples[best])
    ]
    everyone = [[panel[::2, ::2] for panel in row] for row in everyone]
    grids = ((single, ["image", "ground truth", best]), (everyone, ["image", "truth", *examples]))
    for (rows, titles), path in zip(grids, paths, strict=True):
        save_picture(with_legend(labelled_grid(rows, titles, scale=1), *legend), path)
