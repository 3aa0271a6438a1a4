"""DCGAN training throughput on an accelerator: the device study of ``bench.device_throughput``
for ``gan fit`` with ``configs/gan/dcgan_rgb64.yaml`` on an image folder (default: the CamVid
training photos): the data loader alone, the model step alone and ``gan fit``, eager and
compiled, at batch 64 and 256.

    python -m bench.throughput_gan --device cuda [--data-root FOLDER] [--workers 14]

The CPU study that compared our ``GANModule`` with the classic PyTorch loop is retired (its
question is settled on three CPU kinds): ``bench/results/retired/throughput_gan.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.device_throughput import (
    Workload,
    add_device_arguments,
    device_study_requested,
    run_study,
)
from bench.harness import CAMVID, REPO, Report, base_parser, parse

#: the DCGAN paper's network: 64x64 RGB, widths 64
CONFIG = "configs/gan/dcgan_rgb64.yaml"
FIT_NOTE = (
    "Fit: the shipped dcgan_rgb64.yaml on an image folder with only the batch, --model.compile, "
    "the steps and validation (off) changed; W&B off, CSV logging, checkpoints, sample grids "
    "and the progress bar as shipped. A batch is one critic and one generator step and an EMA "
    "update."
)


def gan_model_step(module: Any, real: Tensor, bf16: bool) -> Callable[[], None]:
    """One training step of the module's networks on a batch already on their device: a critic
    step on real and generated images, a generator step through the updated critic (its
    losses, ``gan.core.losses``), an EMA update; bf16 autocast when ``bf16``; the networks compiled
    as the module's ``compile`` says (``AdversarialModule._network``)."""
    from gan.core.adversarial import update_ema
    from gan.core.losses import discriminator_loss, generator_loss
    from gan.core.optimizers import adversarial_optimizers

    hparams = module.hparams
    optimizer_g, optimizer_d = adversarial_optimizers(
        module.generator, module.discriminator, hparams.lr_g, hparams.lr_d, hparams.betas
    )
    generator, critic = module._network("generator"), module._network("discriminator")
    if hparams.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    noise = torch.randn(real.shape[0], hparams.nz, device=real.device)
    averaged = [*module.ema.module.parameters(), *module.ema.module.buffers()]
    current = [*module.generator.parameters(), *module.generator.buffers()]
    autocast = torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> None:
        with autocast:
            fake = generator(noise)
            loss_d = discriminator_loss(critic(real), critic(fake.detach()), hparams.loss)
        optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optimizer_d.step()
        with autocast:
            loss_g = generator_loss(critic(fake), hparams.loss)
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
        update_ema(averaged, current, hparams.ema_decay, 1)

    return step


def gan_workload(args: Any, device: torch.device, scratch: Path) -> Workload:
    """``gan fit --config configs/gan/dcgan_rgb64.yaml --data.root FOLDER`` on ``device``."""
    from gan.cli import run_cli

    options = ["--data.root", str(args.data_root), "--data.num_workers", str(args.workers)]
    options += ["--model.fid_every_n_epochs", "0"]
    if args.quick:
        options += ["--model.ngf", "8", "--model.ndf", "8", "--data.image_size", "32"]
    return Workload(
        "DCGAN 64x64 training on an image folder",
        run_cli,
        REPO / CONFIG,
        options,
        device,
        scratch,
        gan_model_step,
        lambda batch: int(batch.shape[0]),
        FIT_NOTE,
        optimizer_steps_per_batch=2,  # a batch is two optimiser steps (critic, generator)
    )


def main(argv: Sequence[str] | None = None) -> Report:
    """Run the device study and write ``throughput_gan_<device>.json`` / ``.md``."""
    parser = base_parser(__doc__)
    add_device_arguments(parser, CAMVID / "train", batches=(64, 256))
    args = parse(parser, argv)
    if not device_study_requested(args):
        parser.error(
            "the DCGAN's CPU study is retired (bench/results/retired/throughput_gan.md): give "
            "--device cuda (or --device cpu for a smoke run of the device study)"
        )
    device = torch.device(args.device)
    title = "DCGAN training throughput"
    return run_study(args, device, "throughput_gan", title, gan_workload, quick_batch=4)


if __name__ == "__main__":
    main()
