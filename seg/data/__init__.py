"""Segmentation data: Fashion-MNIST-Seg generation, the folder, VOC and CamVid readers
(``seg.data.sources``), the dataset and the data module."""

from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError, SegmentationDataset

__all__ = ["SegDataModule", "SegmentationDataError", "SegmentationDataset"]
