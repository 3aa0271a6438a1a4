"""Folder inference for segmentation: the images of a folder, the engines that run the network,
tiling with blended overlaps, the output files, and ``FolderPredictor`` that ties them together.

Nothing here imports Lightning or the ``seg predict`` command (``seg.predict``), so the data module
and ``seg predict --engine onnxruntime`` can both use it.
"""
