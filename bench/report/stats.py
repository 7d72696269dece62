"""Statistics of a table cell: mean ± std over seeds, and paired per-request significance."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

TEST_NAME = ("two-sided Wilcoxon signed-rank test, paired per test request "
             "(each request's hit rate averaged over the seeds both sides share)")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value) of per-seed results."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def paired_p(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the two-sided Wilcoxon signed-rank test of a - b ([R] paired per-request values).
    1.0 when every difference is zero (no evidence of any difference)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.shape != np.shape(b) or d.ndim != 1:
        raise ValueError("paired_p needs two 1-d arrays of the same length")
    if not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def format_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"
