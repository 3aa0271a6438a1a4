"""Label map (or image) to photo: pix2pix (``pix2pix``), the paired data it trains on
(``paired_data``: what the generator's input is; ``paired_datamodule``: the pairs on disk) and
``gan translate`` (``translate``)."""
