"""Deployment formats shared by ``seg`` and ``gan``: ONNX and ``torch.export`` files, ONNX Runtime.

Exporting (``export_network``): one ``torch.export`` program is captured with symbolic batch (and,
where asked, height and width) sizes, then saved either as an ONNX model (opset ``OPSET``, for ONNX
Runtime and other runtimes, without PyTorch) or as a ``.pt2`` program (``torch.export.load`` runs
it without the model's Python code). Both carry the toolkit's metadata: what the model is, its input
and output, and for a segmenter the class names and palette. Files are written atomically: an
interrupted or failed export leaves no file behind. A layer that cannot be exported is named, with
the reason.

Running a file written here in ONNX Runtime: ``upsample.core.onnx_runtime``. Nothing here imports
Lightning.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from upsample.core.io import atomic_path, probe_writable_folder
from upsample.core.trust import check_pt2_archive

#: ONNX opset of the exported models (ONNX Runtime >= 1.14 runs it).
OPSET = 18
#: metadata key of the model kind ("segmentation" or "generator").
KIND_KEY = "toolkit.kind"
#: name of the metadata file inside a ``.pt2`` archive.
PT2_METADATA = "toolkit_metadata.json"
FORMATS = {".onnx": "onnx", ".pt2": "pt2"}
DISTRIBUTION = "upsample-toolkit"


class DeployError(ValueError):
    """A model cannot be exported, or an exported model cannot be loaded or run; the message
    names the file (or the layer) and what was expected."""


def toolkit_version() -> str:
    """The installed toolkit's version ("unknown" when it runs from an uninstalled tree)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def export_format(path: str | Path) -> str:
    """ "onnx" or "pt2" from the output file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DeployError(
            f"{path}: unknown export format {suffix or '(no suffix)'!r}; name the output "
            "*.onnx (ONNX) or *.pt2 (torch.export program)"
        )
    return FORMATS[suffix]


def check_writable(path: str | Path) -> Path:
    """Create ``path``'s folder and make sure a file can be written there, before spending time
    on an export; raises ``DeployError`` naming the path otherwise."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder")
        probe_writable_folder(path.parent)
    except OSError as error:
        reason = error.strerror or str(error)
        raise DeployError(f"{path}: cannot write the exported model here ({reason})") from error
    return path


# ---------------------------------------------------------------------------------- export
@contextlib.contextmanager
def _layer_trace(module: nn.Module) -> Iterator[list[str]]:
    """Track which submodule is running (innermost last), to name the layer an error comes from."""
    stack: list[str] = []
    handles = []
    for name, child in module.named_modules():
        label = f"{name or '(top level)'} ({type(child).__name__})"

        def enter(_module: nn.Module, _args: Any, label: str = label) -> None:
            stack.append(label)

        def leave(_module: nn.Module, _args: Any, _output: Any) -> None:
            if stack:
                stack.pop()

        handles.append(child.register_forward_pre_hook(enter))
        handles.append(child.register_forward_hook(leave))
    try:
        yield stack
    finally:
        for handle in handles:
            handle.remove()


def first_error_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message (at most 400 characters), else its type."""
    text = str(error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:400]
    return type(error).__name__


def capture_program(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    dynamic_shapes: tuple[Mapping[int, Any], ...],
) -> torch.export.ExportedProgram:
    """``torch.export`` of ``module`` in eval mode (non-strict) with the given symbolic sizes.

    Size-dependent checks of the model become runtime assertions rather than specialisations, so
    the program stays valid for every size in the declared ranges. Raises ``DeployError`` naming
    the innermost layer that was running when the capture failed.
    """
    module = module.eval()
    config = torch.fx.experimental._config  # type: ignore[attr-defined]
    with _layer_trace(module) as stack, config.patch(backed_size_oblivious=True):
        try:
            return torch.export.export(
                module,
                example,
                dynamic_shapes=dynamic_shapes,
                strict=False,
                prefer_deferred_runtime_asserts_over_guards=True,
            )
        except Exception as error:
            where = f"layer {stack[-1]}" if stack else f"{type(module).__name__}"
            raise DeployError(
                f"cannot export {where}: torch.export cannot capture it ({first_error_line(error)})"
            ) from error


def _failed_layer(program: torch.export.ExportedProgram, error: BaseException) -> str | None:
    """The layer (module path and class) of the graph node that the ONNX translation failed on."""
    text = "\n".join(str(e) for e in _error_chain(error))
    match = re.search(r"translating node %(\w+)", text)
    if not match:
        return None
    for node in program.graph.nodes:
        if node.name == match.group(1):
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path, cls = list(stack.values())[-1]
                cls_name = cls.rsplit(".", 1)[-1] if isinstance(cls, str) else cls.__name__
                return f"{path or '(top level)'} ({cls_name}), operator {node.target}"
            return f"operator {node.target}"
    return None


def _error_chain(error: BaseException) -> list[BaseException]:
    chain = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _onnx_reason(error: BaseException) -> str:
    for item in _error_chain(error):
        if "No ONNX function found" in str(item):
            return first_error_line(item)
    return first_error_line(_error_chain(error)[-1])


def to_onnx(
    program: torch.export.ExportedProgram,
    example: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int = OPSET,
) -> Any:
    """The ``onnx.ModelProto`` of an exported program; raises ``DeployError`` naming the layer
    whose operator has no ONNX translation."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
            onnx_program = torch.onnx.export(
                program,
                example,
                input_names=list(input_names),
                output_names=list(output_names),
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
    except Exception as error:
        layer = _failed_layer(program, error)
        where = f"layer {layer}" if layer else "the model"
        raise DeployError(
            f"cannot export {where} to ONNX opset {opset}: {_onnx_reason(error)}"
        ) from error
    return onnx_program.model_proto


def _name_dimensions(model: Any, names: Mapping[str, Sequence[str | int | None]]) -> None:
    """Give the graph's inputs and outputs readable dimension names ("batch", "height", ...)."""
    for value in (*model.graph.input, *model.graph.output):
        if value.name not in names:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, names[value.name], strict=False):
            if isinstance(name, str):
                dim.ClearField("dim_value")
                dim.dim_param = name


def save_onnx(
    model: Any, path: str | Path, metadata: Mapping[str, str], dimension_names: Mapping
) -> Path:
    """Write an ``onnx.ModelProto`` with ``metadata`` (string pairs) atomically, after the ONNX
    checker accepted it."""
    import onnx

    _name_dimensions(model, dimension_names)
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = DISTRIBUTION
    model.producer_version = toolkit_version()
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_bytes(model.SerializeToString())
    return path


def save_pt2(
    program: torch.export.ExportedProgram, path: str | Path, metadata: Mapping[str, str]
) -> Path:
    """Write a ``torch.export`` program with the metadata (``PT2_METADATA`` inside the archive)
    atomically."""
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.export.save(
            program, temporary, extra_files={PT2_METADATA: json.dumps(dict(metadata), indent=1)}
        )
    return path


def export_network(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    dynamic_dims: Sequence[Mapping[int, Any]],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    metadata: Mapping[str, str],
    dimension_names: Mapping[str, Sequence[str | int | None]],
    opset: int = OPSET,
) -> Path:
    """Export ``module`` to ``path``: ONNX for ``*.onnx``, a ``torch.export`` program for
    ``*.pt2``.

    Args:
        example: example inputs (positional); their sizes must be inside the declared ranges.
        dynamic_dims: per input, ``{dimension: torch.export.Dim}`` of its symbolic sizes.
        input_names, output_names: the ONNX graph's input and output names.
        metadata: string pairs stored in the file (ONNX ``metadata_props``; ``PT2_METADATA``).
        dimension_names: ONNX input/output name -> a name per dimension (None keeps it).
    """
    kind = export_format(path)
    check_writable(path)
    program = capture_program(module, example, tuple(dynamic_dims))
    metadata = dict(metadata)
    if kind == "pt2":
        return save_pt2(program, path, metadata)
    metadata["onnx_opset"] = str(opset)
    model = to_onnx(program, example, input_names, output_names, opset)
    return save_onnx(model, path, metadata, dimension_names)


def load_pt2(path: str | Path, trust: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """A ``.pt2`` program written by ``export_network`` as a callable module, and its metadata.

    ``torch.export.load`` unpickles parts of the archive in full, so unless ``trust`` the
    archive is checked first: a pickled member that names anything beyond tensors,
    containers, numbers and strings is refused before anything in it runs
    (``upsample.core.trust.check_pt2_archive``).

    Raises:
        UntrustedFileError: naming the file and the member, when it could run code.
        DeployError: naming the file, when it is missing or not a readable program.
    """
    path = Path(path)
    extra = {PT2_METADATA: ""}
    if path.is_file() and zipfile.is_zipfile(path):
        check_pt2_archive(path, trust)
    try:
        program = torch.export.load(path, extra_files=extra)
    except FileNotFoundError as error:
        raise DeployError(f"{path}: file not found") from error
    except Exception as error:
        raise DeployError(
            f"{path}: not a readable torch.export program ({first_error_line(error)})"
        ) from error
    metadata = json.loads(extra[PT2_METADATA]) if extra[PT2_METADATA] else {}
    return program.module(), metadata


def json_list(values: Sequence[Any]) -> str:
    """A metadata value: a JSON list."""
    return json.dumps(list(values))
