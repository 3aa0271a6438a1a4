"""FID and KID: the standard Inception feature network found offline (``features``), the
metric over features (``metric``), the evaluator that owns the flow with its real-feature cache
(``evaluator``), and the schedule on which the Lightning modules score while fitting
(``validation``).

``gan fid``, the Lightning modules and the benchmarks import from here; it is the one place to
import FID from.
"""

from gan.fid.evaluator import (
    FID_CACHE_ENV,
    FIDEvaluator,
    default_cache_dir,
    load_cached_features,
    real_features_cache_path,
    save_cached_features,
)
from gan.fid.features import (
    FID_HELPER_SHA1,
    FID_WEIGHTS_ENV,
    FIDWeightsError,
    build_feature_extractor,
    extract_features,
    find_inception_weights,
    to_uint8,
)
from gan.fid.metric import FIDKID, fid_from_features

__all__ = [
    "FIDKID",
    "FID_CACHE_ENV",
    "FID_HELPER_SHA1",
    "FID_WEIGHTS_ENV",
    "FIDEvaluator",
    "FIDWeightsError",
    "build_feature_extractor",
    "default_cache_dir",
    "extract_features",
    "fid_from_features",
    "find_inception_weights",
    "load_cached_features",
    "real_features_cache_path",
    "save_cached_features",
    "to_uint8",
]
