"""The shared library of the upsample toolkit, below ``seg`` and ``gan``.

- ``upsample.blocks``: the convolution and upsampling building blocks (plain ``torch.nn``, no
  Lightning, no I/O).
- ``upsample.core``: the runtime that ``seg`` and ``gan`` share (files, datasets, checkpoints and
  the trust boundary, the command line, logging, numerics).

Neither subpackage imports ``seg``, ``gan`` or the app (``upsample_app``), which sits above them.
"""
