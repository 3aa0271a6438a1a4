"""``bench.quality_camvid``: every contender is a ``seg fit`` command line, and a tiny run trains,
tests and reports end to end on CamVid (skipped without the data). The peers' weights are checked
in ``tests/seg/test_seg_peers.py``."""

from __future__ import annotations

import json
import shlex

import pytest
import torch

pytest.importorskip("segmentation_models_pytorch")
pytest.importorskip("timm")

from bench import quality_camvid
from bench.harness import RUNS_DIR
from bench.seg_training import cli_contender
from upsample.core.pretrained import EncoderWeightsError, resolve_encoder_weights

LITE0 = "tf_efficientnet_lite0"


@pytest.fixture(scope="module")
def lite0_weights() -> dict[str, torch.Tensor]:
    try:
        return resolve_encoder_weights(LITE0, "imagenet", allow_download=False).state_dict
    except EncoderWeightsError as error:
        pytest.skip(f"no EfficientNet-Lite0 weights here: {error}")


def test_every_contender_parses_as_a_seg_fit_command_line(lite0_weights) -> None:
    """The peers are ``seg.peers`` networks named on the command line, seeded like the config;
    ours are the shipped configs with options."""
    from seg.peers import SmpNetwork, TorchvisionNetwork

    def build(name: str):
        config, *options = shlex.split(quality_camvid.CONTENDERS[name])
        return cli_contender(config, options)

    unet = build("smp Unet lite0").module
    assert isinstance(unet.network, SmpNetwork) and unet.network.init_args["architecture"] == "Unet"
    assert unet.hparams.num_classes == 11 and unet.hparams.optimizer == "adamw"
    assert isinstance(build("tv fcn_resnet50 (scratch)").module.network, TorchvisionNetwork)
    fcn16s = build("FCN-16s lite0").module
    assert fcn16s.hparams.network["variant"] == "fcn16s"
    assert build("FCN-8s lite0 float32").precision == "32-true"


@pytest.mark.slow
def test_quick_run_trains_tests_and_reports(lite0_weights, restore_threads, tmp_path) -> None:
    if not quality_camvid.DATA_ROOT.is_dir():
        pytest.skip(f"CamVid not found at {quality_camvid.DATA_ROOT}")
    quality_camvid.main(["--quick", "--threads", "1", "--results-dir", str(tmp_path)])
    results = tmp_path
    report = json.loads((results / "quality_camvid.json").read_text())
    assert set(report["results"]) == set(quality_camvid.QUICK_CONTENDERS)
    for result in report["results"].values():
        assert result["training"]["batches"] >= 1
        assert 0.0 <= result["test"]["miou"] <= 1.0 and result["test"]["pixels"] > 0
    markdown = (results / "quality_camvid.md").read_text()
    assert "Published test mIoU" in markdown and "FCN-8 (ImageNet VGG16)" in markdown
    assert "## How these figures were made" in markdown
    # the hand-written section quotes this run's budget and epochs, not a past run's
    assert "Each contender trained for 0.03 CPU-minutes" in markdown
    assert "Epochs seen within the budget: FCN-8s lite0 " in markdown
    assert (results / "images" / "camvid_test_overlays.png").is_file()


@pytest.mark.slow
def test_label_to_photo_quick_run_is_scored_by_the_quick_camvid_segmenter(
    tmp_path, restore_threads
) -> None:
    """``bench.label_to_photo`` trains a tiny pix2pix and a tiny OASIS and scores them with the
    checkpoint that the quick ``bench.quality_camvid`` run leaves (run before this test)."""
    from bench import label_to_photo

    segmenter = RUNS_DIR / "quality_camvid_quick" / "fcn_8s_lite0" / "last.ckpt"
    if not segmenter.is_file():
        pytest.skip("no quick CamVid segmenter (the quick quality_camvid run did not run)")
    argv = ["--quick", "--threads", "1", "--seg_ckpt", str(segmenter)]
    label_to_photo.main([*argv, "--results-dir", str(tmp_path)])
    report = json.loads((tmp_path / "label_to_photo.json").read_text())
    assert [row["photos"] for row in report["tables"][0]["rows"]] == [
        "pix2pix",
        "OASIS",
        "real photos at 128x96 (the ceiling)",
        "real photos at 480x360",
    ]
    results = report["results"]
    assert results["test_images"] == 8
    assert set(results["diversity"]) == {"pix2pix", "oasis"}
    assert set(results["fid"]["scores"]) == {"pix2pix", "oasis", "real_val"}
    assert any("KID of OASIS is" in finding for finding in report["findings"])
    assert (tmp_path / "images" / "label_to_photo.png").is_file()


def test_variant_findings_judge_the_fcn_ordering_and_the_precision() -> None:
    def result(miou: float, images: int, precision: str = "bf16-mixed") -> dict:
        training = {"images_seen": images, "train_cpu_s": 100.0}
        return {"test": {"miou": miou}, "training": training, "precision": precision}

    results = {
        "FCN-32s lite0": result(0.50, 600),
        "FCN-16s lite0": result(0.57, 600),
        "FCN-8s lite0": result(0.55, 600),
        "FCN-8s lite0 float32": result(0.52, 400, "32-true"),
    }
    ordering, precision = quality_camvid.variant_findings(results)
    assert "does not hold (FCN-32s lite0 50.0, FCN-16s lite0 57.0, FCN-8s lite0 55.0)" in ordering
    assert "(bf16-mixed) vs float32: 55.0 vs 52.0 test mIoU (+3.0 points)" in precision
    assert precision.endswith("6.0 vs 4.0 training images per CPU second (1.50x).")
    results["FCN-8s lite0"] = result(0.60, 600)
    assert " holds " in quality_camvid.variant_findings(results)[0]
    assert quality_camvid.variant_findings({"FCN-8s lite0": result(0.6, 600)}) == []
