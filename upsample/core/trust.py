"""The trust boundary: files are data. What a checkpoint or an exported file may make the toolkit
do when it is read.

- Pickles (checkpoints, caches, weight files, the pickled parts of ``.pt2`` programs) are read by
  PyTorch's ``weights_only`` unpickler, which builds tensors, containers, numbers and strings
  and, beyond those, only the types in :data:`SAFE_GLOBALS` (what the toolkit itself writes). A
  file that names any other global is refused before anything in it runs.
- A class that a file names (a network's ``class_path``) is imported only from the packages in
  :data:`TRUSTED_PACKAGES`; the check happens before the import (:func:`check_hyperparameters`
  finds every way a checkpoint's hyperparameters can name a class).

``trust=True`` (``--trust_checkpoint`` on the command line) lifts both checks: the file is then
unpickled in full and may run any code it holds. Nothing here imports Lightning.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import pickle
import re
import typing
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch

from upsample.core.renamed import current_class_path

#: the command-line flag that lifts the checks (``trust=True`` in the Python API).
TRUST_FLAG = "--trust_checkpoint"
#: the flag's help, in every command that takes it.
TRUST_HELP = (
    "Load a checkpoint that needs code to run (a pickled object, a class outside the toolkit, "
    "torch, torchvision, timm, smp): only for files from someone you trust, as their code "
    "runs. Without it such a file is refused."
)

#: packages whose classes a file may name: the toolkit's own and the libraries it builds on.
TRUSTED_PACKAGES: tuple[str, ...] = (
    "upsample",
    "seg",
    "gan",
    "torch",
    "torchvision",
    "timm",
    "segmentation_models_pytorch",
    # Lightning writes its own instantiator into checkpoints that LightningCLI trained
    "lightning",
    "pytorch_lightning",
)

#: types beyond tensors, containers, numbers and strings that the toolkit's files may hold:
#: paths (a folder or file given as a ``Path`` to a module's arguments).
SAFE_GLOBALS: tuple[type, ...] = (
    pathlib.PosixPath,
    pathlib.PurePosixPath,
    pathlib.WindowsPath,
    pathlib.PureWindowsPath,
)

_TRUST_HINT = (
    f"If you trust where the file comes from, pass {TRUST_FLAG} (trust=True in Python): it is "
    "then loaded in full, which runs any code the file holds."
)


class UntrustedFileError(ValueError):
    """A file needs code to run (an unknown pickled global, a class outside the trusted
    packages) and the user has not said it may."""


def _is_trusted_module(module: str) -> bool:
    return any(
        module == package or module.startswith(f"{package}.") for package in TRUSTED_PACKAGES
    )


def unsafe_globals(source: str | Path | io.BytesIO) -> list[str] | None:
    """The globals a ``torch.save`` file names beyond what ``torch.load(..., weights_only=True)``
    and :data:`SAFE_GLOBALS` allow, read from its opcodes without running anything: empty for a
    safe file, None when the file cannot be analysed (not in ``torch.save``'s zip format)."""
    with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
        try:
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(source))
        except (RuntimeError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError):
            return None


def _offending_globals(source: str | Path | IO[bytes], error: Exception) -> list[str]:
    """The globals outside the allowlist that made ``weights_only`` loading of ``source`` fail
    (from its opcodes, else from the error); empty when the failure was something else (a
    corrupt or truncated file)."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    found = unsafe_globals(source)
    if found:
        return found
    # "Unsupported global: GLOBAL posix.system" (zip files), "unsupported GLOBAL posix.system
    # whose module posix is blocked" (files in the legacy format)
    named = re.search(r"GLOBAL ([\w.]+)", str(error))
    return [named.group(1)] if named else []


def torch_load(
    path: str | Path | IO[bytes],
    map_location: str | torch.device | None = "cpu",
    trust: bool = False,
    hint: str = _TRUST_HINT,
) -> Any:
    """``torch.load`` of a file that may come from anyone.

    Without ``trust`` the file is read with ``weights_only=True`` and :data:`SAFE_GLOBALS`: it
    yields tensors, containers, numbers, strings and paths, and nothing in it runs. With
    ``trust`` it is unpickled in full (``weights_only=False``).

    Raises:
        UntrustedFileError: naming the file and the offending global, when the file needs a
            global outside the allowlist (and ``trust`` is False); ``hint`` says how to
            proceed (by default: ``--trust_checkpoint``). Other read errors (missing,
            truncated, not a pickle) propagate as ``torch.load`` raises them.
    """
    if trust:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        offending = _offending_globals(path, error)
        if not offending:
            raise
        named = ", ".join(f"`{name}`" for name in offending[:5]) + (
            " ..." if len(offending) > 5 else ""
        )
        raise UntrustedFileError(
            f"{path}: refused: reading it would call {named}, which is not among the types "
            "this toolkit writes (tensors, containers, numbers, strings, paths), so the file "
            f"could run code. {hint}"
        ) from None


def check_class_path(class_path: str, source: str | Path, trust: bool = False) -> None:
    """Refuse, before any import, a class that ``source`` names outside :data:`TRUSTED_PACKAGES`.
    A path that an earlier version of the toolkit wrote is judged as the class's path today
    (``upsample.core.renamed``).

    Raises:
        UntrustedFileError: naming the file, the class and the trusted packages.
    """
    class_path = current_class_path(class_path)
    if trust or _is_trusted_module(class_path.rpartition(".")[0] or class_path):
        return
    raise UntrustedFileError(
        f"{source}: refused: it names the class {class_path!r}, and importing it would run code "
        f"from a package outside those the toolkit trusts ({', '.join(TRUSTED_PACKAGES)}). "
        f"{_TRUST_HINT}"
    )


def class_paths(value: Any) -> Iterator[str]:
    """Every ``class_path`` (and LightningCLI's ``_class_path``) string nested in ``value``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("class_path", "_class_path") and isinstance(item, str):
                yield item
            else:
                yield from class_paths(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from class_paths(item)


def check_class_paths(value: Any, source: str | Path, trust: bool = False) -> None:
    """:func:`check_class_path` for every class that ``value`` (hyperparameters read from
    ``source``) names."""
    for class_path in class_paths(value):
        check_class_path(class_path, source, trust)


#: annotations that a parser never reads as a class to import.
_PLAIN_TYPES = (bool, int, float, str, bytes, type(None), list, tuple, dict, set, Path)


def _names_a_class(hint: Any) -> bool:
    """Whether a parameter annotated ``hint`` may be given as a class (import path)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal or hint is typing.Any:
        return False
    if args:
        return any(_names_a_class(arg) for arg in args)
    if not isinstance(hint, type) or dataclasses.is_dataclass(hint):
        return False
    return not issubclass(hint, _PLAIN_TYPES)


def class_typed_parameters(cls: type) -> set[str]:
    """Names of the ``__init__`` parameters of ``cls`` (and its bases) whose annotation admits
    a class, such as ``network: FCNConfig | nn.Module``: a string given there is read as an
    import path by LightningCLI's parser."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation that does not resolve: it names no class we can see
            continue
        names.update(
            name for name, hint in hints.items() if name != "return" and _names_a_class(hint)
        )
    return names


def check_hyperparameters(
    hparams: Mapping[str, Any], source: str | Path, module_class: type | None, trust: bool = False
) -> None:
    """Refuse, before any import, hyperparameters read from ``source`` that name a class outside
    :data:`TRUSTED_PACKAGES` in any of the ways that loading them would import it: a
    ``class_path`` (at any depth), Lightning's ``_instantiator``, or a string given for a
    class-typed parameter of ``module_class`` (see :func:`class_typed_parameters`).

    Raises:
        UntrustedFileError: naming the file and the class.
    """
    if trust:
        return
    check_class_paths(hparams, source)
    instantiator = hparams.get("_instantiator")
    if isinstance(instantiator, str):
        check_class_path(instantiator, source)
    for name in class_typed_parameters(module_class) if module_class is not None else ():
        if isinstance(hparams.get(name), str):
            check_class_path(hparams[name], source)


def check_pt2_archive(path: str | Path, trust: bool = False) -> None:
    """Refuse a ``.pt2`` program that could run code when ``torch.export.load`` reads it.

    That loader unpickles some members in full: nested ``torch.save`` files (sample inputs,
    weights and constants stored as pickles), TorchScript objects and opaque objects. Every
    nested pickle must hold only what the ``weights_only`` unpickler allows; the toolkit never
    writes script or opaque objects, so an archive holding one is refused.

    Raises:
        UntrustedFileError: naming the archive, the member and why.
    """
    if trust:
        return
    with zipfile.ZipFile(path) as archive:
        for member, reason in _unsafe_pt2_members(archive):
            raise UntrustedFileError(
                f"{path}: refused: its member {member} {reason}, which is not among the types "
                f"this toolkit writes, so the file could run code. {_TRUST_HINT}"
            )


def _starts_with(archive: zipfile.ZipFile, name: str, prefix: bytes) -> bool:
    """Whether member ``name`` begins with ``prefix`` (its first bytes only are read)."""
    with archive.open(name) as member:
        return member.read(len(prefix)) == prefix


def _unsafe_pt2_members(archive: zipfile.ZipFile) -> Iterator[tuple[str, str]]:
    """(member, reason) for every member of a ``.pt2`` archive that would run code when read."""
    names = archive.namelist()
    pickled = {name for name in names if _starts_with(archive, name, b"PK\x03\x04")}
    for name in names:
        if not name.endswith(("_weights_config.json", "_constants_config.json")):
            continue
        folder = name.rpartition("/")[0]
        try:
            entries = json.loads(archive.read(name))["config"].values()
        except (ValueError, KeyError, AttributeError):
            yield name, "is not a readable payload description"
            continue
        for entry in entries:
            payload = f"{folder}/{entry.get('path_name', '')}"
            if entry.get("use_pickle"):
                pickled.add(payload)
            elif not entry.get("path_name", "").startswith(("tensor_", "weight_")):
                yield payload, "holds a pickled script or opaque object"
    for name in sorted(pickled):
        data = archive.read(name) if name in names else b""
        found = unsafe_globals(io.BytesIO(data)) if data[:4] == b"PK\x03\x04" else None
        if found is None:
            yield name, "is a pickle in a format that cannot be checked"
        elif found:
            yield name, f"would call {', '.join(f'`{g}`' for g in found[:5])} when read"
