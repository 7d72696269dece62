"""The statistics `python -m bench dataset=kuairand_sample` records agree with PROTOCOL section 2's reference
figures: protocol v2 (the default: existing.fit=rolling, one validation day) and protocol v1
(existing.fit=train_period requests.valid_days=0).

The runs go through the real config (root resolver, budget 200, K = 50/100) with no training epoch:
the figures checked here do not depend on a trained model. Counts must match exactly, shares within
±0.005; the popularity floor within its tie tolerance (PROTOCOL 2: ties move it by up to 0.002).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.pipeline.run import run
from tests.conftest import compose_config

NO_TRAINING = ("increc=off", "train.early_stopping=false", "train.epochs=0", "train.progress=false")
V1 = ("existing.fit=train_period", "requests.valid_days=0")


def _record(real_sample: Path, tmp: Path, *overrides: str) -> dict:
    cfg = compose_config("dataset=kuairand_sample", f"dataset.root={real_sample}", *NO_TRAINING, *overrides)
    return run(cfg, tmp).record


@pytest.fixture(scope="module")
def v2_dir(real_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample-v2")
    _record(real_sample, folder)
    return folder


@pytest.fixture(scope="module")
def v2(v2_dir: Path) -> dict:
    return json.loads((v2_dir / "run.json").read_text())


@pytest.fixture(scope="module")
def v1(real_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _record(real_sample, tmp_path_factory.mktemp("sample-v1"), *V1)


def test_v2_counts_match_exactly(v2: dict) -> None:
    data, stats = v2["dataset_stats"], v2["sample_stats"]
    assert data["log_rows"] == 113_035 and data["log_duplicates"] == 2_618
    assert stats["first_test_ms"] == 1_651_939_200_000
    assert stats["first_valid_ms"] == 1_651_852_800_000
    assert (stats["requests_train"], stats["requests_valid"], stats["requests_test"]) == (64_155, 4_443, 5_081)
    assert stats["requests"] == 73_679
    assert stats["requests_nonempty_targets"] == 40_019
    splits = stats["splits"]
    assert [splits[s]["targets"] for s in ("train", "valid", "test")] == [39_036, 2_540, 3_016]
    assert [splits[s]["requests_nonempty_itg"] for s in ("train", "valid", "test")] == [31_043, 1_910, 2_226]
    assert v2["eval_requests"] == 2_226 and v2["valid_requests"] == 1_910
    assert v2["existing_budget"] == 200 and v2["ks"] == [50, 100] and v2["pool_size"] == 7_583
    assert v2["protocol"]["existing_fit"] == "rolling" and not v2["protocol"]["leaks_test_period"]


def test_the_evaluated_test_requests_come_from_1829_users(v2_dir: Path) -> None:
    """PROTOCOL 5 (v3): the 2,226 evaluated test requests come from 1,829 distinct users, the clusters of the
    request term; the record's per-request arrays carry each request's user."""
    users = np.load(v2_dir / "per_request.npz")["users"]
    assert len(users) == 2_226 and len(np.unique(users)) == 1_829


def test_v2_means_and_shares_within_tolerance(v2: dict) -> None:
    stats = v2["sample_stats"]
    assert stats["mean_targets"] == pytest.approx(0.605, abs=0.0005)
    assert stats["mean_history"] == pytest.approx(3.39, abs=0.005)
    splits = stats["splits"]
    assert [splits[s]["itg_share"] for s in ("train", "valid", "test")] == pytest.approx([0.876, 0.813, 0.793], abs=0.005)
    assert [splits[s]["itg_share_with_history"] for s in ("train", "valid", "test")] == pytest.approx(
        [0.835, 0.798, 0.779], abs=0.005)
    assert v2["protocol"]["warnings"] == []  # rolling: training and test shares within 0.10


def test_v2_popularity_floor(v2: dict) -> None:
    m = v2["metrics"]
    assert m["Pop_Base@50"] == pytest.approx(0.1264, abs=0.0025)
    assert m["Pop_Sup@50"] == pytest.approx(0.0700, abs=0.0025)
    assert m["Pop_Base@100"] == pytest.approx(0.1964, abs=0.0025)


def test_v1_reproduces_the_v1_figures(v1: dict) -> None:
    data, stats = v1["dataset_stats"], v1["sample_stats"]
    assert data["log_rows"] == 113_035 and data["log_duplicates"] == 2_618
    assert stats["requests"] == 73_679 and stats["requests_test"] == 5_081 and stats["requests_valid"] == 0
    assert stats["requests_nonempty_targets"] == 40_067
    assert stats["test_requests_nonempty_itg"] == v1["eval_requests"] == 2_226
    assert stats["mean_targets"] == pytest.approx(0.607, abs=0.0005)
    assert stats["mean_exposures"] == pytest.approx(1.160, abs=0.0005)
    assert stats["mean_history"] == pytest.approx(3.39, abs=0.005)
    assert stats["itg_share"] == pytest.approx(0.386, abs=0.005)
    assert stats["itg_share_test"] == pytest.approx(0.793, abs=0.005)
    assert "valid" not in stats["splits"]
    m = v1["metrics"]
    assert m["Pop_Base@50"] == pytest.approx(0.1299, abs=0.0025)
    assert m["Pop_Sup@50"] == pytest.approx(0.0681, abs=0.0025)
    assert m["Pop_Base@100"] == pytest.approx(0.1980, abs=0.0025)


def test_train_period_fit_gives_training_labels_of_another_process(real_sample: Path, tmp_path: Path) -> None:
    """PROTOCOL 2's measurement: fit on the whole training period (v1's system, v2's split), the training
    ITG share is far below the test's, and the run warns."""
    record = _record(real_sample, tmp_path, "existing.fit=train_period")
    splits = record["sample_stats"]["splits"]
    assert splits["train"]["itg_share"] == pytest.approx(0.368, abs=0.005)
    assert splits["train"]["itg_share_with_history"] == pytest.approx(0.160, abs=0.005)
    assert splits["test"]["itg_share"] == pytest.approx(0.793, abs=0.005)
    assert splits["test"]["itg_share_with_history"] == pytest.approx(0.779, abs=0.005)
    assert any("another RTG / ITG mix" in w for w in record["protocol"]["warnings"])


def test_v1_is_recorded_as_v1_with_its_warning(v1: dict) -> None:
    assert v1["protocol"]["version"] == "v1" and v1["protocol"]["existing_fit"] == "train_period"
    assert any("another RTG / ITG mix" in w for w in v1["protocol"]["warnings"])


def test_premise_diagnostics_on_the_sample(v2: dict) -> None:
    """PROTOCOL 2 measured about 3% of test ITG from other scenarios and about 95% of training ITG exposed."""
    premise = v2["sample_stats"]["premise"]
    assert premise["eval_requests"] == 2_226
    assert premise["test_itg_non_primary_share"] == pytest.approx(0.03, abs=0.02)
    assert premise["train_itg_exposed_share"] == pytest.approx(0.95, abs=0.03)
