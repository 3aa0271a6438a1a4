"""The class index of every pixel: the argmax over the class dimension of scores, done the way that
is fastest where the scores are.

Reducing over the class dimension is slow with a plain ``argmax`` on a CPU: the K scores of a
pixel lie a plane apart (contiguous scores, ONNX Runtime's) or K floats apart in a tiny innermost
dimension (channels-last scores, the PyTorch engine's). Measured on 480x360 scores of 11 classes,
one thread: a running maximum over the K planes in numpy takes 1.6 ms per image (torch's 2.5 ms,
``argmax`` over the planes 2.8 ms); numpy's ``argmax`` over the innermost dimension of
channels-last scores 2.1 ms (torch's 4.0 ms). numpy releases the GIL, so the writer threads of
folder inference compute masks beside the network. Ties go to the lower index everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def class_argmax(scores: Tensor) -> Tensor:
    """Per-pixel class index of scores (N, K, H, W) as uint8 (N, H, W) (int64 if K > 256), on
    the scores' device; ties go to the lower index, as with ``argmax``."""
    num_classes = scores.shape[1]
    if num_classes > 256:
        return scores.argmax(dim=1)
    if scores.device.type != "cpu":
        return scores.argmax(dim=1).to(torch.uint8)
    masks = torch.empty((scores.shape[0], *scores.shape[2:]), dtype=torch.uint8)
    for planes, mask in zip(scores, masks, strict=True):
        mask.copy_(torch.from_numpy(class_indices(planes)))
    return masks


def class_indices(scores: Tensor) -> np.ndarray:
    """Per-pixel class index of one image's scores (K, H, W) on the CPU (contiguous or
    channels-last; at most 256 classes) as a uint8 array (H, W)."""
    if scores.shape[0] > 256:
        raise ValueError(f"uint8 masks hold at most 256 classes, got {scores.shape[0]}")
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()
    if scores.permute(1, 2, 0).is_contiguous():  # channels-last: a pixel's K scores adjacent
        return scores.permute(1, 2, 0).numpy().argmax(axis=-1).astype(np.uint8)
    planes = scores.contiguous().numpy()
    best = planes[0].copy()
    index = np.zeros(best.shape, dtype=np.uint8)
    greater = np.empty(best.shape, dtype=bool)
    for k in range(1, planes.shape[0]):
        np.greater(planes[k], best, out=greater)
        np.copyto(index, k, where=greater)
        np.maximum(best, planes[k], out=best)
    return index
