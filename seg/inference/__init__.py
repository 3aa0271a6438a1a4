"""Folder inference for segmentation: the inputs (a folder or a list file, and one process's share
of them), the engines that run the network, tiling with blended overlaps, the output files and
resuming from them, and ``FolderPredictor`` with the pipeline that ties them together (decoding,
the network and writing at once).

Nothing here imports Lightning or the ``seg predict`` command (``seg.predict``), so the data module
and ``seg predict --engine onnxruntime`` can both use it; the run across devices is
``seg.predict_lightning``.
"""
