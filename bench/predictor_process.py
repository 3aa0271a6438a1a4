"""``seg predict``'s predictor in a process of its own, driven through a pipe: how
``bench.app_latency`` times ``seg predict`` beside the app, each in its own process with the same
threads (PyTorch's threads in the process that drives the browser ran 1.5-4x slower from run to
run, which no app does).

    python -m bench.predictor_process ENGINE MODEL PHOTO OUTPUT

It loads the model as the app does (``upsample_app.models.load_models``), prints ``ready``, then for
each line ``folder`` runs ``predict_folder`` over the photo's folder into OUTPUT and for each line
``model`` runs the predictor on the decoded photo in memory, answering ``ok`` (or the error).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from upsample.core.io import read_image


def main(argv: Sequence[str] | None = None) -> None:
    from upsample_app.models import ModelSource, load_models

    engine, model, photo, output = list(argv if argv is not None else sys.argv[1:])
    predictor = load_models(segmenter=ModelSource(Path(model), engine)).segmenter.predictor(False)
    pixels = np.asarray(read_image(photo, mode="RGB")).transpose(2, 0, 1).copy()
    image = torch.from_numpy(pixels)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.strip()
        try:
            if command == "folder":
                summary = predictor.predict_folder(Path(photo).parent, Path(output))
                if not summary.ok:
                    raise RuntimeError(summary.report())
            elif command == "model":
                predictor.predict_image(image)
            else:
                raise ValueError(f"unknown command {command!r}")
            print("ok", flush=True)
        except Exception as error:  # the driver reports it and stops
            print(f"error {type(error).__name__}: {error}", flush=True)


if __name__ == "__main__":
    main()
