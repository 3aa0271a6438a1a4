"""The Lightning prediction writer of ``seg predict --config``: masks and overlays per batch.

Apart from folder inference (``seg.inference``), which imports no Lightning, so that ``seg
predict --engine onnxruntime`` runs where Lightning is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

from seg.inference.outputs import write_mask_and_overlay


class MaskWriter(BasePredictionWriter):
    """Writes the masks and overlays of LightningCLI prediction (``seg predict --config ...``)
    in the same layout as folder inference; unreadable inputs are collected in ``skipped``."""

    def __init__(self, output_dir: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.skipped: list[tuple[str, str]] = []
        self.written: list[str] = []

    def write_on_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        prediction: Any,
        batch_indices: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Write each image of the batch (``prediction["mask"]`` (N, H, W)), or note why not."""
        for index, path in enumerate(batch["path"]):
            if batch["error"][index] is not None:
                self.skipped.append((path, batch["error"][index]))
                print(f"skipped {path}: {batch['error'][index]}", file=sys.stderr)
                continue
            mask = prediction["mask"][index].cpu().numpy()
            image = batch["image"][index].permute(1, 2, 0).cpu().numpy()
            name = str(Path(path).with_suffix(""))
            colours = getattr(pl_module, "hparams", {}).get("palette")
            write_mask_and_overlay(self.output_dir, name, image, mask, colours)
            self.written.append(path)
