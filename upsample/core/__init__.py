"""Runtime utilities shared by ``seg`` and ``gan``: file I/O, datasets, logging, CLI, checkpoints.

Nothing here knows about a particular model; ``upsample.blocks`` never imports this package.
"""
