"""A segmentation data module's classes and file layout, as its format and its arguments declare
them: fixed by the format (``fashion``, ``voc``, ``camvid``), or for the ``folder`` format given
by the arguments over the declaration file (``root/dataset.yaml`` or ``dataset_spec``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seg.data.fashion_seg import FASHION_CLASSES
from seg.data.labels import (
    CAMVID_CLASSES,
    CAMVID_PALETTE,
    CAMVID_VOID,
    DATASET_SPEC_FILE,
    DatasetSpec,
    FolderLayout,
    LabelSpec,
    LabelSpecError,
    check_palette,
)
from seg.data.sources.voc import VOC_CLASSES

#: the class names of the formats that define their own classes and files
FIXED_CLASSES: dict[str, tuple[str, ...]] = {
    "fashion": FASHION_CLASSES,
    "voc": VOC_CLASSES,
    "camvid": CAMVID_CLASSES,
}


@dataclass(frozen=True)
class DatasetClasses:
    """The classes of a dataset (their number, names and colours, ``palette`` ``None`` for the
    default colours), what its mask values mean (``labels``) and where its files are
    (``layout``)."""

    num_classes: int
    class_names: list[str]
    palette: list[list[int]] | None
    labels: LabelSpec
    layout: FolderLayout


def declared_classes(
    format: str, root: Path, declared: Mapping[str, Any], dataset_spec: str | None
) -> DatasetClasses:
    """The classes and layout of a data module of ``format`` under ``root``.

    ``declared``: the data module's arguments by ``DATASET_SPEC_KEYS`` (``None`` where not
    given); ``dataset_spec``: its declaration file argument.

    Raises:
        ValueError: declarations given for a format that fixes its classes, a ``num_classes``
            that contradicts the format, or a folder format without two classes or more.
        LabelSpecError: an inconsistent declaration (names, colours or values), or a
            ``dataset_spec`` file that does not exist.
    """
    fixed = FIXED_CLASSES.get(format)
    if fixed is not None:
        return _fixed_classes(format, fixed, declared, dataset_spec)
    return _folder_classes(root, declared, dataset_spec)


def _fixed_classes(
    format: str, fixed: tuple[str, ...], declared: Mapping[str, Any], dataset_spec: str | None
) -> DatasetClasses:
    """The classes of a format that defines them; declaring any for it is an error."""
    given = [key for key, value in declared.items() if key != "num_classes" and value]
    if given or dataset_spec:
        keys = given or ["dataset_spec"]
        raise ValueError(
            f"format {format!r} defines its classes and files; {keys} are for the folder format"
        )
    if declared["num_classes"] not in (None, len(fixed)):
        raise ValueError(
            f"format {format!r} has {len(fixed)} classes, got num_classes={declared['num_classes']}"
        )
    camvid = format == "camvid"
    return DatasetClasses(
        num_classes=len(fixed),
        class_names=list(fixed),
        palette=[list(c) for c in CAMVID_PALETTE] if camvid else None,
        labels=LabelSpec.create(len(fixed), (CAMVID_VOID, 255) if camvid else None),
        layout=FolderLayout(),
    )


def _folder_classes(
    root: Path, declared: Mapping[str, Any], dataset_spec: str | None
) -> DatasetClasses:
    """The classes of the folder format: the arguments given, else the declaration file's."""
    values = read_dataset_spec(root, dataset_spec).values
    values.update({key: value for key, value in declared.items() if value is not None})
    names = values.get("class_names")
    num_classes = values.get("num_classes") or (len(names) if names else None)
    if num_classes is None or int(num_classes) < 2:
        raise ValueError(
            "format 'folder' needs num_classes >= 2 (including background), or class_names, "
            f"as arguments or in {root / DATASET_SPEC_FILE}; got {num_classes}"
        )
    num_classes = int(num_classes)
    if names is not None and len(names) != num_classes:
        raise LabelSpecError(f"class_names has {len(names)} names for {num_classes} classes")
    defaults = FolderLayout()
    return DatasetClasses(
        num_classes=num_classes,
        class_names=(
            [str(n) for n in names] if names else [f"class_{index}" for index in range(num_classes)]
        ),
        palette=check_palette(values.get("palette"), num_classes) or None,
        labels=LabelSpec.create(num_classes, values.get("ignore_values"), values.get("label_map")),
        layout=FolderLayout(
            *(
                values.get(key) if values.get(key) is not None else getattr(defaults, key)
                for key in ("image_dir", "mask_dir", "image_suffix", "mask_suffix")
            )
        ),
    )


def read_dataset_spec(root: Path, dataset_spec: str | None) -> DatasetSpec:
    """The declaration file ``dataset_spec``, else ``root/dataset.yaml`` when it exists, else an
    empty declaration.

    Raises:
        LabelSpecError: ``dataset_spec`` does not exist.
    """
    if dataset_spec is not None:
        if not Path(dataset_spec).is_file():
            raise LabelSpecError(f"{dataset_spec}: dataset declaration not found")
        return DatasetSpec.read(dataset_spec)
    default = root / DATASET_SPEC_FILE
    return DatasetSpec.read(default) if default.is_file() else DatasetSpec()
