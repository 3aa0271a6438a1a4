"""The training augmentation as batched tensor operations (``augment_on: device``) against the
albumentations reference: each operation with the same parameters, the distributions of scale,
crop position, flips and photometric changes over many seeded samples, masks aligned with their
images pixel for pixel, the same sample for the same (epoch, index) whatever the workers or the
batch, and ``seg fit`` through the CLI with the shipped config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from seg.data import device_augment as D
from seg.data.augment_params import AugmentSpec, collate_params, draw_params, motion_kernel
from seg.data.augment_params import source_region as region_of
from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataset, augment_collate
from seg.data.sources.folder import find_folder_pairs
from tests.seg.helpers import seeded_folder_data, write_folder_split

SAMPLES = 1000
#: two-sample Kolmogorov-Smirnov statistic allowed between the two paths' per-sample statistics:
#: with 1000 samples each, 0.087 is the 0.1% critical value of two draws of one distribution
KS_LIMIT = 0.1
#: shift allowed between the two distributions (in the statistic's units) before the KS
#: statistic counts it: OpenCV's fixed-point arithmetic rounds 0.1 level lower on average, which
#: moves the many tied values of these statistics across each other
KS_SHIFT = 0.5
#: difference allowed between two proportions (flips, unchanged images): 4 standard errors of
#: the difference at p = 0.5 with 1000 samples each
RATE_LIMIT = 0.09


def ks_statistic(a: np.ndarray, b: np.ndarray, shift: float = 0.0) -> float:
    """The two-sample Kolmogorov-Smirnov statistic, the largest gap between the empirical CDFs,
    where a CDF may be moved by up to ``shift`` sideways (Levy's form; 0: the usual one)."""
    a, b = np.sort(a), np.sort(b)
    values = np.concatenate([a, b])

    def cdf(sample: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.searchsorted(sample, at, side="right") / len(sample)

    gaps = (cdf(a, values) - cdf(b, values + shift), cdf(b, values) - cdf(a, values + shift))
    return float(max(gaps[0].max(), gaps[1].max(), 0.0))


def write_pair(folder: Path, name: str, image: np.ndarray, mask: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / "images" / f"{name}.png")
    Image.fromarray(mask).save(folder / "masks" / f"{name}.png")


def both_paths(
    folder: Path, spec: AugmentSpec, count: int = SAMPLES, num_classes: int = 3
) -> tuple[list[dict], dict]:
    """``count`` augmentations of the first pair under ``folder``, keys (epoch, 0) for epochs
    0..count-1: the albumentations items, and the device path's batch (uint8 (N, 3, h, w),
    masks (N, h, w))."""
    pairs = find_folder_pairs(folder)[:1]
    reference = SegmentationDataset(pairs, num_classes, spec.albumentations(), seed=7)
    device = SegmentationDataset(pairs, num_classes, seed=7, augment=spec)
    keys = [(epoch, 0) for epoch in range(count)]
    batch = augment_collate([device[key] for key in keys])
    out_size = spec.crop or tuple(batch["image"].shape[-2:])
    images, masks = D.augment_batch(batch["image"], batch["mask"], batch["augment"], out_size)
    return [reference[key] for key in keys], {"image": images, "mask": masks}


# --- each operation with given parameters --------------------------------------------------


@pytest.fixture(scope="module")
def smooth_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), (7, 7), 3)
    return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)


def jitter(b: float = 1, c: float = 1, s: float = 1, h: float = 0) -> A.ColorJitter:
    return A.ColorJitter((b, b), (c, c), (s, s), (h, h), p=1)


ONE = torch.ones(1)
# (name, albumentations transform with fixed parameters, our function, largest difference)
# Hue changes go through OpenCV's uint8 HSV (hue in 2-degree steps): a few levels apart.
OPERATIONS = [
    ("brightness", jitter(b=0.7), lambda x: D.adjust_brightness(x, ONE * 0.7), 1),
    ("contrast", jitter(c=1.3), lambda x: D.adjust_contrast(x, ONE * 1.3), 1),
    ("saturation", jitter(s=0.6), lambda x: D.adjust_saturation(x, ONE * 0.6), 1),
    ("hue", jitter(h=-0.05), lambda x: D.shift_hsv(x, ONE * -0.05, ONE * 0), 6),
    (
        "brightness_contrast",
        A.RandomBrightnessContrast((0.2, 0.2), (-0.2, -0.2), p=1),
        lambda x: D.brightness_contrast(x, ONE * 0.8, ONE * 0.2 * 255),
        1,
    ),
    ("gamma", A.RandomGamma((85, 85), p=1), lambda x: D.gamma_transform(x, ONE * 0.85), 1),
    (
        "hue_saturation",
        A.HueSaturationValue((4, 4), (-15, -15), (0, 0), p=1),
        lambda x: D.shift_hsv(x, ONE * 4 / 180, ONE * -15),
        6,
    ),
]


@pytest.mark.parametrize(("name", "reference", "ours", "limit"), OPERATIONS)
def test_each_operation_matches_albumentations(
    smooth_image: np.ndarray, name: str, reference: A.BasicTransform, ours: object, limit: int
) -> None:
    expected = reference(image=smooth_image)["image"].astype(int)
    images = torch.from_numpy(smooth_image).permute(2, 0, 1)[None].float()
    got = ours(images)[0].round().permute(1, 2, 0).numpy().astype(int)
    difference = np.abs(got - expected)
    assert difference.max() <= limit and difference.mean() < 0.6, name


def test_motion_blur_and_noise(smooth_image: np.ndarray) -> None:
    kernel = motion_kernel(np.random.default_rng(3), 5)
    assert kernel.shape == (5, 5) and np.isclose(kernel.sum(), 1) and (kernel > 0).sum() >= 3
    images = torch.from_numpy(smooth_image).permute(2, 0, 1)[None].float()
    blurred = D.motion_blur(images, torch.from_numpy(kernel)[None])
    expected = cv2.filter2D(smooth_image, -1, kernel)
    assert np.abs(blurred[0].round().permute(1, 2, 0).numpy() - expected).max() <= 1
    noise = D.hashed_normal(torch.tensor([5, 6]), (3, 64, 64))
    assert abs(float(noise.mean())) < 0.02 and abs(float(noise.std()) - 1) < 0.02
    assert abs(float(torch.corrcoef(noise.flatten(1))[0, 1])) < 0.02  # seeds independent
    assert torch.equal(noise[1], D.hashed_normal(torch.tensor([6]), (3, 64, 64))[0])


def test_geometry_matches_opencv(smooth_image: np.ndarray) -> None:
    """Scale (bilinear as ``cv2.resize``), pad with 0 / 255, crop and mirror, for drawn
    parameters: images within one level of OpenCV, masks the source pixel under each output
    pixel's centre."""
    height, width = smooth_image.shape[:2]
    mask = np.random.default_rng(1).integers(0, 5, (height, width), dtype=np.uint8)
    spec = AugmentSpec.create(36, (0.6, 1.8), True, 0.0)
    for seed in range(60):
        params = draw_params(spec, np.random.default_rng(seed), height, width)
        top, bottom, left, right = region_of(params)
        params["region"] = np.array((top, left))
        params["size"] = np.array((bottom - top, right - left))
        (scaled_h, scaled_w), (y0, x0) = params["scaled"], params["offset"]
        image = cv2.resize(smooth_image, (int(scaled_w), int(scaled_h)))
        rows = np.minimum((2 * np.arange(scaled_h) + 1) * height // (2 * scaled_h), height - 1)
        cols = np.minimum((2 * np.arange(scaled_w) + 1) * width // (2 * scaled_w), width - 1)
        labels = mask[rows][:, cols]
        pad_y, pad_x = max(0, -y0), max(0, -x0)
        padding = ((pad_y, max(0, 36 - scaled_h - pad_y)), (pad_x, max(0, 36 - scaled_w - pad_x)))
        image = np.pad(image, (*padding, (0, 0)))
        labels = np.pad(labels, padding, constant_values=255)
        window = np.s_[max(0, y0) : max(0, y0) + 36, max(0, x0) : max(0, x0) + 36]
        image, labels = image[window], labels[window]
        if params["flip"]:
            image, labels = image[:, ::-1], labels[:, ::-1]
        region = torch.from_numpy(np.array(smooth_image[top:bottom, left:right]))
        got, got_labels = D.augment_batch(
            region.permute(2, 0, 1)[None],
            torch.from_numpy(np.array(mask[top:bottom, left:right]))[None],
            collate_params([params]),
            (36, 36),
        )
        assert np.abs(got[0].permute(1, 2, 0).numpy().astype(int) - image).max() <= 1, seed
        assert np.array_equal(got_labels[0].numpy(), labels), seed


# --- distributions over many seeded samples ---------------------------------------------------


def rate_within(rate: float, p: float, draws: int) -> bool:
    """Whether an observed rate is within 4 standard errors of ``p``."""
    return abs(rate - p) <= 4 * np.sqrt(p * (1 - p) / draws) + 1e-9


def covers(values: np.ndarray, low: float, high: float, share: float = 0.02) -> bool:
    """Whether ``values`` lie in [low, high] and reach both ends (within ``share`` of the
    range)."""
    margin = share * (high - low)
    return (
        values.min() >= low - 1e-6
        and values.max() <= high + 1e-6
        and (values.min() < low + margin and values.max() > high - margin)
    )


def test_drawn_parameters_follow_the_albumentations_pipeline() -> None:
    """The probabilities and ranges of the parameters drawn for the device are those of the
    albumentations transforms that ``train_transform`` builds (read from the objects)."""
    draws = 4000
    for augmentation in ("default", "road"):
        spec = AugmentSpec.create(40, (0.75, 1.75), True, 0.25, augmentation)
        steps = {type(t).__name__: t for t in spec.albumentations().transforms}
        params = collate_params(
            [draw_params(spec, np.random.default_rng(seed), 48, 64) for seed in range(draws)]
        )
        values, groups = params["params"], params["groups"]
        rate = {name: len(index) / draws for name, index in groups.items()}
        assert rate_within(values["flip"].float().mean().item(), steps["HorizontalFlip"].p, draws)
        scale = values["scaled"][:, 0].float() / 48
        low, high = steps["RandomScale"].scale_limit
        assert covers(scale.numpy(), 1 + low - 1 / 48, 1 + high, share=0.05)  # int(48 * s) / 48
        if augmentation == "default":
            jitter = steps["ColorJitter"]
            applied = values["jitter"].bool()
            assert rate_within(applied.float().mean().item(), jitter.p, draws)
            for name in ("brightness", "contrast", "saturation", "hue"):
                assert covers(values[name][applied].numpy(), *getattr(jitter, name)), name
            assert sum(rate[f"jitter0_{name}"] for name in ("brightness", "hue")) > 0
            continue
        photometric = {type(t).__name__: t for t in spec.albumentations().transforms[4:]}
        brightness_contrast = photometric["RandomBrightnessContrast"]
        assert rate_within(rate["brightness_contrast"], brightness_contrast.p, draws)
        on = groups["brightness_contrast"]
        alpha = values["alpha"][on].numpy() - 1
        assert covers(alpha, *brightness_contrast.contrast_limit)
        assert covers(values["beta"][on].numpy() / 255, *brightness_contrast.brightness_limit)
        gamma = photometric["RandomGamma"]
        assert rate_within(rate["gamma"], gamma.p, draws)
        assert covers(values["gamma"][groups["gamma"]].numpy() * 100, *gamma.gamma_limit)
        hsv = photometric["HueSaturationValue"]
        assert rate_within(rate["hsv"], hsv.p, draws)
        shifts = values["hue_shift"][groups["hsv"]].numpy() * 180
        assert covers(shifts, *hsv.hue_shift_limit)
        assert covers(values["sat_shift"][groups["hsv"]].numpy(), *hsv.sat_shift_limit)
        one_of = photometric["OneOf"]
        blur, noise = one_of.transforms
        assert rate_within(rate["blur"], one_of.p * 0.5, draws)
        assert rate_within(rate["noise"], one_of.p * 0.5, draws)
        sizes = {
            int((k > 0).any(axis=0).sum() + 0) for k in values["kernel"][groups["blur"]].numpy()
        }
        assert sizes <= set(range(1, blur.blur_limit[1] + 1))
        std = values["noise_std"][groups["noise"]].numpy() / 255
        assert covers(std, *noise.std_range)


def geometry_statistics(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Of an augmented ramp (red = 3 x + 20, green = 4 y + 20): the scale (from the ramps'
    slopes), the mean red and green (where the crop lies), the padded fraction, the flip."""
    red, green = image[0].astype(float), image[1].astype(float)
    valid = mask != 255
    both_x = valid[:, 1:] & valid[:, :-1]
    both_y = valid[1:] & valid[:-1]
    slope_x = np.diff(red, axis=1)[both_x].mean()
    slope_y = np.diff(green, axis=0)[both_y].mean()
    rows, cols = valid.any(axis=1), valid.any(axis=0)
    return {
        "scale_x": 3 / max(abs(slope_x), 1e-6),
        "scale_y": 4 / max(abs(slope_y), 1e-6),
        "red": red[valid].mean(),
        "green": green[valid].mean(),
        "padded": 1 - valid.mean(),
        "top_padding": float(np.argmax(rows)),
        "left_padding": float(np.argmax(cols)),
        "flip": float(slope_x < 0),
    }


def test_geometry_distributions_match_albumentations(tmp_path: Path) -> None:
    yy, xx = np.mgrid[:48, :64]
    ramp = np.stack([3 * xx + 20, 4 * yy + 20, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    write_pair(tmp_path, "ramp", ramp, np.zeros((48, 64), dtype=np.uint8))
    # a crop larger than most scaled heights and some widths: padding at random places
    spec = AugmentSpec.create(56, (0.75, 1.75), True, 0.0)
    reference, device = both_paths(tmp_path, spec)
    ours = [
        geometry_statistics(image.numpy(), mask.numpy())
        for image, mask in zip(device["image"], device["mask"], strict=True)
    ]
    theirs = [geometry_statistics(r["image"].numpy(), r["mask"].numpy()) for r in reference]
    for key, shift in (
        ("scale_x", 0.01),
        ("scale_y", 0.01),
        ("red", KS_SHIFT),
        ("green", KS_SHIFT),
    ):
        a, b = (np.array([s[key] for s in stats]) for stats in (ours, theirs))
        assert ks_statistic(a, b, shift) < KS_LIMIT, key
    for key in ("padded", "top_padding", "left_padding"):
        a, b = (np.array([s[key] for s in stats]) for stats in (ours, theirs))
        assert ks_statistic(a, b) < KS_LIMIT, key
        assert (a > 0).mean() > 0.05, key  # padding happens, at different places
    flips = [np.mean([s["flip"] for s in stats]) for stats in (ours, theirs)]
    assert abs(flips[0] - flips[1]) < RATE_LIMIT
    scales = np.array([s["scale_x"] for s in ours])
    assert scales.min() > 0.7 and scales.max() < 1.8  # the drawn range, seen through the ramp


def photometric_statistics(image: np.ndarray) -> dict[str, float]:
    """Per channel means, luma spread, saturation and high-frequency energy (blur lowers it,
    noise raises it) of an image (3, H, W)."""
    pixels = image.astype(float)
    luma = 0.299 * pixels[0] + 0.587 * pixels[1] + 0.114 * pixels[2]
    high, low = pixels.max(axis=0), pixels.min(axis=0)
    return {
        "red": pixels[0].mean(),
        "green": pixels[1].mean(),
        "blue": pixels[2].mean(),
        "contrast": luma.std(),
        "saturation": ((high - low) / np.maximum(high, 1)).mean(),
        "detail": np.abs(np.diff(pixels, axis=2)).mean(),
    }


@pytest.mark.parametrize("augmentation", ["default", "road"])
def test_photometric_distributions_match_albumentations(tmp_path: Path, augmentation: str) -> None:
    hue = np.linspace(0, 179, 48, dtype=np.uint8)[None, :].repeat(32, 0)
    hsv = np.stack([hue, np.linspace(60, 255, 32)[:, None].repeat(48, 1), 200 + 0 * hue], -1)
    image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    image[8:24:2, 8:40] //= 2  # stripes: detail for blur and noise to change
    write_pair(tmp_path, "colours", image, np.zeros((32, 48), dtype=np.uint8))
    spec = AugmentSpec.create(None, (1.0, 1.0), False, 0.25, augmentation)
    reference, device = both_paths(tmp_path, spec)
    source = torch.from_numpy(image).permute(2, 0, 1)
    unchanged = [
        np.mean([torch.equal(image, source) for image in images])
        for images in (device["image"], [r["image"] for r in reference])
    ]
    assert abs(unchanged[0] - unchanged[1]) < RATE_LIMIT
    ours = [photometric_statistics(image.numpy()) for image in device["image"]]
    theirs = [photometric_statistics(r["image"].numpy()) for r in reference]
    for key in ours[0]:
        a, b = (np.array([s[key] for s in stats]) for stats in (ours, theirs))
        shift = {"saturation": 0.005, "detail": 0.05}.get(key, KS_SHIFT)
        assert ks_statistic(a, b, shift) < KS_LIMIT, key
        assert a.std() > 0, key  # the statistic does vary


# --- masks aligned with their images --------------------------------------------------------

COLOURS = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220]])


def test_masks_stay_aligned_with_images_of_different_sizes(tmp_path: Path) -> None:
    """Images whose colour encodes their label (8x8 blocks), of two sizes in one batch: after
    scaling, padding, cropping and flipping, every pixel of a label's pure colour (all its
    bilinear taps in one block) has that label, padded pixels are 0 with label 255, and nothing
    else is padded."""
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate([(40, 56), (64, 48)]):
        blocks = rng.integers(0, 3, (height // 8, width // 8))
        labels = np.kron(blocks, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
        write_pair(tmp_path, f"{index}", COLOURS[labels].astype(np.uint8), labels)
    pairs = find_folder_pairs(tmp_path)
    spec = AugmentSpec.create(48, (0.6, 1.6), True, 0.0)
    dataset = SegmentationDataset(pairs, 3, seed=3, augment=spec)
    batch = augment_collate([dataset[(epoch, index)] for epoch in range(40) for index in (0, 1)])
    assert batch["image"].shape[-2:] != (48, 48)  # regions of different sizes, padded
    images, masks = D.augment_batch(batch["image"], batch["mask"], batch["augment"], (48, 48))
    pixels = images.permute(0, 2, 3, 1).long()
    padded = masks == 255
    assert padded.any() and (~padded).any()
    assert (pixels[padded] == 0).all() and (pixels[~padded].sum(dim=-1) > 0).all()
    distance = (pixels[:, :, :, None] - torch.from_numpy(COLOURS)).abs().amax(dim=-1)
    pure = distance.amin(dim=-1) <= 1
    assert pure.float().mean() > 0.5
    assert torch.equal(distance.argmin(dim=-1)[pure], masks[pure].long())


# --- the same sample for the same (epoch, index) -----------------------------------------------


def device_loader(folder_root: Path, workers: int, **options: object) -> SegDataModule:
    return seeded_folder_data(
        folder_root, workers, augmentation="road", color_jitter=0.5, augment_on="device", **options
    )


def augmented_epoch(data: SegDataModule, epoch: int) -> list[dict]:
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [data.on_after_batch_transfer(batch, 0) for batch in loader]


def test_same_sample_for_any_worker_count_and_batch(folder_root: Path, tmp_path: Path) -> None:
    cache = {"cache_dir": str(tmp_path / "cache")}
    without = augmented_epoch(device_loader(folder_root, 0, **cache), 1)
    with_workers = augmented_epoch(device_loader(folder_root, 2, **cache), 1)
    assert without[0]["image"].shape == (2, 3, 24, 24) and without[0]["image"].dtype == torch.uint8
    for a, b in zip(without, with_workers, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    other_epoch = augmented_epoch(device_loader(folder_root, 0, **cache), 2)
    assert not torch.equal(without[0]["image"], other_epoch[0]["image"])
    # a sample alone gives what it gives in a batch of others (parameters and noise are per
    # sample; float rounding may put a value on the other side of .5 at a few pixels)
    dataset = device_loader(folder_root, 0, cache=False).datasets["train"]
    spec = dataset.augment
    keys = [(epoch, index) for epoch in range(4) for index in range(6)]
    batch = augment_collate([dataset[key] for key in keys])
    together, together_masks = D.augment_batch(
        batch["image"], batch["mask"], batch["augment"], spec.crop
    )
    for position in (0, 7, 23):
        alone = augment_collate([dataset[keys[position]]])
        single, mask = D.augment_batch(alone["image"], alone["mask"], alone["augment"], spec.crop)
        difference = (single[0].int() - together[position].int()).abs()
        assert difference.max() <= 1 and (difference > 0).float().mean() < 0.01
        assert torch.equal(mask[0], together_masks[position])


def test_without_a_crop_images_of_different_sizes_are_padded_after_the_changes(
    tmp_path: Path,
) -> None:
    """No crop: each image keeps its size (flipped within it), the batch is padded to the
    largest with 0 and 255, after the brightness change as albumentations + batching do."""
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate([(20, 30), (26, 22)]):
        image = rng.integers(30, 200, (height, width, 3), dtype=np.uint8)
        write_pair(tmp_path, f"{index}", image, np.ones((height, width), dtype=np.uint8))
    spec = AugmentSpec.create(None, (1.0, 1.0), True, 0.4, "road")
    dataset = SegmentationDataset(find_folder_pairs(tmp_path), 3, seed=1, augment=spec)
    batch = augment_collate([dataset[(epoch, index)] for epoch in range(8) for index in (0, 1)])
    assert batch["image"].shape[-2:] == (26, 30)
    images, masks = D.augment_batch(
        batch["image"], batch["mask"], batch["augment"], (26, 30), False
    )
    for sample in range(16):
        height, width = (20, 30) if sample % 2 == 0 else (26, 22)
        assert (masks[sample, :height, :width] == 1).all()
        assert (masks[sample, height:] == 255).all() and (masks[sample, :, width:] == 255).all()
        assert (images[sample, :, height:] == 0).all() and (images[sample, :, :, width:] == 0).all()
    assert images.float().std() > 0


def test_evaluation_batches_pass_unchanged(folder_root: Path) -> None:
    data = device_loader(folder_root, 0, cache=False)
    batch = next(iter(data.val_dataloader()))
    assert data.on_after_batch_transfer(batch, 0) is batch
    train = next(iter(data.train_dataloader()))
    assert "augment" in train and "augment" not in data.on_after_batch_transfer(train, 0)


def test_augment_on_auto_and_errors(folder_root: Path) -> None:
    options = {"format": "folder", "root": str(folder_root), "num_classes": 3}
    data = SegDataModule(**options)
    assert data.augment_on == "auto" and not data.augments_on_device  # no trainer: the CPU
    cpu = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")))
    gpu = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    data.trainer = cpu
    assert not data.augments_on_device
    data.trainer = gpu
    assert data.augments_on_device
    with pytest.raises(ValueError, match="augment_on must be one of"):
        SegDataModule(**options, augment_on="gpu")


# --- seg fit through the CLI ----------------------------------------------------------------


@pytest.mark.slow
def test_fit_with_augmentation_on_the_device(tmp_path: Path) -> None:
    """``seg fit`` with the shipped config and its defaults (progress bar, W&B offline),
    ``--data.augment_on device`` and the decoded stores in a given folder, on CPU: a few steps
    and a validation."""
    from tests import processes

    write_folder_split(tmp_path / "data" / "train", 6)
    write_folder_split(tmp_path / "data" / "val", 2, seed=1, ignore_border=True)
    command = processes.python_command(
        "seg.cli", "fit",
        "--config", str(processes.REPO / "configs/seg/fcn8s_fashion.yaml"),
        "--data.format", "folder", "--data.root", str(tmp_path / "data"),
        "--data.num_classes", "3", "--data.batch_size", "2", "--data.crop_size", "32",
        "--data.augment_on", "device",
        "--data.cache", "true", "--data.cache_dir", str(tmp_path / "stores"),
        "--model.network.width", "0.0625",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
    )  # fmt: skip
    env = processes.ddp_env(UPSAMPLE_CACHE_DIR=str(tmp_path / "cache"))
    result = processes.run(command, tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.output[-4000:]
    assert "Epoch 0" in result.output  # the progress bar ran
    run = tmp_path / "runs" / "seg" / "version_0"
    assert "augment_on: device" in (run / "config.yaml").read_text()
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 3  # 6 photos, batch 2
    assert len(list((tmp_path / "stores").glob("*.u8store"))) == 2  # train and val
    assert list((run / "wandb").glob("offline-run-*"))
