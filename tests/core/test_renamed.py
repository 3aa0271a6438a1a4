"""Class paths written by earlier versions (before the ``upsample`` namespace and ``gan``'s folders
by flow) are read as today's, by an explicit table: the trust check judges today's path, nothing a
file names is imported to find where it went, and such a checkpoint loads and predicts."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from seg.module import SegmentationModule
from seg.network_io import load_network
from upsample.blocks.conv import ConvNormAct
from upsample.core.checkpoint import save_module_checkpoint
from upsample.core.renamed import (
    RENAMED_CLASSES,
    RENAMED_MODULES,
    current_class_path,
    upgrade_class_paths,
)
from upsample.core.trust import UntrustedFileError, check_class_path


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("blocks.conv.ConvNormAct", "upsample.blocks.conv.ConvNormAct"),
        ("blocks.UNetGenerator", "upsample.blocks.UNetGenerator"),
        ("common.callbacks.FiniteLossGuard", "upsample.core.callbacks.FiniteLossGuard"),
        ("gan.models.Generator", "gan.dcgan.models.Generator"),
        ("gan.module.GANModule", "gan.dcgan.module.GANModule"),
        ("gan.module.AdversarialModule", "gan.core.adversarial.AdversarialModule"),
        ("gan.pix2pix.Pix2PixModule", "gan.translation.pix2pix.Pix2PixModule"),
        ("gan.fid_features.InceptionFeatures", "gan.fid.features.InceptionFeatures"),
        ("seg.peers.SmpNetwork", "seg.peers.SmpNetwork"),  # never moved
        ("torch.nn.Conv2d", "torch.nn.Conv2d"),
        ("blocksmith.Net", "blocksmith.Net"),  # a prefix of a name is not the module
        ("gan.modules.X", "gan.modules.X"),
    ],
)
def test_old_class_paths_map_to_todays(old: str, new: str) -> None:
    assert current_class_path(old) == new


def test_every_mapped_path_exists_today() -> None:
    for module in RENAMED_MODULES.values():
        importlib.import_module(module)
    for class_path in RENAMED_CLASSES.values():
        module, _, name = class_path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), class_path


def test_nested_hyperparameters_are_upgraded_and_untouched_ones_kept() -> None:
    hparams = {
        "network": {"class_path": "blocks.conv.ConvNormAct", "init_args": {"in_channels": 3}},
        "callbacks": [{"class_path": "common.callbacks.FiniteLossGuard"}, "plain"],
        "class_path_note": "blocks.conv.ConvNormAct",  # not a class path key
    }
    upgraded = upgrade_class_paths(hparams)
    assert upgraded["network"]["class_path"] == "upsample.blocks.conv.ConvNormAct"
    assert upgraded["callbacks"][0]["class_path"] == "upsample.core.callbacks.FiniteLossGuard"
    assert upgraded["class_path_note"] == "blocks.conv.ConvNormAct"
    assert hparams["network"]["class_path"] == "blocks.conv.ConvNormAct"  # not mutated
    current = {"network": {"class_path": "torch.nn.Conv2d"}, "lr": 0.1}
    assert upgrade_class_paths(current) is current


def test_the_trust_check_judges_todays_path() -> None:
    check_class_path("blocks.conv.ConvNormAct", "old.ckpt")
    check_class_path("common.io.Anything", "old.ckpt")
    with pytest.raises(UntrustedFileError, match="evil.Net"):
        check_class_path("evil.Net", "old.ckpt")
    # the old top-level names are trusted only through the table, not as packages of their own
    with pytest.raises(UntrustedFileError, match="commonplace.Net"):
        check_class_path("commonplace.Net", "old.ckpt")


def test_a_checkpoint_naming_an_old_class_path_loads_and_predicts(tmp_path: Path) -> None:
    """A segmenter whose network was given by class path, as an earlier version recorded it."""
    torch.manual_seed(0)
    network = ConvNormAct(3, 4, kernel_size=3)
    module = SegmentationModule(num_classes=4, network=network)
    path = save_module_checkpoint(module, tmp_path / "today.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    # as LightningCLI records a network given by class path, with an earlier version's path
    init_args = {"in_channels": 3, "out_channels": 4, "kernel_size": 3}
    checkpoint["hyper_parameters"]["network"] = {
        "class_path": "blocks.conv.ConvNormAct",
        "init_args": init_args,
    }
    torch.save(checkpoint, tmp_path / "old.ckpt")

    images = torch.rand(1, 3, 17, 19)
    with torch.no_grad():
        expected = module.network.eval()(images)
        loaded = load_network(tmp_path / "old.ckpt")
        torch.testing.assert_close(loaded(images), expected)
        relit = SegmentationModule.load_from_checkpoint(tmp_path / "old.ckpt", map_location="cpu")
        assert relit.hparams.network["class_path"] == "upsample.blocks.conv.ConvNormAct"
        torch.testing.assert_close(relit.network.eval()(images), expected)
