"""How ``bench.label_to_photo`` judges photos painted from label maps: the FCN-score (a segmenter
trained on real photos reads them, scored against the label maps), FID/KID against the real
photos, and diversity (how much one label map's photos differ across seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.transforms.v2 import functional as TF

from bench import harness
from gan.core.data import to_model_range
from gan.fid import FIDEvaluator
from gan.translation.paired_data import read_label_values
from seg.metrics import scores_from_confusion_matrix
from upsample.core.io import read_image


def fcn_scores(confusion: torch.Tensor) -> dict[str, Any]:
    """The FCN-score of Isola et al. (2017) from a confusion matrix (rows = label map,
    columns = segmenter): per-pixel accuracy, per-class accuracy (mean recall over the classes in
    the label maps) and class IoU (mean over the classes in the label maps or the predictions),
    plus each class's IoU (None where undefined)."""
    scores = scores_from_confusion_matrix(confusion)
    per_class_iou = [None if v != v else float(v) for v in scores.per_class_iou.tolist()]
    return {
        "pixel_accuracy": scores.pixel_accuracy,
        "class_accuracy": scores.mean_accuracy,
        "class_iou": scores.mean_iou,
        "per_class_iou": per_class_iou,
        "pixels": scores.num_pixels,
    }


class FCNScorer:
    """Accumulates one confusion matrix: segment photos, compare with label maps (void ignored)."""

    def __init__(self, network: torch.nn.Module, num_classes: int, void: int) -> None:
        self.network = network.eval()
        self.confusion = MulticlassConfusionMatrix(num_classes, ignore_index=void)

    @torch.no_grad()
    def update(self, photo: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``photo`` (3, h, w) in [0, 1], resized bilinearly to the labels' (H, W) if needed;
        returns the predicted classes (H, W)."""
        size = tuple(labels.shape[-2:])
        if tuple(photo.shape[-2:]) != size:
            photo = F.interpolate(photo[None], size=size, mode="bilinear", align_corners=False)[0]
        prediction = self.network(photo[None].float()).argmax(dim=1)[0]
        self.confusion.update(prediction.flatten(), labels.flatten())
        return prediction

    def scores(self) -> dict[str, Any]:
        """The FCN-score of everything updated so far."""
        return fcn_scores(self.confusion.compute())


def photo(path: Path, size: list[int] | None = None) -> torch.Tensor:
    """uint8 (3, H, W), resized (antialiased) to ``size`` when given."""
    image = TF.pil_to_tensor(read_image(path, "RGB"))
    return image if size is None else TF.resize(image, size, antialias=True)


def fcn_score_sets(
    network: torch.nn.Module,
    label_paths: list[Path],
    photo_sets: dict[str, list[torch.Tensor]],
    num_classes: int,
    void: int,
) -> dict[str, dict[str, Any]]:
    """The FCN-score of each set of photos (uint8, one per label map, any size) against the full
    resolution label maps."""
    scorers = {name: FCNScorer(network, num_classes, void) for name in photo_sets}
    for index, label_path in enumerate(label_paths):
        labels = torch.from_numpy(read_label_values(label_path).astype(np.int64))
        for name, photos in photo_sets.items():
            scorers[name].update(photos[index].float() / 255, labels)
        if (index + 1) % 50 == 0:
            harness.log(f"[segment] {index + 1}/{len(label_paths)}")
    return {name: scorer.scores() for name, scorer in scorers.items()}


def distribution_scores(
    features: str, reference: list[torch.Tensor], sets: dict[str, list[torch.Tensor]]
) -> dict[str, Any]:
    """FID and KID of each set of uint8 photos against ``reference`` (the real test photos at
    the same resolution), with one feature network and KID subset size for all."""
    harness.log(f"[fid] {features} features of {len(sets)} photo sets and the reference")
    smallest = min(len(reference), *(len(photos) for photos in sets.values()))
    evaluator = FIDEvaluator(features, kid_subset_size=min(100, smallest))

    def of(images: list[torch.Tensor]) -> torch.Tensor:
        return evaluator.extract(to_model_range(batch) for batch in torch.stack(images).split(50))

    real = of(reference)
    scores = {name: evaluator.score(real, of(photos)) for name, photos in sets.items()}
    return {"features": evaluator.identifier, "scores": scores}


def diversity(first: list[torch.Tensor], second: list[torch.Tensor]) -> float:
    """Mean absolute difference (intensities in [0, 1]) between the photos of the same label maps
    under two seeds: 0 for a translator whose noise changes nothing."""
    distances = [
        (a.float() - b.float()).abs().mean() / 255 for a, b in zip(first, second, strict=True)
    ]
    return float(torch.stack(distances).mean())
