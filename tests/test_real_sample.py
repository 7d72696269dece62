"""The statistics `python -m bench dataset=kuairand_sample` records agree with PROTOCOL section 2's reference figures.

The run goes through the real config (root resolver, budget 200, K = 50/100) with no training epoch:
the figures checked here do not depend on a trained model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import run
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def record(real_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    cfg = compose_config("dataset=kuairand_sample", f"dataset.root={real_sample}", "increc=off", "train.epochs=0",
                         "train.progress=false")
    return run(cfg, tmp_path_factory.mktemp("sample")).record


def test_counts_match_exactly(record: dict) -> None:
    data, stats = record["dataset_stats"], record["sample_stats"]
    assert data["log_rows"] == 113_035
    assert data["log_duplicates"] == 2_618
    assert stats["first_test_ms"] == 1_651_939_200_000
    assert stats["requests"] == 73_679
    assert stats["requests_test"] == 5_081
    assert stats["requests_nonempty_targets"] == 40_067
    assert stats["test_requests_nonempty_itg"] == 2_226
    assert record["eval_requests"] == 2_226
    assert record["existing_budget"] == 200 and record["ks"] == [50, 100] and record["pool_size"] == 7_583


def test_means_and_shares_within_tolerance(record: dict) -> None:
    stats = record["sample_stats"]
    assert stats["mean_targets"] == pytest.approx(0.607, abs=0.0005)
    assert stats["mean_exposures"] == pytest.approx(1.160, abs=0.0005)
    assert stats["mean_history"] == pytest.approx(3.39, abs=0.005)
    assert stats["itg_share"] == pytest.approx(0.386, abs=0.005)
    assert stats["itg_share_test"] == pytest.approx(0.793, abs=0.005)


def test_popularity_floor(record: dict) -> None:
    m = record["metrics"]
    assert m["Pop_Base@50"] == pytest.approx(0.1299, abs=0.005)
    assert m["Pop_Sup@50"] == pytest.approx(0.0681, abs=0.005)
    assert m["Pop_Base@100"] == pytest.approx(0.1980, abs=0.005)
