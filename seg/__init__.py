"""FCN semantic segmentation built on ``upsample.blocks``: models, data, Lightning module, CLI,
inference.

Public entry points: ``seg.models`` (``FCN``, ``FCNConfig``, ``build_fcn``),
``seg.module.SegmentationModule``, ``seg.data.SegDataModule``, ``seg.network_io.load_network``,
``seg.peers`` (smp and torchvision networks behind the FCN's contract),
``seg.inference.predictor.FolderPredictor`` and ``seg.deploy`` (ONNX / ``torch.export`` files,
the ONNX Runtime engine). Console script: ``seg``
(``upsample_app.console:seg_main``, which hands all but ``seg app`` to ``seg.console.main``).
"""
