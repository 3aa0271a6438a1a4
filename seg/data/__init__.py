"""Segmentation data: Fashion-MNIST-Seg generation, folder and VOC readers, the data module."""

from seg.data.datamodule import SegDataModule
from seg.data.datasets import SegmentationDataError, SegmentationDataset

__all__ = ["SegDataModule", "SegmentationDataError", "SegmentationDataset"]
