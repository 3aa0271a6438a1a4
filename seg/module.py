"""``SegmentationModule``: training, validation and testing of a segmentation network with
Lightning."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics.classification import MulticlassConfusionMatrix

from seg.losses import IGNORE_INDEX, LOSS_KINDS, LossKind, segmentation_loss
from seg.metrics import scores_from_confusion_matrix
from seg.models import FCNConfig
from seg.network_io import module_from_description, nest_network_hparams, network_description
from seg.optimization import LRSchedule, OptimizerKind, OptimizerSettings
from seg.visualize import overlay
from upsample.core.checkpoint import (
    SafeCheckpointLoading,
    UntrustedCheckpointError,
    hyperparameters,
)
from upsample.core.compiling import CompiledNetwork, CompileMode, check_compile_mode, compiled_for
from upsample.core.logging import log_images
from upsample.core.trust import UntrustedFileError

MEDIAN_FREQUENCY = "median_frequency"
POLY_NEEDS_A_FINITE_RUN = (
    "lr_schedule 'poly' needs a finite run: set --trainer.max_epochs or --trainer.max_steps, "
    "or use --model.lr_schedule constant"
)


def images_to_float(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) in 0..255 -> float (N, 3, H, W) in [0, 1] (float input passes)."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def _check_class_options(
    num_classes: int,
    loss: str,
    class_weights: list[float] | str | None,
    class_names: list[str] | None,
) -> None:
    if loss not in LOSS_KINDS:
        raise ValueError(f"loss must be 'ce', 'dice' or 'ce+dice', got {loss!r}")
    if isinstance(class_weights, str) and class_weights != MEDIAN_FREQUENCY:
        raise ValueError(
            f"class_weights must be a list of weights or {MEDIAN_FREQUENCY!r}, "
            f"got {class_weights!r}"
        )
    if isinstance(class_weights, list) and len(class_weights) != num_classes:
        raise ValueError(
            f"class_weights has {len(class_weights)} entries for {num_classes} classes"
        )
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} names for {num_classes} classes")


def _network_config(network: FCNConfig | Mapping[str, Any] | None) -> FCNConfig:
    """An ``FCNConfig`` from itself, from its fields (as checkpoints store them) or None."""
    if network is None:
        return FCNConfig()
    return network if isinstance(network, FCNConfig) else FCNConfig(**network)


class SegmentationModule(SafeCheckpointLoading, pl.LightningModule):
    """Trains a segmentation network: an FCN built from an ``FCNConfig``, or any module with
    the same contract (images (N, C, H, W) float in [0, 1] -> logits (N, num_classes, H, W)).

    Batches are ``{"image": uint8 (N, 3, H, W), "mask": (N, H, W) class indices, 255 = ignore}``.
    Validation and test scores come from one confusion matrix per epoch (synchronised across
    devices): pixel accuracy, mean class accuracy, per-class IoU and mean IoU (classes absent
    from both target and prediction are left out of the mean), logged as ``val/*`` / ``test/*``.

    Args:
        num_classes: classes including background (linked to the data module's).
        network: the network's architecture, an ``FCNConfig`` (``--model.network.encoder`` ...;
            None: its defaults; a mapping of its fields is accepted too), or the network itself,
            an ``nn.Module`` (in a config: ``class_path`` and ``init_args``; it must give
            ``num_classes`` logits). The checkpoint's ``network`` hyperparameter holds the
            config with the normalisation in use (``mean``/``std`` taken from the encoder's
            pretrained configuration when not given), so that ``seg.network_io.load_network``
            rebuilds the FCN from the checkpoint alone; of a module it holds the class and,
            under the CLI or for a module with an ``init_args`` attribute (``seg.peers``), the
            arguments, from which a checkpoint rebuilds it too. A checkpoint holds the trained
            weights, so loading it never needs ``encoder_weights``.
        loss: "ce" (cross-entropy), "dice" or "ce+dice" (``dice_weight`` scales the Dice term):
            ``seg.losses.segmentation_loss``.
        class_weights: optional per-class cross-entropy weights (length ``num_classes``), or
            "median_frequency": SegNet's median frequency balancing, computed from the
            training masks of the data module (``SegDataModule.median_frequency_weights``,
            cached) when training starts.
        optimizer, lr, momentum, weight_decay, lr_schedule, poly_power: the optimiser and
            learning-rate schedule (``seg.optimization.OptimizerSettings``; "poly" decays over
            the trainer's estimated steps).
        channels_last: run the network in channels-last memory format (faster convolutions on
            CPUs with AVX-512 and on GPUs). bf16 autocast is the trainer's
            ``--trainer.precision bf16-mixed``.
        class_names: names used for the per-class IoU logs (default ``class_<i>``).
        palette: class colours of the overlays and mask files (default the VOC colour map);
            linked to the data module's.
        tta: validation and test average the probabilities of the image and its mirror image
            (flip test-time augmentation); the loss stays that of the plain image.
        num_logged_images: validation overlays logged each epoch (image | truth | prediction).
        compile: run the network through ``torch.compile`` (``upsample.core.compiling``): true,
            false, or null (the default) for "when fitting on a CUDA device" (on CPUs it gave no
            speed-up and costs 10-30 s). Training compiles for its fixed crop, evaluation once
            for images of any size.
        compile_mode: ``torch.compile``'s mode for training: "default", "reduce-overhead" (CUDA
            graphs), "max-autotune" or "max-autotune-no-cudagraphs".
    """

    def __init__(
        self,
        num_classes: int = 11,
        network: FCNConfig | nn.Module | None = None,
        loss: LossKind = "ce",
        class_weights: list[float] | Literal["median_frequency"] | None = None,
        dice_weight: float = 1.0,
        optimizer: OptimizerKind = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        lr_schedule: LRSchedule = "poly",
        poly_power: float = 0.9,
        channels_last: bool = True,
        class_names: list[str] | None = None,
        palette: list[list[int]] | None = None,
        tta: bool = False,
        num_logged_images: int = 4,
        compile: bool | None = None,
        compile_mode: CompileMode = "default",
    ) -> None:
        super().__init__()
        _check_class_options(num_classes, loss, class_weights, class_names)
        self.optimization = OptimizerSettings(
            optimizer, lr, momentum, weight_decay, lr_schedule, poly_power
        )
        given = isinstance(network, nn.Module)
        built = network if given else _network_config(network).build(num_classes)
        # save_hyperparameters records the arguments' current values: the network goes in
        # described, not pickled (its weights are in the state dict). Under LightningCLI the
        # config's values are recorded instead (a module's class_path and init_args); an FCN's
        # config then replaces them, with the normalisation it resolved.
        network = network_description(built)
        self.save_hyperparameters()
        if "class_path" not in network:
            self.hparams["network"] = network
        self.network = built.to(memory_format=torch.channels_last) if channels_last else built
        weights = None
        if isinstance(class_weights, list):
            weights = torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)
        self.class_names = list(class_names or [f"class_{i}" for i in range(num_classes)])
        self.val_confusion = self._confusion_metric()
        self.test_confusion = self._confusion_metric()
        self._logged_examples: list[dict[str, Any]] = []
        check_compile_mode(compile_mode)
        self._compiled: CompiledNetwork | None = None

    @classmethod
    def arguments_from_checkpoint(
        cls, checkpoint: dict[str, Any], source: str, trust: bool, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """``load_from_checkpoint``'s network (``upsample.core.checkpoint.SafeCheckpointLoading``
        reads and checks the file, without running code from it unless ``trust``, before
        Lightning loads it): a module the
        checkpoint names is rebuilt (its weights come from the file), and the architecture of
        an earlier version's checkpoint (flat hyperparameters: ``variant``, ``encoder``...) is
        nested as ``network``."""
        if "network" in kwargs:
            return kwargs
        saved = hyperparameters(checkpoint, source)
        network = nest_network_hparams(saved)["network"]
        if "class_path" in network:
            try:
                built = module_from_description(network, False, trust=trust, source=source)
            except UntrustedFileError as error:
                raise UntrustedCheckpointError(str(error)) from None
            return {**kwargs, "network": built}
        return kwargs if "network" in saved else {**kwargs, "network": network}

    def setup(self, stage: str) -> None:
        if self.hparams.class_weights == MEDIAN_FREQUENCY and self.class_weights is None:
            if stage == "predict":
                return
            datamodule = getattr(self.trainer, "datamodule", None)
            if not hasattr(datamodule, "median_frequency_weights"):
                raise ValueError(
                    f"class_weights {MEDIAN_FREQUENCY!r} needs a data module with "
                    "median_frequency_weights() (SegDataModule)"
                )
            weights = datamodule.median_frequency_weights()
            rank_zero_info(
                "median frequency class weights: "
                + ", ".join(
                    f"{name} {w:.3f}" for name, w in zip(self.class_names, weights, strict=True)
                )
            )
            self.class_weights = torch.tensor(weights, dtype=torch.float32, device=self.device)

    def _confusion_metric(self) -> MulticlassConfusionMatrix:
        # Masks are validated when read, so per-update argument checks are skipped.
        return MulticlassConfusionMatrix(
            self.hparams.num_classes, ignore_index=IGNORE_INDEX, validate_args=False
        )

    def forward(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W), uint8 or float in [0, 1] -> logits (N, num_classes, H, W)."""
        images = images_to_float(images)
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        compiled = self._compiled_network()
        return compiled(images) if compiled is not None else self.network(images)

    def _compiled_network(self) -> CompiledNetwork | None:
        """The compiled network when ``compile`` asks for it here (see the class docstring),
        made on first use, when the device is known."""
        if self._compiled is None:
            self._compiled = compiled_for(self, self.network)
        return self._compiled

    def compute_loss(self, logits: Tensor, masks: Tensor) -> Tensor:
        """Scalar loss of logits (N, K, H, W) against masks (N, H, W) (255 ignored)."""
        hp = self.hparams
        return segmentation_loss(logits, masks, hp.loss, self.class_weights, hp.dice_weight)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        masks = batch["mask"].long()
        logits = self(batch["image"])
        loss = self.compute_loss(logits, masks)
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
            batch_size=masks.shape[0],
        )
        return loss

    def _evaluation_step(
        self, batch: dict[str, Any], confusion: MulticlassConfusionMatrix, stage: str
    ) -> Tensor:
        masks = batch["mask"].long()
        logits = self(batch["image"])
        loss = self.compute_loss(logits, masks)
        if self.hparams.get("tta"):
            mirrored = self(batch["image"].flip(-1)).float().softmax(dim=1).flip(-1)
            predictions = (logits.float().softmax(dim=1) + mirrored).argmax(dim=1)
        else:
            predictions = logits.argmax(dim=1)
        confusion.update(predictions, masks)
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=masks.shape[0])
        return predictions

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        predictions = self._evaluation_step(batch, self.val_confusion, "val")
        self._keep_examples(batch, predictions)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluation_step(batch, self.test_confusion, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """For LightningCLI prediction: ``{"mask": uint8 (N, H, W)}``, or ``{"mask": None}``
        when the batch's image could not be read (``batch["error"]`` says why)."""
        if batch["image"] is None:
            return {"mask": None}
        return {"mask": self(batch["image"]).argmax(dim=1).to(torch.uint8)}

    def _keep_examples(self, batch: dict[str, Any], predictions: Tensor) -> None:
        wanted = self.hparams.num_logged_images - len(self._logged_examples)
        if wanted <= 0 or not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        for index in range(min(wanted, predictions.shape[0])):
            self._logged_examples.append(
                {
                    "image": batch["image"][index].permute(1, 2, 0).cpu().numpy(),
                    "mask": batch["mask"][index].cpu().numpy(),
                    "prediction": predictions[index].cpu().numpy(),
                    "name": batch["name"][index],
                }
            )

    def _log_scores(self, confusion: MulticlassConfusionMatrix, stage: str) -> None:
        scores = scores_from_confusion_matrix(confusion.compute())
        confusion.reset()
        values = {
            f"{stage}/miou": scores.mean_iou,
            f"{stage}/pixel_acc": scores.pixel_accuracy,
            f"{stage}/mean_acc": scores.mean_accuracy,
            # Number of pixels counted; under DDP it shows that no sample was counted twice.
            f"{stage}/pixels": float(scores.num_pixels),
        }
        for name, iou, present in zip(
            self.class_names, scores.per_class_iou.tolist(), scores.present.tolist(), strict=True
        ):
            if present:
                values[f"{stage}/iou/{name}"] = iou
        # The metric already summed the matrix over ranks, so every rank holds the same values
        # (averaging them again changes nothing and keeps Lightning's checks quiet).
        self.log_dict(values, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_scores(self.val_confusion, "val")
        examples, self._logged_examples = self._logged_examples, []
        if self.trainer.sanity_checking or self.hparams.num_logged_images <= 0:
            return
        # every rank calls log_images (it agrees on the run folder collectively); rank 0 writes
        panels = [
            np.concatenate(
                [
                    example["image"],
                    overlay(example["image"], example["mask"], colours=self.hparams.get("palette")),
                    overlay(
                        example["image"], example["prediction"], colours=self.hparams.get("palette")
                    ),
                ],
                axis=1,
            )
            for example in examples
        ]
        captions = [f"{e['name']}: image | truth | prediction" for e in examples]
        log_images(self.trainer, "val/overlays", panels, captions=captions)

    def on_test_epoch_end(self) -> None:
        self._log_scores(self.test_confusion, "test")

    def configure_optimizers(self) -> Any:
        total_steps = None
        if self.optimization.lr_schedule == "poly":
            trainer = self.trainer
            if trainer.max_steps == -1 and trainer.max_epochs in (None, -1):
                raise ValueError(POLY_NEEDS_A_FINITE_RUN)
            # Asked at the first step, not now: estimating it sets up the training data, which
            # must wait until a resumed run has restored its loops (where inside an epoch it
            # stopped: upsample.core.sampling.ResumableDataLoader).
            total_steps = self._total_steps
        optimizer, scheduler = self.optimization.build(self.parameters(), total_steps)
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _total_steps(self) -> int:
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError(POLY_NEEDS_A_FINITE_RUN)
        return int(total)
