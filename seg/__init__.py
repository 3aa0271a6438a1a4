"""FCN semantic segmentation built on ``blocks``: models, data, Lightning module, CLI, inference.

Public entry points: ``seg.models`` (``FCN``, ``fcn32s``, ``fcn16s``, ``fcn8s``, ``fcn_atrous``,
``build_fcn``), ``seg.module.SegmentationModule``, ``seg.data.SegDataModule``,
``seg.network_io.load_network``, ``seg.predict.FolderPredictor`` and ``seg.deploy`` (ONNX /
``torch.export`` files, the ONNX Runtime engine). Console script: ``seg`` (``seg.console:main``).
"""
