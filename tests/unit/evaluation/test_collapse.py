"""bench.evaluation.collapse: a user tower that ranks the same top K for most requests is flagged in a run's
training log and fails a tuning trial."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import bench.evaluation.collapse as collapse
from bench.evaluation.collapse import modal_top_share, ranking_spread
from tests.conftest import compose_config
from tests.e2e.test_tuning import SHORT


def test_modal_top_share_counts_sets_not_orders() -> None:
    same = np.array([[1, 2, 3], [3, 2, 1], [2, 1, 3], [4, 5, 6]])  # three rows hold the set {1, 2, 3}
    assert modal_top_share(same) == 0.75
    assert modal_top_share(np.arange(12).reshape(4, 3)) == 0.25  # every request its own top K
    assert modal_top_share(np.zeros((0, 3), dtype=int)) == 0.0
    assert ranking_spread(same) == {"requests": 4, "k": 3, "modal_top_share": 0.75, "collapsed": True}
    assert ranking_spread(np.arange(12).reshape(4, 3))["collapsed"] is False
    assert ranking_spread(np.array([[1, 2], [1, 2], [3, 4], [5, 6]]))["collapsed"] is True  # half: collapsed
    assert ranking_spread(np.empty((0, 5), dtype=np.int64)) == {"requests": 0, "k": 5, "modal_top_share": 0.0,
                                                                "collapsed": False}


def test_a_run_records_its_base_ranking_spread(tmp_path: Path, synthetic_cache: Path) -> None:
    from bench.pipeline.run import run

    cfg = compose_config(*SHORT, "model=dssm", "increc=off", f"dataset.cache_dir={synthetic_cache}",
                         f"cache.dir={tmp_path / 'cache'}")
    ranking = run(cfg, tmp_path / "run").record["training"]["base"]["ranking"]
    assert ranking["requests"] > 1 and ranking["k"] == 10  # K₀, the smallest K of the tiny preset
    assert 0 < ranking["modal_top_share"] <= 1 and ranking["collapsed"] == (ranking["modal_top_share"] >= 0.5)


def test_a_collapsed_trial_is_rejected_and_says_why(tmp_path: Path, synthetic_cache: Path, monkeypatch) -> None:
    from bench.tuning import trial

    monkeypatch.setattr(collapse, "COLLAPSED_SHARE", 0.0)  # any tower counts as collapsed
    cfg = compose_config("experiment=tune", "model=dssm", *SHORT, f"dataset.cache_dir={synthetic_cache}",
                         "tune.reject_collapsed=true")
    assert trial.run_trial(cfg, tmp_path) == trial.REJECTED_OBJECTIVE  # the worst objective: the sampler steers away
    record = json.loads((tmp_path / "trial.json").read_text())
    assert record["rejected"].startswith("the user tower collapsed: ")
    assert record["training"]["base"]["ranking"]["collapsed"] is True
    assert record["objective"]["value"] > trial.REJECTED_OBJECTIVE  # the record keeps what it reached on validation
    monkeypatch.setattr(collapse, "COLLAPSED_SHARE", 2.0)  # no tower collapses: the trial returns its objective
    assert trial.run_trial(cfg, tmp_path / "kept") == json.loads((tmp_path / "kept" / "trial.json").read_text())["objective"]["value"]
    assert "rejected" not in json.loads((tmp_path / "kept" / "trial.json").read_text())


@dataclass
class FakeTrial:
    number: int
    value: float
    params: dict
    state: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(name="COMPLETE"))
    datetime_start: dt.datetime = dt.datetime(2026, 1, 1)
    datetime_complete: dt.datetime = dt.datetime(2026, 1, 1, 0, 1)


def test_the_search_never_picks_a_rejected_trial(tmp_path: Path) -> None:
    from bench.tuning.outputs import write_search_outputs

    # trial 1 reached the best validation value but collapsed; trial 2 is the best personalised one
    values = {0: 0.05, 1: 0.09, 2: 0.07}
    for n, v in values.items():
        record = {"objective": {"metric": "Base@20", "value": v, "best_epoch": 1, "epochs_run": 2}, "seconds": 10.0,
                  "code_version": {"git_commit": "abc", "dirty": False, "code_digest": "d"}, "data_fingerprint": "f" * 64}
        if n == 1:
            record["rejected"] = "the user tower collapsed: 99% of the 100 validation requests get the same top 20"
        (tmp_path / "sweep" / f"trial_{n}").mkdir(parents=True)
        (tmp_path / "sweep" / f"trial_{n}" / "trial.json").write_text(json.dumps(record))
    study = SimpleNamespace(trials=[FakeTrial(n, 0.0 if n == 1 else v, {"train.lr": 0.01 * (n + 1)}) for n, v in values.items()])
    tuned = write_search_outputs(study, tmp_path / "sweep", tmp_path / "tuned.yaml", tmp_path / "report" / "m.md",
                                 dataset="d", model="m", command="CMD", space={"train.lr": "interval(0.001, 0.1)"},
                                 sampler="TPE")
    assert tuned["provenance"]["best_trial"] == 2 and tuned["values"] == {"train.lr": 0.03}
    assert tuned["provenance"]["n_trials"] == 3 and tuned["provenance"]["rejected_trials"] == 1
    assert tuned["provenance"]["trial_seconds_summed"] == 30.0
    report = (tmp_path / "report" / "m.md").read_text()
    assert "3 completed trials, 1 of them rejected: their tower collapsed" in report
    assert "| 1 | REJECTED: the user tower collapsed: 99% of the 100 validation requests get the same top 20 | 0.02 | 0.0900 |" in report
    study.trials[0].state = study.trials[2].state = SimpleNamespace(name="FAIL")  # only the rejected one finished
    with pytest.raises(RuntimeError, match="1 rejected as collapsed"):
        write_search_outputs(study, tmp_path / "sweep", tmp_path / "tuned.yaml", tmp_path / "report" / "m.md",
                             dataset="d", model="m", command="CMD", space={}, sampler="TPE")
