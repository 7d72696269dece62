"""Statistics of a table cell: mean ± std over seeds, paired per-request significance, the two-level
bootstrap interval of a paired difference and the minimum detectable difference (PROTOCOL 5)."""

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


def _quantiles(draws: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def two_level_bootstrap(per_seed_diffs: list[np.ndarray] | np.ndarray, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Percentile `level` interval of the mean paired difference (e.g. Inc − Sup) over seeds and requests.

    `per_seed_diffs`: [S, R], one row per seed of per-request differences, all rows over the same R
    test requests (a list of S arrays of length R is stacked). The statistic is the mean over seeds
    and requests, i.e. the table's mean over seeds of the per-request mean.

    One bootstrap draw resamples the S seeds with replacement, then the R requests with replacement,
    and uses the *same* request indices for every resampled seed: the seeds score the same test
    requests, so a request's difficulty is shared by all seeds, and drawing the requests once per
    draw keeps that correlation (independent request draws per seed would treat the seeds' requests
    as independent samples and understate the request-level variance of the seed mean). With one
    seed this is the plain request bootstrap. The draw's statistic is w·D·c / (S·R) with w the seed
    counts and c the request counts of the draw (multinomial), computed in chunks of draws (about
    4M request indices at a time, so memory stays bounded for large test sets).
    Seeded (numpy default_rng(seed)), so a report regenerates the same interval. A constant D gives
    the zero-width interval (D, D) exactly.
    """
    d = np.asarray(np.stack([np.asarray(x, dtype=np.float64) for x in per_seed_diffs])
                   if isinstance(per_seed_diffs, (list, tuple)) else per_seed_diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"two_level_bootstrap needs a non-empty [seeds, requests] array, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("two_level_bootstrap: the differences hold NaN or infinite values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n_seeds, n_req = d.shape
    if np.all(d == d.flat[0]):
        return float(d.flat[0]), float(d.flat[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, (1 << 22) // n_req))
    draws = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        seed_idx = rng.integers(0, n_seeds, size=(b, n_seeds))
        req_idx = rng.integers(0, n_req, size=(b, n_req))
        offsets = np.arange(b)[:, None]
        w = np.bincount((offsets * n_seeds + seed_idx).ravel(), minlength=b * n_seeds).reshape(b, n_seeds)
        c = np.bincount((offsets * n_req + req_idx).ravel(), minlength=b * n_req).reshape(b, n_req)
        draws[start : start + b] = np.einsum("br,br->b", w @ d, c) / (n_seeds * n_req)
    return _quantiles(draws, level)


MDD_METHOD = ("minimum detectable difference: (z_{1-α/2} + z_power)·sd/√n, the normal approximation "
              "for a two-sided paired test of n requests, α = 0.05, 80% power")


def minimum_detectable_difference(sd_diff: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean paired difference a two-sided test at level `alpha` detects with
    probability `power`, for `n` paired requests whose per-request differences have standard deviation
    `sd_diff`: (z_{1-α/2} + z_{power}) · sd / sqrt(n) (normal approximation of the paired test; e.g.
    α = 0.05, power 0.8: 2.8016 · sd / sqrt(n)). In the units of `sd_diff`; NaN when n < 1."""
    if n < 1 or not math.isfinite(sd_diff):
        return math.nan
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha}, {power}")
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)
    return float(z * sd_diff / math.sqrt(n))
