"""bench.perf at toy sizes: the figures are computed and consistent (no timing targets here)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.perf.itemcf import itemcf_figures
from bench.perf.machine import machine
from bench.perf.retrieval import retrieval_figures


def test_retrieval_figures_are_consistent() -> None:
    f = retrieval_figures(n_items=3000, n_queries=64, dim=16, n_interests=2, k=50, repeats=1)
    assert f["retrieval_gflops"] > 0 and f["matmul_gflops"] > 0
    assert f["retrieval_fraction_of_matmul_peak"] == pytest.approx(f["retrieval_gflops"] / f["matmul_gflops"])


def test_itemcf_figures() -> None:
    rng = np.random.default_rng(0)
    user = np.sort(rng.integers(0, 50, 2000))
    f = itemcf_figures(user, rng.integers(0, 300, 2000), 300, neighbors=20)
    assert f["itemcf_fit_seconds"] > 0 and f["itemcf_positives"] == 2000
    ratio = f["itemcf_time_ratio_vs_implicit"]
    assert ratio == "skipped (pip install implicit)" or ratio == pytest.approx(f["itemcf_fit_seconds"] / f["implicit_fit_seconds"])


def test_machine_is_recorded() -> None:
    m = machine()
    assert m["cores"] >= 1 and m["torch_threads"] >= 1 and isinstance(m["cpu"], str)


def test_recbole_wrapper_scores_every_item_and_sequences_hold_no_held_out_item() -> None:
    """Our tower in RecBole's clothes, on RecBole's ml-100k pipeline (data only, no training)."""
    import tempfile

    import torch

    from bench.perf import sasrec_recbole as sr

    with tempfile.TemporaryDirectory() as tmp, sr._in_tempdir():
        data = sr.recbole_data(0, 1, tmp)
    scorer = sr.Scorer(data.n_items)
    seq, length, _ = sr._prefixes(data)
    scores = scorer.full_sort_predict({"item_id_list": seq[:3], "item_length": length[:3]})
    assert scores.shape == (3, data.n_items)  # RecBole's column 0 (padding) included
    full, full_len = sr._user_sequences(data)
    valid = data.valid._dataset.inter_feat
    held_out = set(zip(valid["user_id"].tolist(), valid["item_id"].tolist()))
    users = data.train._dataset.inter_feat["user_id"]
    by_user = {int(users[r]): r for r in range(len(users))}  # any row of the user: the user id of each sequence
    assert len(full) == len(by_user) and (full_len <= full.shape[1]).all()
    seq_users = sorted(by_user)
    for row in range(0, len(full), 97):
        items = set(full[row, : int(full_len[row])].tolist())
        assert not any((seq_users[row], i) in held_out for i in items)
    assert not torch.is_anomaly_enabled()
