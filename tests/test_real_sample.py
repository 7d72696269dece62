"""The recorded statistics on the real KuaiRand-Pure sample agree with PROTOCOL section 2's reference figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.data.kuairand import load_kuairand
from bench.existing.itemcf import fit_itemcf, retrieve
from bench.metrics import base_sup, popularity_ranking
from bench.requests import build_requests
from bench.samples import sample_statistics, split_groups


@pytest.fixture(scope="module")
def pipeline(real_sample: Path):
    ds = load_kuairand(real_sample, progress=False)
    req = build_requests(ds.log)
    pos = req.positives
    train = pos.time_ms < req.first_test_ms
    cf = fit_itemcf(pos.user[train], pos.item[train], ds.n_items)
    samples = split_groups(req, retrieve(cf, req.history(), budget=200), ds.n_items)
    return ds, samples, sample_statistics(samples)


def test_counts_match_exactly(pipeline) -> None:
    ds, _, stats = pipeline
    assert ds.stats["log_rows"] == 113_035
    assert ds.stats["log_duplicates"] == 2_618
    assert stats["first_test_ms"] == 1_651_939_200_000
    assert stats["requests"] == 73_679
    assert stats["requests_test"] == 5_081
    assert stats["requests_nonempty_targets"] == 40_067
    assert stats["test_requests_nonempty_itg"] == 2_226


def test_means_and_shares_within_tolerance(pipeline) -> None:
    _, _, stats = pipeline
    assert stats["mean_targets"] == pytest.approx(0.607, abs=0.0005)
    assert stats["mean_exposures"] == pytest.approx(1.160, abs=0.0005)
    assert stats["mean_history"] == pytest.approx(3.39, abs=0.005)
    assert stats["itg_share"] == pytest.approx(0.386, abs=0.005)
    assert stats["itg_share_test"] == pytest.approx(0.793, abs=0.005)


def test_popularity_floor(pipeline) -> None:
    ds, samples, _ = pipeline
    req = samples.requests
    pos = req.positives
    rows = samples.eval_rows()
    ranking = popularity_ranking(pos.item[pos.time_ms < req.first_test_ms], ds.n_items, 200)
    m = base_sup(np.broadcast_to(ranking, (len(rows), 200)), samples.itg.take(rows), [50, 100])
    assert m["Base@50"] == pytest.approx(0.1299, abs=0.005)
    assert m["Sup@50"] == pytest.approx(0.0681, abs=0.005)
    assert m["Base@100"] == pytest.approx(0.1980, abs=0.005)
