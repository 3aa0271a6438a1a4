"""The models an app serves, loaded once when it starts: a segmenter, a generator, a translator.

``load_models`` is the one place where the app reads a checkpoint or an exported model; each
model runs as its command runs it (``seg predict``, ``gan sample``, ``gan translate``), with that
command's defaults, so the app shows what the command writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn

from seg.inference.predictor import FolderPredictor
from seg.visualize import Colours, full_palette

Engine = Literal["torch", "onnxruntime"]


def engine_of(path: str | Path) -> Engine:
    """The engine that runs a model file: ONNX Runtime for ``*.onnx``, PyTorch otherwise (a
    ``fit`` checkpoint)."""
    return "onnxruntime" if Path(path).suffix.lower() == ".onnx" else "torch"


@dataclass(frozen=True)
class ModelSource:
    """A model file and the engine that runs it (``torch``: a ``fit`` checkpoint;
    ``onnxruntime``: an ``export`` ``.onnx`` file)."""

    path: Path
    engine: Engine

    @classmethod
    def of(cls, path: str | Path) -> ModelSource:
        """``path`` with the engine its suffix says (``engine_of``)."""
        return cls(Path(path), engine_of(path))


def predictor_defaults() -> dict[str, Any]:
    """``seg predict``'s defaults for the ``FolderPredictor`` arguments it takes from its flags
    (tiling, batch size, precision, device...), so the app predicts as the command does."""
    from seg.predict import PREDICTOR_FLAGS, folder_predict_parser

    parser = folder_predict_parser()
    return {flag: parser.get_default(flag) for flag in PREDICTOR_FLAGS}


@dataclass
class SegmenterModel:
    """A segmenter as ``seg predict`` runs it: ``predictors`` without and with flip TTA,
    ``class_names`` and ``palette`` (the dataset's, else ``class_<i>`` and the VOC colours)."""

    source: ModelSource
    predictors: tuple[FolderPredictor, FolderPredictor]
    class_names: list[str]
    colours: Colours

    def predictor(self, tta: bool) -> FolderPredictor:
        """The predictor with (``tta``) or without flip test-time augmentation."""
        return self.predictors[bool(tta)]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        """The colour of each class, (K,) RGB triples, as overlays and mask files draw them."""
        colours = full_palette(self.colours)[: self.num_classes]
        return [(int(red), int(green), int(blue)) for red, green, blue in colours]


@dataclass
class GeneratorModel:
    """A generator as ``gan sample`` runs it: noise (N, ``nz``) -> images (N, ``channels``,
    ``image_size``, ``image_size``) in [-1, 1] (the EMA weights of a checkpoint, or an exported
    model in ONNX Runtime)."""

    source: ModelSource
    network: Callable[[Tensor], Tensor]
    nz: int
    channels: int
    image_size: int


@dataclass
class TranslatorModel:
    """A translator's generator (pix2pix or OASIS) as ``gan translate`` runs it (EMA weights),
    and what its input is (``spec``: label maps of ``spec.num_classes`` classes plus void, or RGB
    images, at ``spec.image_size``)."""

    source: ModelSource
    network: nn.Module
    spec: Any  # gan.translation.paired_data.InputSpec


@dataclass
class LoadedModels:
    """What one app serves; at least one of the three is loaded."""

    segmenter: SegmenterModel | None = None
    generator: GeneratorModel | None = None
    translator: TranslatorModel | None = None


def _load_segmenter(source: ModelSource, trust: bool, **predictor_options: Any) -> SegmenterModel:
    options = {**predictor_defaults(), "progress": False, **predictor_options}
    options.pop("tta")  # one predictor without and one with
    if source.engine == "onnxruntime":
        from seg.deploy import OnnxSegmenter

        if options["precision"] == "bf16" or options["device"] not in ("auto", "cpu"):
            raise ValueError(f"{source.path}: ONNX Runtime runs the model's float32 on the CPU")
        network: Any = OnnxSegmenter(source.path)
        class_names, colours, channels_last = network.class_names, network.palette, False
    else:
        from seg.network_io import load_network_and_hparams

        network, hparams = load_network_and_hparams(source.path, map_location="cpu", trust=trust)
        class_names = network.class_names or [
            f"class_{index}" for index in range(int(hparams["num_classes"]))
        ]
        colours, channels_last = network.palette, bool(hparams.get("channels_last", True))
    predictors = tuple(
        FolderPredictor(network, tta=tta, channels_last=channels_last, **options)
        for tta in (False, True)
    )
    return SegmenterModel(source, predictors, list(class_names), colours)  # type: ignore[arg-type]


def _load_generator(source: ModelSource, trust: bool) -> GeneratorModel:
    if source.engine == "onnxruntime":
        from gan.dcgan.deploy import OnnxGenerator

        network: Any = OnnxGenerator(source.path)
    else:
        from gan.dcgan.network_io import load_generator

        network = load_generator(source.path, ema=True, map_location="cpu", trust=trust)
    return GeneratorModel(
        source, network, int(network.nz), int(network.channels), int(network.image_size)
    )


def _load_translator(source: ModelSource, trust: bool) -> TranslatorModel:
    if source.engine != "torch":
        raise ValueError(
            f"{source.path}: a translator is a pix2pix or OASIS checkpoint of `gan fit` (*.ckpt)"
        )
    from gan.translation.loading import load_translator

    network, spec = load_translator(source.path, ema=True, map_location="cpu", trust=trust)
    return TranslatorModel(source, network, spec)


def load_models(
    segmenter: ModelSource | None = None,
    generator: ModelSource | None = None,
    translator: ModelSource | None = None,
    trust: bool = False,
    **predictor_options: Any,
) -> LoadedModels:
    """Load the models an app serves, once: a segmenter (``seg fit`` checkpoint or ``seg
    export`` ONNX model), a generator (``gan fit`` checkpoint, EMA weights, or ``gan export``
    ONNX model) and a translator (pix2pix or OASIS ``gan fit`` checkpoint, EMA weights).

    Args:
        trust: the user vouches for the checkpoints (``--trust_checkpoint``): they are
            loaded in full, running any code they hold, and classes they name may be imported
            from any package (``upsample.core.trust``). The only place it is passed on.
        predictor_options: ``FolderPredictor`` arguments that differ from ``seg predict``'s
            defaults (``tile_size``, ``overlap``...).

    Raises:
        ValueError: no model given, or one the app cannot serve; ``CheckpointError`` and
            ``DeployError`` (also ValueErrors) name the file and what does not fit.
    """
    if segmenter is None and generator is None and translator is None:
        raise ValueError("the app needs at least one model: a segmenter, generator or translator")
    return LoadedModels(
        segmenter=_load_segmenter(segmenter, trust, **predictor_options) if segmenter else None,
        generator=_load_generator(generator, trust) if generator else None,
        translator=_load_translator(translator, trust) if translator else None,
    )
