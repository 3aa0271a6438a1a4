"""``--model.compile``: ``seg fit --model.compile true`` trains and validates with a shipped
config, and its compiled network gives the eager network's outputs on the training crop and on
odd evaluation sizes, compiling once for training and once for every evaluation size.

Compiling on a CPU takes tens of seconds, so one run serves every check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.seg.helpers import write_folder_split
from upsample.core.compiling import check_compile_mode, wants_compile


def test_compile_is_chosen_for_cuda_fits_unless_said() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not wants_compile(None, cpu) and wants_compile(None, cuda)
    assert not wants_compile(None, cuda, fitting=False)  # one evaluation pass: not worth it
    assert wants_compile(True, cpu) and not wants_compile(False, cuda)
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        check_compile_mode("fastest")


@pytest.mark.precision
@pytest.mark.slow
def test_seg_fit_with_compile_trains_and_validates(tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    from seg.cli import run_cli

    torch._dynamo.reset()
    counters.clear()
    write_folder_split(tmp_path / "data" / "train", 4, size=(32, 32))
    write_folder_split(tmp_path / "data" / "val", 2, size=(37, 45), seed=1)  # odd full size
    cli = run_cli(
        [
            "fit",
            "--config",
            "configs/seg/fcn8s_fashion.yaml",
            "--data.format=folder",
            f"--data.root={tmp_path / 'data'}",
            "--data.num_classes=3",
            "--data.crop_size=32",
            "--data.batch_size=2",
            "--data.val_batch_size=2",
            "--data.num_workers=0",
            "--model.network.width=0.0625",
            "--model.compile=true",
            "--model.compile_mode=default",
            "--trainer.max_epochs=2",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp_path / 'runs'}",
        ]
    )
    module, compiled = cli.model, cli.model._compiled
    assert compiled is not None and module.hparams.compile is True  # recorded in checkpoints
    assert cli.trainer.global_step == 4 and "val/miou" in cli.trainer.callback_metrics
    assert counters["stats"]["unique_graphs"] == 2  # the training crop's, and evaluation's

    # The compiled network against the eager one, under the run's precision (its graphs were
    # made under it): on the training crop (called here outside a training step, it may get a
    # graph of its own), and on evaluation sizes it has not seen, which reuse the evaluation
    # graph instead of compiling one per size.
    bf16 = cli.trainer.precision.startswith("bf16")
    tolerance = {"rtol": 3e-2, "atol": 3e-2} if bf16 else {"rtol": 1e-4, "atol": 1e-5}
    network = module.network
    # the run's own forward context: bf16 autocast, or none under 32-true
    with cli.trainer.precision_plugin.forward_context():
        network.train()  # with gradients, as in training
        crop = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(compiled(crop), network(crop), **tolerance)
        network.eval()
        graphs = counters["stats"]["unique_graphs"]
        for shape in ((2, 3, 33, 35), (2, 3, 41, 37), (3, 3, 50, 45)):
            images = torch.rand(shape).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():  # as Lightning validates while fitting
                torch.testing.assert_close(compiled(images), network(images), **tolerance)
    assert counters["stats"]["unique_graphs"] == graphs
