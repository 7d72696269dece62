"""End-to-end runs on the synthetic `tiny` preset: the record, the model quality floor, determinism."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import CONF_DIR, PROJECT_ROOT
from bench.pipeline.run import run
from bench.evaluation.evaluate import format_table
from tests.conftest import compose_config

TINY = ("dataset.preset=tiny", "train.progress=false", "train.batch_size=128")
FIXED_1 = ("train.epochs=1", "train.early_stopping=false", "eval.seed_control=false")  # protocol v1's fixed schedule
SMOKE = ("train.max_batches=3",)  # a few batches per epoch: enough for determinism checks, not for quality
FIXED_2 = ("train.epochs=2", "train.early_stopping=false", "eval.seed_control=false")


def _run(tmp_path: Path, cache: Path, *overrides: str) -> dict:
    cfg = compose_config(*TINY, f"dataset.cache_dir={cache}", *overrides)
    return run(cfg, tmp_path).record


@pytest.fixture(scope="module")
def increc_on_record(tmp_path_factory, synthetic_cache) -> dict:
    """IncRec on tiny under protocol v2's early stopping, kept short (two epochs of six batches at most): the
    record's contents are checked here; model quality to a full early stop is test_backbones_end_to_end's."""
    return _run(tmp_path_factory.mktemp("run-on"), synthetic_cache, "increc=on", "train.max_epochs=2",
                "train.patience=1", "eval.seed_control=false", "train.max_batches=6")


def test_record_has_everything_the_issue_lists(increc_on_record: dict) -> None:
    rec = increc_on_record
    for key in ("config", "seed", "data_fingerprint", "code_version", "versions", "stage_seconds", "pool_size", "ks",
                "dataset_stats", "sample_stats", "metrics"):
        assert key in rec, key
    assert set(rec["versions"]) >= {"python", "torch", "recbole", "faiss-cpu", "numpy", "pandas"}
    assert rec["machine"]["cpu"] and rec["machine"]["cores"] >= 1 and rec["machine"]["torch_threads"] >= 1
    assert len(rec["data_fingerprint"]) == 64
    assert set(rec["stage_seconds"]) >= {"load", "requests", "existing", "samples", "train_base", "train_variant"}
    for k in rec["ks"]:
        for name in ("Base", "Sup", "Inc", "Exposure"):
            for prefix in ("", "micro_"):
                value = rec["metrics"][f"{prefix}{name}@{k}"]
                assert value is not None and 0.0 <= value <= 1.0
    stats = rec["sample_stats"]
    assert stats["test_requests_nonempty_itg"] == rec["eval_requests"] > 0
    assert 0.0 < stats["itg_share"] < 1.0
    assert rec["dataset_stats"]["log_duplicates"] > 0  # the generator plants exact duplicates
    table = format_table(rec)
    assert f"pool={rec['pool_size']}" in table and str(rec["ks"][0]) in table


def test_run_json_is_written_and_matches(tmp_path: Path, synthetic_cache: Path) -> None:
    cfg = compose_config(*TINY, f"dataset.cache_dir={synthetic_cache}", "increc=off", *FIXED_1)
    result = run(cfg, tmp_path)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["metrics"] == result.record["metrics"]
    assert on_disk["metrics"][f"Inc@{on_disk['ks'][0]}"] is None  # increc=off has no Inc channel
    assert not list(tmp_path.glob(".run.json.*"))  # no temporary file left behind


def test_max_batches_cuts_every_epoch(tmp_path: Path, synthetic_cache: Path) -> None:
    full = _run(tmp_path / "all", synthetic_cache, "model=dssm", "increc=na", *FIXED_2)["training"]
    cut = _run(tmp_path / "cut", synthetic_cache, "model=dssm", "increc=na", *FIXED_2, "train.max_batches=2")
    assert all(n > 2 for n in full["base"]["batches"] + full["variant"]["batches"])
    assert cut["training"]["base"]["batches"] == [2, 2] and cut["training"]["variant"]["batches"] == [2, 2]
    assert cut["training"]["base"]["batches_available"] == full["base"]["batches"]
    assert cut["config"]["train"]["max_batches"] == 2


def test_filling_uninitialised_memory_changes_nothing(tmp_path: Path, synthetic_cache: Path, monkeypatch) -> None:
    import bench.engine.device

    args = ("model=sasrec", "increc=on", *FIXED_1, "train.max_batches=4")
    fast = _run(tmp_path / "fast", synthetic_cache, *args)
    monkeypatch.setattr(bench.engine.device, "deterministic_torch",
                        functools.partial(bench.engine.device.deterministic_torch, fill_uninitialized_memory=True))
    filled = _run(tmp_path / "filled", synthetic_cache, *args)
    assert bench.engine.device.torch.utils.deterministic.fill_uninitialized_memory
    assert filled["metrics"] == fast["metrics"]
    assert [e["loss"] for e in filled["training"].values()] == [e["loss"] for e in fast["training"].values()]


def test_same_config_and_seed_give_identical_metrics(tmp_path: Path, synthetic_cache: Path) -> None:
    first = _run(tmp_path / "a", synthetic_cache, "increc=ori", *FIXED_1, *SMOKE)
    again = _run(tmp_path / "b", synthetic_cache, "increc=ori", *FIXED_1, *SMOKE)
    assert again["metrics"] == first["metrics"]
    assert again["data_fingerprint"] == first["data_fingerprint"]
    other_seed = _run(tmp_path / "c", synthetic_cache, "increc=ori", *FIXED_1, *SMOKE, "seed=1")
    assert other_seed["metrics"] != first["metrics"]  # the seed matters, so the equality above is not vacuous


BACKBONES = tuple(sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml")))  # every configured backbone
# single-interest (dssm), multi-interest (comirec_dr), KuaiFormer with its token-layout cache, and RecBole's models
# (their import changes torch's global anomaly-detection flag: models/recbole_compat.py)
API_CHECKED = ("comirec_dr", "dssm", "kuaiformer", "recbole")
_SAME = ["dataset.preset=tiny", "train.progress=false", "train.batch_size=128", "train.epochs=1",
         "train.early_stopping=false", "eval.seed_control=false", "train.max_batches=2", "increc=on", "train.threads=1"]


@pytest.mark.slow
def test_same_metrics_from_the_command_line_and_the_api_for_every_backbone(tmp_path: Path,
                                                                            synthetic_cache: Path) -> None:
    """Same config and seed, swept by `python -m bench -m model=...` over every backbone in a fresh process, and run
    through bench.api in this one (after whatever the suite ran before): identical metrics (no hidden global state,
    and the API is the command line). Each side has its own stage cache, so each trains every model itself. The
    config is one epoch of IncRec (all three towers, eq. 7), so every backbone, multi-interest ones included, runs
    the whole variant in the sweep. The API side reruns one backbone of each kind (API_CHECKED), not all: the
    equality is a property of the pipeline, and the whole set cost 30 s of the suite's 5 minutes."""
    from bench import api

    given = [*_SAME, f"dataset.cache_dir={synthetic_cache}"]
    out = subprocess.run([sys.executable, "-m", "bench", "-m", *given, f"model={','.join(BACKBONES)}",
                          f"cache.dir={tmp_path / 'cli_cache'}", f"hydra.sweep.dir={tmp_path / 'cli'}"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "cli").rglob("run.json"))]
    from_cli = {" ".join(r["overrides"]): r["metrics"] for r in records}
    assert len(from_cli) == len(BACKBONES)  # one job per backbone
    for model in API_CHECKED:
        here = api.run([*given, f"model={model}", f"cache.dir={tmp_path / 'api_cache'}"],
                       out_dir=tmp_path / "api" / model)
        swept = next(m for o, m in from_cli.items() if f"model={model}" in o.split())
        assert here.metrics == swept, model
        for k in here.data["ks"]:
            assert 0.0 <= here.metrics[f"Inc@{k}"] <= 1.0 and here.metrics[f"Base@{k}"] is not None
        assert set(here.data["training"]["variant"]["loss"][0]) == {"basic", "align", "incremental", "total"}


def test_real_sample_through_the_kuairand_dataset(tmp_path: Path, real_sample: Path) -> None:
    """`dataset=kuairand dataset.root=DIR` on a folder of official-named files runs the pipeline."""
    cfg = compose_config("dataset=kuairand", f"dataset.root={real_sample}", "increc=off", *FIXED_1, *SMOKE,
                         "train.progress=false", "train.batch_size=1024")
    rec = run(cfg, tmp_path).record
    assert rec["pool_size"] == 7583
    assert rec["ks"] == [50, 100]  # auto: a 7.6k-item pool gives K = 50, 100
    assert rec["sample_stats"]["test_requests_nonempty_itg"] == 2226
