"""What the values of a dataset's mask files mean, and where its files are.

``LabelSpec``: which raw mask values are classes (optionally through a remapping, such as
Cityscapes' label ids -> train ids), which are ignored, the class names and colours.
``FolderLayout``: where a split's images and masks are and how their names pair up, so that
datasets shaped like CamVid (``train/`` + ``trainannot/``) or Cityscapes
(``leftImg8bit/train/<city>/<x>_leftImg8bit.png`` + ``gtFine/train/<city>/<x>_gtFine_labelIds.png``)
are read as they are, without converting files.

Both can be declared in a ``dataset.yaml`` beside the data (see ``DATASET_SPEC_KEYS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seg.losses import IGNORE_INDEX

# CamVid's class table lives in upsample.core (generation uses it too); re-exported here.
from upsample.core.camvid import CAMVID_CLASSES, CAMVID_PALETTE, CAMVID_VOID  # noqa: F401

#: file name of the optional dataset declaration beside the data (folder format).
DATASET_SPEC_FILE = "dataset.yaml"


class SegmentationDataError(ValueError):
    """The segmentation data on disk is not usable; the message names the file and the problem."""


class LabelSpecError(SegmentationDataError):
    """A dataset declaration is inconsistent (the message says which key and why)."""


@dataclass(frozen=True)
class LabelSpec:
    """Meaning of raw mask values.

    Without ``label_map`` the raw values 0..num_classes-1 are the classes; with it, exactly the
    raw values it lists are (``{raw: class}``, a class of 255 ignores that raw value). Raw values
    in ``ignore_values`` become 255 (ignored by the loss and the metrics). Any other value is an
    error that names the file.
    """

    num_classes: int
    ignore_values: tuple[int, ...] = (IGNORE_INDEX,)
    label_map: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise LabelSpecError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.num_classes > IGNORE_INDEX:
            raise LabelSpecError(
                f"num_classes must be < {IGNORE_INDEX} (255 marks ignored pixels), "
                f"got {self.num_classes}"
            )
        for raw, target in self.label_map or ():
            if raw < 0:
                raise LabelSpecError(f"label_map: raw value {raw} is negative")
            if not (0 <= target < self.num_classes or target == IGNORE_INDEX):
                raise LabelSpecError(
                    f"label_map: {raw} -> {target} is neither a class 0..{self.num_classes - 1} "
                    f"nor {IGNORE_INDEX} (ignore)"
                )
        overlap = {raw for raw, _ in self.label_map or ()} & set(self.ignore_values)
        if overlap:
            raise LabelSpecError(
                f"values {sorted(overlap)} are both in label_map and in ignore_values"
            )
        if self.label_map is None:
            classes = set(range(self.num_classes)) & set(self.ignore_values)
            if classes:
                raise LabelSpecError(
                    f"ignore_values {sorted(classes)} are classes (0..{self.num_classes - 1}); "
                    "use label_map to renumber the classes"
                )

    @classmethod
    def create(
        cls,
        num_classes: int,
        ignore_values: Sequence[int] | None = None,
        label_map: Mapping[int, int] | None = None,
    ) -> LabelSpec:
        ignore = tuple(sorted({int(v) for v in (ignore_values or (IGNORE_INDEX,))}))
        mapping = None
        if label_map is not None:
            mapping = tuple(sorted((int(k), int(v)) for k, v in label_map.items()))
        return cls(int(num_classes), ignore, mapping)

    def describe(self) -> str:
        """What the valid values are, for error messages."""
        ignored = ", ".join(str(v) for v in self.ignore_values)
        if self.label_map is None:
            return f"classes 0..{self.num_classes - 1}, ignored {ignored}"
        raw = sorted(raw for raw, _ in self.label_map)
        shown = ", ".join(str(v) for v in raw[:12]) + (" ..." if len(raw) > 12 else "")
        return f"label_map values {shown}, ignored {ignored}"

    @cached_property
    def _lookup(self) -> np.ndarray:
        """int16 table over raw values 0..65535: the class, 255 (ignore) or -1 (invalid)."""
        table = np.full(65536, -1, dtype=np.int16)
        if self.label_map is None:
            table[: self.num_classes] = np.arange(self.num_classes)
        else:
            for raw, target in self.label_map:
                if raw < table.size:
                    table[raw] = target
        for value in self.ignore_values:
            if 0 <= value < table.size:
                table[value] = IGNORE_INDEX
        return table

    def convert(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        """Raw mask values (H, W) -> uint8 class indices with 255 = ignore.

        Raises:
            ValueError: naming ``path`` and the values that are neither a class nor ignored.
        """
        raw = np.asarray(raw)
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= self._lookup.size):
            values = np.unique(raw)
            bad = values[(values < 0) | (values >= self._lookup.size)]
            raise ValueError(self._bad_values_message(path, bad))
        converted = self._lookup[raw]
        if raw.size and int(converted.min()) < 0:
            bad = np.unique(raw[converted < 0])
            raise ValueError(self._bad_values_message(path, bad))
        return converted.astype(np.uint8)

    def _bad_values_message(self, path: str | Path, bad: np.ndarray) -> str:
        shown = ", ".join(str(v) for v in bad[:10].tolist()) + (" ..." if bad.size > 10 else "")
        return (
            f"{path}: mask values {shown} are outside the classes and not ignored "
            f"({self.describe()})"
        )


@dataclass(frozen=True)
class FolderLayout:
    """Where a split's files are: ``root/<image_dir>`` and ``root/<mask_dir>`` with ``{split}``
    replaced by the split name; an image and a mask pair up when their relative paths without
    suffix agree once ``image_suffix`` / ``mask_suffix`` are removed from the ends of the names
    (files whose names do not end with a non-empty suffix are not part of the dataset)."""

    image_dir: str = "{split}/images"
    mask_dir: str = "{split}/masks"
    image_suffix: str = ""
    mask_suffix: str = ""

    def images(self, root: Path, split: str) -> Path:
        return root / self.image_dir.format(split=split)

    def masks(self, root: Path, split: str) -> Path:
        return root / self.mask_dir.format(split=split)


@dataclass
class DatasetSpec:
    """A dataset declaration: the keys of ``DATASET_SPEC_KEYS``, all optional."""

    values: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @classmethod
    def read(cls, path: str | Path) -> DatasetSpec:
        """Read a ``dataset.yaml``.

        Raises:
            LabelSpecError: naming the file for unreadable YAML or unknown keys.
        """
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise LabelSpecError(f"{path}: unreadable dataset declaration ({error})") from error
        if not isinstance(loaded, dict):
            raise LabelSpecError(f"{path}: expected a mapping of keys {DATASET_SPEC_KEYS}")
        unknown = sorted(set(loaded) - set(DATASET_SPEC_KEYS))
        if unknown:
            raise LabelSpecError(
                f"{path}: unknown keys {unknown}; a dataset declaration may hold "
                f"{DATASET_SPEC_KEYS}"
            )
        for key, value in loaded.items():
            check = _SPEC_TYPES[key]
            if value is not None and not check[0](value):
                raise LabelSpecError(f"{path}: {key} must be {check[1]}, got {value!r}")
        return cls(dict(loaded), path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of(check: Any) -> Any:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


#: what each key of a dataset declaration holds: (test, description for messages); its keys
#: are ``DATASET_SPEC_KEYS``.
_SPEC_TYPES: dict[str, tuple[Any, str]] = {
    "num_classes": (_is_int, "an integer (the classes, background included)"),
    "class_names": (_is_list_of(lambda v: isinstance(v, str)), "a list of names"),
    "palette": (
        _is_list_of(lambda v: isinstance(v, list) and len(v) == 3 and all(map(_is_int, v))),
        "a list of [r, g, b] colours",
    ),
    "ignore_values": (_is_list_of(_is_int), "a list of raw mask values"),
    "label_map": (
        lambda v: isinstance(v, dict) and all(_is_int(k) and _is_int(c) for k, c in v.items()),
        "a mapping of raw mask value -> class ({raw: class})",
    ),
    "image_dir": (lambda v: isinstance(v, str), "a folder (text, {split} for the split)"),
    "mask_dir": (lambda v: isinstance(v, str), "a folder (text, {split} for the split)"),
    "image_suffix": (lambda v: isinstance(v, str), "text"),
    "mask_suffix": (lambda v: isinstance(v, str), "text"),
}
#: keys a ``dataset.yaml`` may hold, in this order; each is also a ``--data.<key>`` option,
#: which wins.
DATASET_SPEC_KEYS = tuple(_SPEC_TYPES)


def check_palette(palette: Sequence[Sequence[int]] | None, num_classes: int) -> list[list[int]]:
    """Validate class colours: ``num_classes`` RGB triples of 0..255 (an error otherwise)."""
    if palette is None:
        return []
    colours = [list(colour) for colour in palette]
    if len(colours) != num_classes:
        raise LabelSpecError(f"palette has {len(colours)} colours for {num_classes} classes")
    for colour in colours:
        if len(colour) != 3 or not all(0 <= int(c) <= 255 for c in colour):
            raise LabelSpecError(f"palette colour {colour} is not an RGB triple of 0..255")
    return [[int(c) for c in colour] for colour in colours]
