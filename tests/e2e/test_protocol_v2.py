"""Protocol v2 end to end on the synthetic `tiny` preset: early stopping stops and restores the best epoch
(the scored weights reproduce their recorded validation metric), the controls are in the record, the
shuffled-label control runs, and the same config and seed give identical metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.pipeline.cache import StageCache
from bench.evaluation.evaluate import EvalSet, Ranker, ranking_depth, selection_metric
from bench.evaluation.metrics import CONTROLS
from bench.pipeline.stages import Evaluation, standalone_base, trained_variant
from bench.config.schema import train_settings
from bench.engine.build import variant_from_config
from bench.pipeline.prepare import prepare
from bench.pipeline.run import StageTimer, run
from bench.evaluation.evaluate import format_table
from bench.protocol.samples import split_groups
from tests.conftest import compose_config

V2 = ("dataset.preset=tiny", "model=youtube_dnn", "train.progress=false", "train.batch_size=128",
      "train.max_epochs=6", "train.patience=2", "train.max_batches=4")  # short epochs: stopping, not quality, is checked


NA = ("increc=na", "eval.seed_control=true")  # IncRec-NA with the diversity controls the tables run


def _cfg(cache: Path, *overrides: str):
    return compose_config(*V2, f"dataset.cache_dir={cache}", *overrides)


@pytest.fixture(scope="module")
def na_record(tmp_path_factory, synthetic_cache) -> dict:
    return run(_cfg(synthetic_cache, *NA), tmp_path_factory.mktemp("v2-na")).record


def _check_stopping(log: dict, max_epochs: int = 6, patience: int = 2) -> None:
    curve = log["valid_curve"]
    assert len(curve) == log["epochs_run"] <= max_epochs
    assert log["best_epoch"] == int(np.argmax(curve)) + 1  # the first of the best values
    assert log["best_value"] == max(curve)
    if log["stopped"] == "patience":
        assert log["epochs_run"] == log["best_epoch"] + patience
    else:
        assert log["stopped"] == "max_epochs" and log["epochs_run"] == max_epochs


def test_every_model_stops_early_on_its_own_selection_metric(na_record: dict) -> None:
    training = na_record["training"]
    assert set(training) == {"base", "seed_base", "seed2_base", "variant"}  # seed2_base: the A/A arm (PROTOCOL 5)
    k0 = min(na_record["ks"])
    assert (training["base"]["selection_metric"] == training["seed_base"]["selection_metric"]
            == training["seed2_base"]["selection_metric"] == f"Base@{k0}")
    assert training["variant"]["selection_metric"] == f"Inc@{k0}"
    for log in training.values():
        _check_stopping(log)
        assert len(log["epoch_seconds"]) == len(log["valid_seconds"]) == log["epochs_run"]


def test_the_record_holds_protocol_v2_and_the_controls(na_record: dict) -> None:
    rec = na_record
    assert rec["protocol"] == {"version": "v2", "existing_fit": "rolling", "leaks_test_period": False, "valid_days": 1,
                               "early_stopping": True, "warnings": rec["protocol"]["warnings"]}
    assert rec["valid_requests"] > 0 and rec["eval_requests"] > 0
    for k in rec["ks"]:
        for name in ("Base", "Sup", "Inc", *CONTROLS):
            assert 0.0 <= rec["metrics"][f"{name}@{k}"] <= 1.0, name
    assert set(rec["sample_stats"]["splits"]) == {"train", "valid", "test"}
    assert rec["existing_fits"]["mode"] == "rolling"
    table = format_table(rec)
    assert "SupR*" in table and "Seed*" in table and "protocol v2" in table


def test_best_epoch_weights_are_the_ones_scored(tmp_path: Path, synthetic_cache: Path) -> None:
    """Recomputing the selection metric of the returned model gives the recorded best value, and its test
    ranking is that model's."""
    cfg = _cfg(synthetic_cache, "increc=na", "cache.enabled=false")
    prep = prepare(cfg, StageCache(None), StageTimer(), progress=False)
    samples = split_groups(prep.req, prep.retrieved, prep.ds.n_items)
    ks = [10, 20]
    ranker = Ranker(samples, prep.ds.profiles(), int(cfg.requests.max_len), torch.device("cpu"), 4096)
    ev = Evaluation(ranker, EvalSet.build(samples, "test"), EvalSet.build(samples, "valid"),
                    ranking_depth(ks, prep.budget, prep.ds.n_items), min(ks))
    train_cfg = train_settings(cfg)
    base = standalone_base(cfg, prep, samples, ev, 0, train_cfg, StageCache(None), StageTimer(), keep_model=True)
    _, base_metric = selection_metric(ranker, ev.valid, ev.k0)
    assert base_metric(base.model) == pytest.approx(base.training["best_value"], abs=1e-12)
    assert np.array_equal(ranker(base.model, ev.test.rows, ev.depth), base.test_ranked)
    variant = trained_variant(cfg, prep, samples, ev, variant_from_config(cfg.increc), 0, train_cfg, base, StageTimer(),
                              keep_model=True)
    _, inc_metric = selection_metric(ranker, ev.valid, ev.k0, base.valid_ranked)
    assert inc_metric(variant.model) == pytest.approx(variant.training["best_value"], abs=1e-12)


def test_same_config_and_seed_give_identical_metrics(na_record: dict, tmp_path: Path, synthetic_cache: Path) -> None:
    again = run(_cfg(synthetic_cache, *NA), tmp_path).record
    assert again["metrics"] == na_record["metrics"]
    assert again["training"]["variant"]["valid_curve"] == na_record["training"]["variant"]["valid_curve"]


def test_shuffled_labels_control_runs(tmp_path: Path, synthetic_cache: Path) -> None:
    rec = run(_cfg(synthetic_cache, "increc=na_shuffled", "eval.seed_control=false", "train.max_epochs=2"),
              tmp_path).record
    assert rec["config"]["increc"]["shuffle_labels"] is True
    assert rec["metrics"][f"Inc@{rec['ks'][0]}"] is not None
    assert rec["metrics"][f"Seed@{rec['ks'][0]}"] is None  # seed control off
    assert "seed_base" not in rec["training"]


def test_early_stopping_without_validation_requests_is_a_clear_error(tmp_path: Path, synthetic_cache: Path) -> None:
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="valid_days=0"):
        run(_cfg(synthetic_cache, "requests.valid_days=0"), tmp_path)

