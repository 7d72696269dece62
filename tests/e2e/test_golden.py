"""Golden records: the `tiny` preset's metrics for a few backbones and variants, committed per CPU kind, compared
bit for bit. A refactor that changes no number keeps them; a change that does change a number must rewrite them
on purpose (`GOLDEN_WRITE=1 pytest tests/e2e/test_golden.py`) and say why in its commit.

Metrics repeat only on the same kind of CPU (dropout masks and bf16 support differ between vendors), so the
file holds one entry per kind; a machine of a kind with no entry skips, naming the command that adds one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.engine.machine import machine
from bench.pipeline.run import run
from tests.conftest import compose_config

GOLDEN = Path(__file__).parent / "golden" / "tiny_metrics.json"
SHORT = ("dataset.preset=tiny", "train.progress=false", "train.threads=1", "train.batch_size=128",
         "train.max_epochs=2", "train.patience=1", "train.max_batches=3")
RUNS = {  # name -> overrides: a base, IncRec-NA with both diversity controls, the permuted twin
    "dssm_off": ("model=dssm", "increc=off"),
    "youtube_dnn_na": ("model=youtube_dnn", "increc=na", "eval.seed_control=true"),
    "sasrec_na_permuted": ("model=sasrec", "increc=na_permuted", "eval.seed_control=false"),
}


def machine_kind() -> str:
    m = machine()
    return f"{m['cpu_vendor']}, native_bf16={m['native_bf16']}"


@pytest.mark.slow
def test_tiny_metrics_are_bit_identical_to_the_golden_records(tmp_path: Path, synthetic_cache: Path) -> None:
    got = {name: run(compose_config(*SHORT, *overrides, f"dataset.cache_dir={synthetic_cache}"),
                     tmp_path / name).record["metrics"] for name, overrides in RUNS.items()}
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    kind = machine_kind()
    if os.environ.get("GOLDEN_WRITE") == "1":
        golden[kind] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    if kind not in golden:
        pytest.skip(f"no golden records for {kind}: add them with GOLDEN_WRITE=1 pytest tests/e2e/test_golden.py")
    assert got == golden[kind]  # == on floats: bit for bit
