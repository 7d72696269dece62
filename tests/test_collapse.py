"""bench.collapse: a user tower that ranks the same top K for most requests is flagged in a run's
training log and fails a tuning trial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.collapse as collapse
from bench.collapse import modal_top_share, ranking_spread
from tests.conftest import compose_config
from tests.test_tuning import SHORT


def test_modal_top_share_counts_sets_not_orders() -> None:
    same = np.array([[1, 2, 3], [3, 2, 1], [2, 1, 3], [4, 5, 6]])  # three rows hold the set {1, 2, 3}
    assert modal_top_share(same) == 0.75
    assert modal_top_share(np.arange(12).reshape(4, 3)) == 0.25  # every request its own top K
    assert modal_top_share(np.zeros((0, 3), dtype=int)) == 0.0
    assert ranking_spread(same) == {"requests": 4, "k": 3, "modal_top_share": 0.75, "collapsed": True}
    assert ranking_spread(np.arange(12).reshape(4, 3))["collapsed"] is False
    assert ranking_spread(np.array([[1, 2], [1, 2], [3, 4], [5, 6]]))["collapsed"] is True  # half: collapsed


def test_a_run_records_its_base_ranking_spread(tmp_path: Path, synthetic_cache: Path) -> None:
    from bench.run import run

    cfg = compose_config(*SHORT, "model=dssm", "increc=off", f"dataset.cache_dir={synthetic_cache}",
                         f"cache.dir={tmp_path / 'cache'}")
    ranking = run(cfg, tmp_path / "run").record["training"]["base"]["ranking"]
    assert ranking["requests"] > 1 and ranking["k"] == 10  # K₀, the smallest K of the tiny preset
    assert 0 < ranking["modal_top_share"] <= 1 and ranking["collapsed"] == (ranking["modal_top_share"] >= 0.5)


def test_a_collapsed_trial_fails_and_says_why(tmp_path: Path, synthetic_cache: Path, monkeypatch) -> None:
    from bench.tuning import trial

    monkeypatch.setattr(collapse, "COLLAPSED_SHARE", 0.0)  # any tower counts as collapsed
    cfg = compose_config("experiment=tune", "model=dssm", *SHORT, f"dataset.cache_dir={synthetic_cache}",
                         "tune.reject_collapsed=true")
    with pytest.raises(trial.CollapsedTrial, match="the user tower collapsed"):
        trial.run_trial(cfg, tmp_path)
    record = json.loads((tmp_path / "trial.json").read_text())
    assert record["rejected"].startswith("the user tower collapsed: ")
    assert record["training"]["base"]["ranking"]["collapsed"] is True
    monkeypatch.setattr(collapse, "COLLAPSED_SHARE", 2.0)  # no tower collapses: the trial returns its objective
    assert trial.run_trial(cfg, tmp_path / "kept") == json.loads((tmp_path / "kept" / "trial.json").read_text())["objective"]["value"]
