"""FCN semantic segmentation built on ``blocks``: models, data, Lightning module, CLI, inference.

Public entry points: ``seg.models`` (``FCN``, ``fcn32s``, ``fcn16s``, ``fcn8s``, ``fcn_atrous``,
``build_fcn``), ``seg.module.SegmentationModule``, ``seg.data.SegDataModule``,
``seg.network_io.load_network`` and ``seg.predict.FolderPredictor``.
"""
