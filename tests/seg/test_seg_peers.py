"""``seg.peers``: peer networks behind the FCN's contract, checked against plain PyTorch, with the
ImageNet weights of our lite0 encoders, and rebuilt from a checkpoint alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from seg.deploy import export_checkpoint
from seg.module import SegmentationModule
from seg.network_io import load_network
from seg.peers import PeerNetwork, TorchvisionNetwork
from tests.seg.helpers import one_step_trainer
from upsample.core.checkpoint import CheckpointError
from upsample.core.deploy import DeployError

LITE0 = "tf_efficientnet_lite0"


class DictOutput(nn.Module):
    """A torchvision-style network: ``{"out": logits}``, needs sides divisible by 4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        assert images.shape[-2] % 4 == 0 and images.shape[-1] % 4 == 0
        return {"out": self.conv(images), "aux": images}


def test_peer_wrapper_normalises_pads_unwraps_and_crops() -> None:
    torch.manual_seed(0)
    inner = DictOutput()
    peer = PeerNetwork(inner, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0), divisor=4)
    images = torch.rand(2, 3, 17, 30)
    # reference: the same steps written out in plain PyTorch
    mean, std = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.25, 2.0])
    normalised = (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    padded = F.pad(normalised, (0, 2, 0, 3), mode="replicate")  # to 20 x 32
    expected = inner(padded)["out"][..., :17, :30]
    torch.testing.assert_close(peer(images), expected)
    assert peer(torch.rand(1, 3, 16, 32)).shape == (1, 2, 16, 32)  # divisible: no padding


def test_torchvision_network_by_name_gives_logits_at_the_input_size() -> None:
    torch.manual_seed(0)
    network = TorchvisionNetwork(num_classes=4, name="lraspp_mobilenet_v3_large").eval()
    with torch.no_grad():
        assert network(torch.rand(1, 3, 33, 47)).shape == (1, 4, 33, 47)
    assert network.init_args == {"num_classes": 4, "name": "lraspp_mobilenet_v3_large"}


@pytest.fixture(scope="module")
def lite0_weights() -> dict[str, torch.Tensor]:
    pytest.importorskip("segmentation_models_pytorch")
    pytest.importorskip("timm")
    from upsample.core.pretrained import EncoderWeightsError, resolve_encoder_weights

    try:
        return resolve_encoder_weights(LITE0, "imagenet", allow_download=False).state_dict
    except EncoderWeightsError as error:
        pytest.skip(f"no EfficientNet-Lite0 weights here: {error}")


def test_smp_network_holds_the_lite0_imagenet_weights(lite0_weights) -> None:
    from seg.peers import SmpNetwork

    peer = SmpNetwork(num_classes=11, architecture="FPN")
    encoder = peer.network.encoder.model
    torch.testing.assert_close(encoder.conv_stem.weight, lite0_weights["conv_stem.weight"])
    # timm's configuration of tf_efficientnet_lite0 (TensorFlow's [-1, 1] input scaling)
    assert peer.mean.flatten().tolist() == peer.std.flatten().tolist() == [0.5, 0.5, 0.5]
    assert peer(torch.rand(1, 3, 72, 100)).shape == (1, 11, 72, 100)  # padded to 96x128 inside
    with pytest.raises(ValueError, match="'Unnet' is not a segmentation-models-pytorch model"):
        SmpNetwork(num_classes=11, architecture="Unnet", encoder_weights=None)


def test_loading_timm_weights_fails_on_a_tensor_they_do_not_hold(lite0_weights) -> None:
    import timm

    from seg.peers import load_timm_weights

    model = timm.create_model(LITE0, pretrained=False, features_only=True)
    model.register_parameter("extra", nn.Parameter(torch.zeros(1)))
    with pytest.raises(RuntimeError, match=r"1 tensors of tf_efficientnet_lite0 differ.*extra"):
        load_timm_weights(model, LITE0, "imagenet")


def test_a_peer_checkpoint_rebuilds_its_network(tmp_path: Path) -> None:
    """The module records a peer's arguments, so ``load_network`` and ``load_from_checkpoint``
    rebuild it from the checkpoint alone; ``seg export`` refuses it by name."""
    torch.manual_seed(0)
    peer = TorchvisionNetwork(num_classes=3, name="lraspp_mobilenet_v3_large")
    module = SegmentationModule(num_classes=3, network=peer, optimizer="adamw")
    assert module.hparams["network"] == {
        "class_path": "seg.peers.TorchvisionNetwork",
        "init_args": {"num_classes": 3, "name": "lraspp_mobilenet_v3_large"},
    }
    batch = {
        "image": torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8),
        "mask": torch.randint(0, 3, (2, 32, 32)),
        "name": ["a", "b"],
    }
    trainer = one_step_trainer(limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader([batch], batch_size=None))
    path = tmp_path / "peer.ckpt"
    trainer.save_checkpoint(path)
    images = torch.rand(1, 3, 40, 36)
    module.eval()
    with torch.no_grad():
        expected = module.network(images)
        loaded = load_network(path)
        assert isinstance(loaded, TorchvisionNetwork) and not loaded.training
        torch.testing.assert_close(loaded(images), expected)
        again = SegmentationModule.load_from_checkpoint(path).eval()
        torch.testing.assert_close(again.network(images), expected)
    with pytest.raises(DeployError, match=r"peer.ckpt.*toolkit's FCNs.*TorchvisionNetwork"):
        export_checkpoint(path, tmp_path / "peer.onnx")
    # a class that is gone, or not a module: the error names the file and the class
    checkpoint = torch.load(path, weights_only=False)
    gone_or_not_a_module = (
        ("seg.no_such_module.Net", "No module"),
        ("torch.nn.functional", "not an nn"),
    )
    for class_path, reason in gone_or_not_a_module:
        checkpoint["hyper_parameters"]["network"]["class_path"] = class_path
        torch.save(checkpoint, tmp_path / "moved.ckpt")
        with pytest.raises(CheckpointError, match=rf"moved.ckpt: cannot rebuild.*{reason}"):
            load_network(tmp_path / "moved.ckpt")
