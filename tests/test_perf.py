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
