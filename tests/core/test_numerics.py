"""upsample.core.numerics: the default precision follows the hardware's native bf16 support."""

from pathlib import Path

import pytest
import torch

from tests.core.toy import ToyData, ToyModule
from upsample.core import numerics
from upsample.core.cli import ToolkitCLI
from upsample.core.numerics import (
    auto_precision,
    autocast_dtype,
    cpu_flags,
    cpu_has_native_bf16,
    resolve_precision,
)
from upsample.core.runs import RUN_VERSION_ENV

pytestmark = pytest.mark.precision

SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
COOPER_LAKE = frozenset({"avx2", "avx512f", "avx512_bf16"})
EPYC_ZEN2 = frozenset({"avx2", "fma"})


def test_cpu_flags_are_read_from_the_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n"
    )
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("flags", "native"), [(SAPPHIRE_RAPIDS, True), (COOPER_LAKE, True), (EPYC_ZEN2, False)]
)
def test_native_bf16_needs_avx512_bf16_or_amx(flags: frozenset[str], native: bool) -> None:
    assert cpu_has_native_bf16(flags) is native
    expected = "bf16-mixed" if native else "32-true"
    assert auto_precision("cpu", flags) == expected
    if not torch.cuda.is_available():
        assert auto_precision("auto", flags) == expected


@pytest.mark.parametrize(("value", "native"), [("0", False), ("1", True), (" Auto ", None)])
def test_the_environment_overrides_this_cpus_bf16_flags(
    monkeypatch: pytest.MonkeyPatch, value: str, native: bool | None
) -> None:
    monkeypatch.setattr(numerics, "cpu_flags", lambda: SAPPHIRE_RAPIDS)
    monkeypatch.setenv(numerics.CPU_BF16_ENV, value)
    expected = True if native is None else native  # "auto": the flags decide
    assert cpu_has_native_bf16() is expected
    assert auto_precision("cpu") == ("bf16-mixed" if expected else "32-true")
    assert cpu_has_native_bf16(EPYC_ZEN2) is False  # flags given explicitly are never overridden


def test_a_bad_bf16_override_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(numerics.CPU_BF16_ENV, "yes")
    with pytest.raises(ValueError, match=r"\$UPSAMPLE_CPU_BF16 must be 0, 1 or auto, got 'yes'"):
        cpu_has_native_bf16()


def test_accelerators_without_a_bf16_rule_get_float32() -> None:
    assert auto_precision("mps", SAPPHIRE_RAPIDS) == "32-true"
    if not torch.cuda.is_available():
        assert auto_precision("gpu", SAPPHIRE_RAPIDS) == "32-true"


def test_an_explicit_precision_is_kept() -> None:
    for given in ("32-true", "bf16-mixed", "16-mixed", 32):
        assert resolve_precision(given) == given
    assert resolve_precision(None) == auto_precision()
    assert resolve_precision("auto") == auto_precision()


def test_inference_autocast_dtype() -> None:
    assert autocast_dtype("32") is None
    assert autocast_dtype("bf16") is torch.bfloat16
    assert autocast_dtype("auto") in (None, torch.bfloat16)
    with pytest.raises(ValueError, match="'fp16'"):
        autocast_dtype("fp16")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("native", [True, False])
def test_cli_resolves_an_unset_precision_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.delenv(RUN_VERSION_ENV, raising=False)
    monkeypatch.delenv(numerics.CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(numerics, "cpu_flags", lambda: SAPPHIRE_RAPIDS if native else EPYC_ZEN2)
    args = [
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=1",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
    ]
    cli = ToolkitCLI(ToyModule, ToyData, run_name="toy", args=args, run=False)
    expected = "bf16-mixed" if native else "32-true"
    assert cli.config.trainer.precision == expected
    assert cli.trainer.precision == expected
    cli = ToolkitCLI(
        ToyModule, ToyData, run_name="toy", args=[*args, "--trainer.precision=32-true"], run=False
    )
    assert cli.trainer.precision == "32-true"
