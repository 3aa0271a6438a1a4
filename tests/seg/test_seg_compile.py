"""``--model.compile``: the compiled network gives the eager network's outputs and gradients, on
the training crop and on odd evaluation sizes, compiling once for training and once for all
evaluation sizes; ``seg fit --model.compile true`` trains and validates with a shipped config.

Compiling on a CPU takes tens of seconds, so these tests are few and share one tiny network
(and the compiler's cache)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.compiling import CompiledNetwork, check_compile_mode, wants_compile
from seg.models import FCNConfig
from tests.seg.helpers import write_folder_split

#: float32 on a CPU: fused kernels sum in another order than the eager ones
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
TINY = FCNConfig(variant="fcn8s", encoder="vgg_bn", width=0.0625)


def test_compile_is_chosen_for_cuda_fits_unless_said() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not wants_compile(None, cpu) and wants_compile(None, cuda)
    assert not wants_compile(None, cuda, fitting=False)  # one evaluation pass: not worth it
    assert wants_compile(True, cpu) and not wants_compile(False, cuda)
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        check_compile_mode("fastest")


@pytest.mark.slow
def test_compiled_network_matches_eager_and_compiles_once_per_purpose() -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    network = TINY.build(3)
    compiled = CompiledNetwork(network)
    crop = torch.rand(2, 3, 32, 32)

    network.train()
    eager = network(crop)
    eager.square().mean().backward()
    eager_grads = [p.grad.clone() for p in network.parameters()]
    network.zero_grad()
    output = compiled(crop)
    torch.testing.assert_close(output, eager, **TOLERANCE)
    output.square().mean().backward()
    for grad, expected in zip((p.grad for p in network.parameters()), eager_grads, strict=True):
        torch.testing.assert_close(grad, expected, **TOLERANCE)

    network.eval()
    with torch.no_grad():
        for shape in ((2, 3, 33, 35), (2, 3, 41, 37), (3, 3, 50, 45)):  # odd, like full photos
            images = torch.rand(shape)
            torch.testing.assert_close(compiled(images), network(images), **TOLERANCE)
    # one graph for the training crop, one for every evaluation size
    assert counters["stats"]["unique_graphs"] == 2


@pytest.mark.slow
def test_seg_fit_with_compile_trains_and_validates(tmp_path: Path) -> None:
    from seg.cli import run_cli

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
    assert cli.model._compiled is not None
    assert cli.trainer.global_step == 4 and "val/miou" in cli.trainer.callback_metrics
    assert cli.model.hparams.compile is True  # recorded in the checkpoint's hyperparameters
