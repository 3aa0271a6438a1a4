"""Running a model that this toolkit exported (``upsample.core.deploy``) in ONNX Runtime: a session
with errors that name the file and say what was expected, and the thread discipline of an engine
that brings its own thread pool. Nothing here imports Lightning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from upsample.core.deploy import KIND_KEY, DeployError, first_error_line

#: the command that writes a model of each kind.
EXPORT_COMMANDS = {
    "segmentation": "seg export",
    "generator": "gan export",
    "translator": "gan export",
}


class OnnxModel:
    """An ONNX Runtime session over a model that this toolkit exported.

    Args:
        path: the ``.onnx`` file.
        kind: the model kind it must be ("segmentation" or "generator").
        threads: intra-op threads; None: as many as torch uses, so that both engines compare
            alike; 0: ONNX Runtime's default, one per physical core.

    Attributes: ``path``, ``kind``, ``metadata`` (dict of strings), ``input_names`` (in the
    graph's order), ``input_name`` and ``input_shape`` of the first input (ints for fixed
    dimensions, names for symbolic ones).

    Raises:
        DeployError: naming the file, when it is missing, not a readable ONNX model, or not a
            model of this toolkit of that kind.
    """

    def __init__(
        self, path: str | Path, kind: str, threads: int | None = None, num_inputs: int = 1
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise DeployError(
                "the onnxruntime engine needs the onnxruntime package: "
                'pip install -c constraints.txt -e ".[deploy]"'
            ) from error
        self.path = Path(path)
        self.kind = kind
        if not self.path.is_file():
            raise DeployError(f"{self.path}: file not found")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        threads = torch.get_num_threads() if threads is None else threads
        if threads:
            options.intra_op_num_threads = threads
        # Folder inference decodes and writes on other threads: ONNX Runtime's threads must not
        # spin on the cores while they wait for the next batch.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        check_external_data(self.path)
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:
            raise DeployError(
                f"{self.path}: not a readable ONNX model ({first_error_line(error)})"
            ) from error
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        found = self.metadata.get(KIND_KEY)
        if found is None:
            raise DeployError(
                f"{self.path}: an ONNX model without this toolkit's metadata; expected a "
                f"{kind} model written by `{EXPORT_COMMANDS[kind]}`"
            )
        if found != kind:
            raise DeployError(
                f"{self.path}: a {found} model; expected a {kind} model written by "
                f"`{EXPORT_COMMANDS[kind]}`"
            )
        inputs = self.session.get_inputs()
        if len(inputs) != num_inputs:
            raise DeployError(
                f"{self.path}: expected {num_inputs} input(s), the model has {len(inputs)}"
            )
        self.input_names = [model_input.name for model_input in inputs]
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.output_names = [output.name for output in self.session.get_outputs()]

    @contextlib.contextmanager
    def reading_metadata(self) -> Iterator[None]:
        """Around code that reads ``metadata``: a missing or malformed entry (KeyError,
        ValueError, TypeError) becomes a ``DeployError`` that names the file and the command
        that re-exports it."""
        try:
            yield
        except (KeyError, ValueError, TypeError) as error:
            raise DeployError(
                f"{self.path}: incomplete {self.kind} metadata ({error!r}); re-export it with "
                f"`{EXPORT_COMMANDS[self.kind]}`"
            ) from error

    def fixed_dimension(self, index: int) -> int | None:
        """The input's size along ``index`` if the model fixes it, else None."""
        size = self.input_shape[index] if index < len(self.input_shape) else None
        return size if isinstance(size, int) else None

    def run(self, *arrays: np.ndarray) -> np.ndarray:
        """The first output for ``arrays`` (one per input, in order; run as float32)."""
        feed = {
            name: np.ascontiguousarray(array, dtype=np.float32)
            for name, array in zip(self.input_names, arrays, strict=True)
        }
        try:
            return self.session.run(self.output_names[:1], feed)[0]
        except Exception as error:
            shapes = ", ".join(str(array.shape) for array in feed.values())
            raise DeployError(
                f"{self.path}: ONNX Runtime failed on inputs of shape {shapes} "
                f"({first_error_line(error)})"
            ) from error

    def run_tensor(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The first output for ``inputs`` (one per input; any device and float type, run as
        float32 on the CPU), as a CPU tensor."""
        arrays = [tensor.detach().to("cpu", torch.float32).numpy() for tensor in inputs]
        return torch.from_numpy(self.run(*arrays))


def check_external_data(path: str | Path) -> None:
    """Refuse an ONNX model whose tensors read their data from a file outside the model's
    folder (an absolute path, ``..``, or a link that leads out): an exported model keeps its
    external data beside it, and a model from elsewhere must not make the engine read other
    files. ONNX Runtime refuses these too, but without saying which tensor or file; without the
    ``onnx`` package only its check applies.

    Raises:
        DeployError: naming the model, the tensor and the location.
    """
    try:
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data
    except ImportError:
        return
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not an ONNX model: the session says so, with its own reason
        return
    folder = path.resolve().parent
    for tensor in _graph_tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise DeployError(
                f"{path}: refused: tensor {tensor.name!r} reads its data from {location!r}, "
                f"outside the model's folder {folder}; expected external data files beside "
                "the model (as `seg export` / `gan export` write them)"
            )


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every ``TensorProto`` of an ONNX graph: initializers and node attributes, subgraphs
    included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


@contextlib.contextmanager
def torch_on_one_thread(enabled: bool = True) -> Iterator[None]:
    """While the block runs an engine with its own thread pool (ONNX Runtime), torch's own work
    (conversions, argmax, blending) runs on one thread, or its idle OpenMP threads spin on the
    cores the engine computes on (measured: 2.6x slower folder inference on 2 cores). The thread
    count is restored afterwards; ``enabled=False`` changes nothing."""
    previous = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
