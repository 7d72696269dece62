"""Statistics of a table cell (PROTOCOL 5).

Protocol v2 (kept, other modules import it): mean ± std over seeds, the paired per-request Wilcoxon
test, the two-level bootstrap interval of a paired difference and the normal-approximation minimum
detectable difference.

Protocol v3 ("Statistics"): `crossed_stats` (the standard error of a cell from the variance components
of the crossed seed × request design, request term clustered by user, Satterthwaite df, t interval,
verdict, design sensitivity), `pooled` (random effects over a table's backbones), `seeds_needed` /
`users_factor_needed` (how many seeds or users bring the pooled sensitivity to δ).

What is written by hand, and why: the balanced two-way ANOVA mean squares, the user-clustered request
mean square and the Satterthwaite degrees of freedom of their linear combination. No maintained Python
library estimates crossed seed × request variance components with a cluster-robust request term and
Satterthwaite df (statsmodels' anova_lm gives the unclustered mean squares of an OLS fit, which the tests
use as the check; its MixedLM fits nested, not crossed-with-clustering, designs; pingouin / lme4-style
tools neither cluster the request term). The sums are a few lines of numpy. The library does the rest:
t quantiles and tail areas from scipy.stats.t, and the random-effects pooling (DerSimonian–Laird τ²,
Hartung–Knapp–Sidik–Jonkman interval) from statsmodels.stats.meta_analysis.combine_effects.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

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


# ---------------------------------------------------------------------------------------------------------
# Protocol v3 (PROTOCOL 5, "Statistics")
# ---------------------------------------------------------------------------------------------------------

VERDICTS = ("holds", "reversed", "equivalent", "cannot tell")
POWER = 0.80  # the design sensitivity's power (PROTOCOL 5, Sensitivity)
DELTA_SHARE = 0.10  # δ as a share of the reference arm's mean hit rate (PROTOCOL 5)
POOLED_METHOD = ("random effects over backbones: DerSimonian–Laird τ² (truncated at 0), Hartung–Knapp–"
                 "Sidik–Jonkman t interval with k−1 df, its scale truncated at 1 (statsmodels combine_effects)")


def _finite(*xs: float) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def _json_ready(obj: object) -> dict:
    """dataclass -> dict with nan / inf as None (JSON has neither)."""
    out = {}
    for k, v in dataclasses.asdict(obj).items():
        if isinstance(v, (float, np.floating)):
            v = float(v)
            out[k] = v if math.isfinite(v) else None
        elif isinstance(v, np.integer):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def _verdict(low: float, high: float, low90: float, high90: float, delta: float) -> str:
    """The verdict rule of PROTOCOL 5: holds (95% interval above 0), reversed (below 0), equivalent (the 90%
    interval inside ±δ, the two one-sided tests at 5%), cannot tell (otherwise, and without an interval)."""
    if delta is not None and _finite(delta) and delta < 0:
        raise ValueError(f"δ must be ≥ 0, got {delta}")
    if not _finite(low, high):
        return VERDICTS[3]
    if low > 0:
        return VERDICTS[0]
    if high < 0:
        return VERDICTS[1]
    if _finite(low90, high90, delta) and -delta < low90 and high90 < delta:
        return VERDICTS[2]
    return VERDICTS[3]


def _t_crit(level: float, df: float) -> float:
    """Two-sided critical value t((1 + level)/2, df); the normal one for infinite df."""
    return float(stats.t.ppf(0.5 + level / 2.0, df)) if math.isfinite(df) else float(stats.norm.ppf(0.5 + level / 2.0))


def design_mdd(se: float, df: float, alpha: float = 0.05, power: float = POWER) -> float:
    """Design sensitivity (t(1 − α/2, df) + t(power, df))·SE (PROTOCOL 5, Sensitivity); nan without an SE."""
    if not _finite(se, df):
        return math.nan
    return float((stats.t.ppf(1.0 - alpha / 2.0, df) + stats.t.ppf(power, df)) * se)


def _t_summary(estimate: float, se: float, df: float) -> dict[str, float]:
    """95% and 90% t intervals, the two-sided p of mean 0 and the design mdd; a zero SE gives zero-width
    intervals and p = 1 (estimate 0) or 0 (any other estimate)."""
    if not _finite(se, df):
        nan = math.nan
        return dict(low=nan, high=nan, low90=nan, high90=nan, p=nan, mdd=nan)
    h95, h90 = _t_crit(0.95, df) * se, _t_crit(0.90, df) * se
    if se > 0:
        p = float(2.0 * stats.t.sf(abs(estimate) / se, df))
    else:
        p = 1.0 if estimate == 0 else 0.0
    return dict(low=estimate - h95, high=estimate + h95, low90=estimate - h90, high90=estimate + h90, p=p,
                mdd=design_mdd(se, df))


@dataclass(frozen=True)
class CellStats:
    """Protocol v3 statistics of one comparison in one table row (PROTOCOL 5, Statistics)."""

    estimate: float  # mean of D over seeds and requests (the table cell)
    se: float  # standard error; nan when n_seeds < 2
    df: float  # Satterthwaite degrees of freedom; nan when n_seeds < 2
    low: float  # 95% t interval (nan when n_seeds < 2)
    high: float
    low90: float  # 90% t interval (the TOST interval)
    high90: float
    p: float  # two-sided t-test p-value of mean 0 (nan when n_seeds < 2)
    sigma_seed: float  # per-request standard deviations; negative variance estimates set to 0
    sigma_request: float
    sigma_interaction: float
    mdd: float  # design sensitivity (t(0.975, df) + t(0.80, df))·se
    n_seeds: int
    n_requests: int
    n_clusters: int
    ms_seed: float  # the mean squares used (ms_request is the user-clustered one)
    ms_request: float
    ms_resid: float
    floored: bool = False  # SE² was raised to its floor MS_resid/(S·N) (seed and request terms below the noise)

    def verdict(self, delta: float) -> str:
        """One of VERDICTS for the smallest effect of interest δ (PROTOCOL 5, Verdicts)."""
        return _verdict(self.low, self.high, self.low90, self.high90, delta)

    def to_dict(self) -> dict:
        """JSON-ready (nan -> None)."""
        return _json_ready(self)


def _cluster_index(clusters: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """[N] dense cluster index 0..G-1 of each request, and G; None: every request its own cluster."""
    if clusters is None:
        return np.arange(n), n
    c = np.asarray(clusters)
    if c.shape != (n,):
        raise ValueError(f"clusters must have shape ({n},), one id per request; got {c.shape}")
    _, inverse = np.unique(c, return_inverse=True)
    return inverse.reshape(n), int(inverse.max()) + 1 if n else 0


def crossed_stats(d: np.ndarray, clusters: np.ndarray | None = None) -> CellStats:
    """Protocol v3 statistics of one cell (PROTOCOL 5, Statistics).

    d: [S, N] per-request differences (seeds x requests, crossed, every seed scores the same N requests;
    a 1-d array is one seed). clusters: [N] user id of each request (None: each request its own cluster).

    Model D[s, r] = μ + a_s + b_r + e_sr, estimated by the balanced two-way ANOVA without replication:
    grand mean m, seed means m_s, request means m_r;
      MS_seed  = N·Σ_s (m_s − m)² / (S − 1)
      MS_resid = Σ_s Σ_r (d − m_s − m_r + m)² / ((S − 1)(N − 1))
      MS_req   = S·Σ_r (m_r − m)² / (N − 1)  (unclustered; used for σ_request only)
    The request term of the SE is taken over users: with G clusters, M_g = Σ_{r in g} m_r and n_g the
    cluster's size, MS_req_cl = S·G / ((G − 1)·N) · Σ_g (M_g − n_g·m)², the cluster-robust (CR1-style)
    analogue; with singleton clusters it is MS_req exactly. E[MS_req_cl] ≈ S·Var(Σ_r b_r)/N + σ_e².
      SE² = (MS_seed + MS_req_cl − MS_resid) / (S·N),
    which estimates σ_seed²/S + Var(Σ_r b_r)/N² + σ_e²/(S·N). Satterthwaite df of that combination,
    coefficients (+, +, −), df_seed = S − 1, df_req = G − 1, df_resid = (S − 1)(N − 1):
      df = (MS_seed + MS_req_cl − MS_resid)² / (MS_seed²/df_seed + MS_req_cl²/df_req + MS_resid²/df_resid).

    Floor: SE² is never below MS_resid/(S·N), the interaction term alone, which is estimated on
    (S − 1)(N − 1) df and is part of the variance whatever the other terms are. The combination falls
    below it (or below 0) only when MS_seed + MS_req_cl < 2·MS_resid, i.e. when the seed and request
    estimates are below the noise by sampling error. When the floor applies, df is Satterthwaite's
    formula with the floored value in the numerator and the same denominator (the estimated sampling
    variance of the combination): df = MS_resid² / (MS_seed²/df_seed + MS_req_cl²/df_req +
    MS_resid²/df_resid). It stays small when MS_seed is comparable to MS_resid (a low MS_seed draw is
    what brings the floor in, and where the seed term dominates the true SE is then well above the
    floor) and large only when MS_seed is far below MS_resid. Chosen by simulation (3,000 draws each,
    σ_request = 3, σ_interaction = 26 points) over the alternatives df_resid (95% coverage 92.1% at
    S = 3 and 93.9% at S = 5 with σ_seed = 1 point, N = 1,000: too narrow where the seed term matters)
    and S − 1 (97–100% where σ_seed ≈ 0). This rule: 95.0% / 95.0% there; at N = 2,226, S = 5 96.9%,
    96.2%, 94.9%, 95.5% for σ_seed = 0.3, 0.6, 1, 2.7 points. It errs wide only where σ_seed is at the
    noise level σ_interaction/√N, where any estimate of the seed term does.

    Variance components (per request): σ_interaction² = MS_resid, σ_seed² = (MS_seed − MS_resid)/N,
    σ_request² = (MS_req − MS_resid)/S (unclustered), negatives set to 0; the square roots are reported.
    95% and 90% intervals: estimate ± t(df)·SE (scipy.stats.t); p: the two-sided t test of mean 0.

    One seed (or one request, or one cluster): the estimate only; SE, df, intervals, p and mdd are nan
    (one seed gives no interval; no request-only interval replaces it). A constant array: SE 0, a
    zero-width interval, p = 1 if the estimate is 0 else 0.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]  # [1, N]
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"crossed_stats needs a non-empty [seeds, requests] array, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("crossed_stats: the differences hold NaN or infinite values")
    n_seeds, n_req = d.shape
    cluster_of, n_clusters = _cluster_index(clusters, n_req)  # [N], G
    nan = math.nan
    constant = bool(np.all(d == d.flat[0]))
    m = float(d.flat[0]) if constant else float(d.mean())
    seed_mean = d.mean(axis=1)  # [S]
    req_mean = d.mean(axis=0)  # [N]
    df_seed, df_req, df_resid = n_seeds - 1, n_clusters - 1, (n_seeds - 1) * (n_req - 1)

    ms_seed = float(n_req * np.sum((seed_mean - m) ** 2) / df_seed) if df_seed > 0 else nan
    ms_req = float(n_seeds * np.sum((req_mean - m) ** 2) / (n_req - 1)) if n_req > 1 else nan
    if df_resid > 0:
        resid = d - seed_mean[:, None] - req_mean[None, :] + m  # [S, N]
        ms_resid = float(np.sum(resid**2) / df_resid)
    else:
        ms_resid = nan
    if df_req > 0:
        cluster_sum = np.bincount(cluster_of, weights=req_mean, minlength=n_clusters)  # [G] M_g
        cluster_size = np.bincount(cluster_of, minlength=n_clusters)  # [G] n_g
        ms_req_cl = float(n_seeds * n_clusters / (df_req * n_req) * np.sum((cluster_sum - cluster_size * m) ** 2))
    else:
        ms_req_cl = nan
    if constant:
        ms_seed, ms_req, ms_resid, ms_req_cl = (0.0 if _finite(x) else nan for x in (ms_seed, ms_req, ms_resid, ms_req_cl))

    def sd(x: float) -> float:
        return math.sqrt(max(x, 0.0)) if _finite(x) else nan

    sigma_interaction = sd(ms_resid)
    sigma_seed = sd((ms_seed - ms_resid) / n_req)
    sigma_request = sd((ms_req - ms_resid) / n_seeds)

    se = df = nan
    floored = False
    if _finite(ms_seed, ms_req_cl, ms_resid):
        total = ms_seed + ms_req_cl - ms_resid  # S·N·SE²
        if constant:
            se, df = 0.0, float(df_resid)
        else:
            spread = ms_seed**2 / df_seed + ms_req_cl**2 / df_req + ms_resid**2 / df_resid  # Var of the combination / 2
            floored = total <= ms_resid
            total = max(total, ms_resid)
            se = math.sqrt(total / (n_seeds * n_req))
            # se 0 without a constant array: request effects that cancel within every user, nothing else
            df = total**2 / spread if se > 0 else float(df_resid)
    t = _t_summary(m, se, df)
    return CellStats(estimate=m, se=se, df=df, low=t["low"], high=t["high"], low90=t["low90"], high90=t["high90"],
                     p=t["p"], sigma_seed=sigma_seed, sigma_request=sigma_request,
                     sigma_interaction=sigma_interaction, mdd=t["mdd"], n_seeds=n_seeds, n_requests=n_req,
                     n_clusters=n_clusters, ms_seed=ms_seed, ms_request=ms_req_cl, ms_resid=ms_resid,
                     floored=floored)


def delta_of(reference_mean: float, share: float = DELTA_SHARE) -> float:
    """δ, the smallest effect of interest: `share` (10%) of the reference arm's mean hit rate (PROTOCOL 5)."""
    if _finite(reference_mean) and reference_mean < 0:
        raise ValueError(f"a hit rate is ≥ 0, got {reference_mean}")
    return float(share * reference_mean)


@dataclass(frozen=True)
class Pooled:
    """Random-effects answer over a table's backbones for one comparison and K (PROTOCOL 5, Pooled answer)."""

    estimate: float
    se: float  # the HKSJ standard error (scale truncated at 1)
    low: float  # 95% t interval, k − 1 df
    high: float
    low90: float  # 90% t interval (TOST)
    high90: float
    p: float
    tau: float  # between-backbone standard deviation (DerSimonian–Laird, truncated at 0)
    k: int  # number of rows pooled
    df: float
    mdd: float  # pooled design sensitivity (t(0.975, df) + t(0.80, df))·se
    method: str

    def verdict(self, delta: float) -> str:
        """One of VERDICTS (PROTOCOL 5, Verdicts, pooled)."""
        return _verdict(self.low, self.high, self.low90, self.high90, delta)

    def to_dict(self) -> dict:
        """JSON-ready (nan -> None)."""
        return _json_ready(self)


def _poolable(rows: list[CellStats]) -> list[CellStats]:
    """Rows with a positive finite SE: one-seed rows (no SE) and constant rows (SE 0, no inverse-variance
    weight) are left out of the pool."""
    return [r for r in rows if _finite(r.se) and r.se > 0]


def pooled(rows: list[CellStats]) -> Pooled | None:
    """Random-effects estimate over the table's backbones (PROTOCOL 5, Pooled answer); None when fewer
    than 2 rows have a positive SE.

    statsmodels.stats.meta_analysis.combine_effects with effect = each row's estimate and variance = se²,
    DerSimonian–Laird τ² (method_re="chi2"). statsmodels 0.15 does not truncate the DL estimate at 0; a
    negative τ² is read as 0, where the random-effects results are the fixed-effect ones (taken from the
    same fit).

    Interval: Hartung–Knapp–Sidik–Jonkman, t with k − 1 df around the estimate, SE² = the model variance
    1/Σw times the weighted residual scale q* = Σ w (y − ȳ)²/(k − 1), with q* truncated at 1 (Knapp &
    Hartung 2003's ad hoc rule; Röver, Knapp & Friede 2015). Why: the normal DL interval is too narrow
    with few studies (k is 6 to 11 backbones here) and with study variances that are themselves
    estimated (each row's SE has ~S − 1 df), because it treats τ² and the weights as known; HKSJ
    replaces the fixed scale 1 by the observed scatter and uses k − 1 df. Untruncated HKSJ can come out
    narrower than even the DL interval when the rows agree more closely than their SEs say (q* < 1,
    likely with noisy SEs); the truncation keeps it at least as wide as the DL interval's t version.
    Both candidate intervals are statsmodels' own (CombineResults.conf_int(use_t=True): the random-
    effects and the "_wls" = HKSJ ones); the wider one is the truncated rule. Simulated (600 tables of k
    rows, each from `crossed_stats` on S = 5 seeds, N ≈ 2,226, σ_seed 1 or 2.7 points, τ 0 or 0.5
    points), the coverage of a true pooled mean of 0 was: truncated HKSJ 95.8–96.2% at k = 6 and
    94.8–96.0% at k = 11; untruncated HKSJ 88.3–93.8% and 92.0–93.8%; the normal DL interval 88.8–89.5%
    and 90.8–93.0%.
    """
    from statsmodels.stats.meta_analysis import combine_effects

    use = _poolable(rows)
    if len(use) < 2:
        return None
    eff = np.array([r.estimate for r in use])  # [k]
    var = np.array([r.se**2 for r in use])  # [k]
    k = len(use)
    with np.errstate(invalid="ignore", divide="ignore"):  # a negative DL τ² (read as 0 below) or Q = 0
        res = combine_effects(eff, var, method_re="chi2", use_t=True)
    tau2 = float(res.tau2)
    if tau2 > 0:
        estimate, var_model, var_hksj = float(res.mean_effect_re), float(res.var_eff_w_re), float(res.var_hksj_re)
    else:  # DL truncated at 0: random effects = fixed effect
        tau2 = 0.0
        estimate, var_model, var_hksj = float(res.mean_effect_fe), float(res.var_eff_w_fe), float(res.var_hksj_fe)
    se = math.sqrt(max(var_model, var_hksj))
    df = float(k - 1)
    t = _t_summary(estimate, se, df)
    return Pooled(estimate=estimate, se=se, low=t["low"], high=t["high"], low90=t["low90"], high90=t["high90"],
                  p=t["p"], tau=math.sqrt(tau2), k=k, df=df, mdd=t["mdd"], method=POOLED_METHOD)


def _row_variance(row: CellStats, n_seeds: np.ndarray | float, users_factor: np.ndarray | float = 1.0) -> np.ndarray:
    """Projected SE² of one row at `n_seeds` seeds and `users_factor` × its users, from its own components:
    σ_seed²/S + V_req/(f·N) + σ_interaction²/(S·f·N), with V_req = max(0, MS_req_cl − MS_resid)/S_row the
    user-clustered request variance per request (held fixed: more users of the same kind)."""
    v_req = max(0.0, row.ms_request - row.ms_resid) / row.n_seeds
    n = row.n_requests * np.asarray(users_factor, dtype=np.float64)
    s = np.asarray(n_seeds, dtype=np.float64)
    return row.sigma_seed**2 / s + v_req / n + row.sigma_interaction**2 / (s * n)


def projected_mdd(rows: list[CellStats], n_seeds: np.ndarray | float | None = None,
                  users_factor: np.ndarray | float = 1.0) -> np.ndarray | float:
    """The pooled design sensitivity a table would have with `n_seeds` seeds (None: each row's own) and
    `users_factor` × its users (PROTOCOL 5, Seeds): each row's SE² recomputed from its components
    (_row_variance, rescaled so that at the row's own seeds and users it is the row's SE²: the floor and the
    clustering carry over), plus the table's τ² (held fixed); pooled SE² = c / Σ 1/(SE_i² + τ²), with c the
    pooled answer's own HKSJ scale (≥ 1, held fixed), so that with each row's own seeds the projection is the
    sensitivity the table reports; mdd = (t(0.975, k−1) + t(0.80, k−1))·SE. nan with fewer than 2 poolable
    rows."""
    use = [r for r in _poolable(rows) if _finite(r.sigma_seed, r.sigma_interaction, r.ms_request, r.ms_resid)]
    pool = pooled(use)
    if pool is None:
        return math.nan
    tau2 = pool.tau**2
    own = [_row_variance(r, r.n_seeds) for r in use]  # the components' SE² at each row's own design
    ratio = [r.se**2 / v if v > 0 else 1.0 for r, v in zip(use, own)]
    scale = pool.se**2 * sum(1.0 / (r.se**2 + tau2) for r in use)  # HKSJ scale of the pooled answer (≥ 1)
    w = sum(1.0 / (q * _row_variance(r, r.n_seeds if n_seeds is None else n_seeds, users_factor) + tau2)
            for r, q in zip(use, ratio))
    out = (stats.t.ppf(0.975, pool.df) + stats.t.ppf(POWER, pool.df)) * np.sqrt(scale / w)
    return float(out) if np.ndim(out) == 0 else out


def seeds_needed(rows: list[CellStats], delta: float, max_seeds: int = 1000) -> int | None:
    """The smallest number of seeds S (the same for every row, S ≥ 2) at which the projected pooled
    sensitivity (projected_mdd) reaches δ (PROTOCOL 5, Seeds). None when even `max_seeds` does not: the
    seed term shrinks as 1/S but the request term and τ² do not (τ alone bounds the pooled SE below by
    τ/√k), or when fewer than 2 rows carry an SE."""
    if not _finite(delta) or delta <= 0:
        return None
    s = np.arange(2, max_seeds + 1)  # [max_seeds - 1]
    mdd = projected_mdd(rows, s)
    if not isinstance(mdd, np.ndarray):
        return None
    ok = np.flatnonzero(mdd <= delta)
    return int(s[ok[0]]) if ok.size else None


def users_factor_needed(rows: list[CellStats], delta: float, n_seeds: int | None = None,
                        max_factor: float = 1000.0) -> float | None:
    """The smallest factor f ≥ 1 on the number of test users (and so requests) at which the projected
    pooled sensitivity reaches δ, at `n_seeds` seeds (None: each row's own), to 2 decimals rounded up
    (PROTOCOL 5, Seeds). None when even `max_factor` does not (the seed term and τ² do not shrink with
    users) or when fewer than 2 rows carry an SE."""
    if not _finite(delta) or delta <= 0:
        return None
    f = np.arange(100, int(max_factor * 100) + 1) / 100.0  # [F]: 1.00, 1.01, ...
    mdd = projected_mdd(rows, n_seeds, f)
    if not isinstance(mdd, np.ndarray):
        return None
    ok = np.flatnonzero(mdd <= delta)
    return float(f[ok[0]]) if ok.size else None


def format_interval(low: float, high: float, scale: float = 100.0) -> str:
    """'[-1.40, +1.26]' (in points with scale 100); '—' without an interval."""
    if not _finite(low, high):
        return "—"
    return f"[{low * scale:+.2f}, {high * scale:+.2f}]"
