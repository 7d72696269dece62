"""bench.report.stats, protocol v3 (PROTOCOL 5, Statistics): crossed variance components, the user-clustered
request term, Satterthwaite df, verdicts, random-effects pooling and the seeds projection, against hand-worked
numbers."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from bench.report.stats import (VERDICTS, CellStats, crossed_stats, delta_of, design_mdd, format_interval, pooled,
                                projected_mdd, seeds_needed, users_factor_needed)

# 3 seeds x 4 requests, worked by hand below
D34 = np.array([[0.30, 0.10, 0.50, 0.20],
                [0.40, 0.00, 0.70, 0.10],
                [0.20, 0.30, 0.60, 0.50]])  # [S, N]


def cell(estimate: float, se: float, df: float = 4.0, **kw: float) -> CellStats:
    """A CellStats with the t intervals of (estimate, se, df); other fields from kw or nan."""
    h95, h90 = stats.t.ppf(0.975, df) * se, stats.t.ppf(0.95, df) * se
    base = dict(estimate=estimate, se=se, df=df, low=estimate - h95, high=estimate + h95, low90=estimate - h90,
                high90=estimate + h90, p=float(2 * stats.t.sf(abs(estimate) / se, df)), sigma_seed=math.nan,
                sigma_request=math.nan, sigma_interaction=math.nan, mdd=design_mdd(se, df), n_seeds=5,
                n_requests=1000, n_clusters=1000, ms_seed=math.nan, ms_request=math.nan, ms_resid=math.nan)
    base.update(kw)
    return CellStats(**base)


def interval(low: float, high: float, low90: float, high90: float) -> CellStats:
    """A CellStats with the given 95% and 90% intervals (the verdict reads nothing else)."""
    return dataclasses.replace(cell(0.0, 1.0), low=low, high=high, low90=low90, high90=high90)


def test_variance_components_and_df_by_hand() -> None:
    # grand mean 3.9/12 = 0.325; seed means 0.275, 0.300, 0.400; request means 0.300, 0.1333.., 0.600, 0.2666..
    # SS_seed = 4·(0.05² + 0.025² + 0.075²) = 0.035 -> MS_seed = 0.0175 (2 df)
    # SS_req = 3·(0.025² + 0.19166..² + 0.275² + 0.05833..²) = 0.3491666.. -> MS_req = 0.1163888.. (3 df)
    # SS_total = Σ d² − 12·m² = 1.79 − 1.2675 = 0.5225 -> SS_resid = 0.5225 − 0.035 − 0.3491666.. = 0.1383333..
    # MS_resid = 0.1383333../6 = 0.0230555..
    ms_seed, ms_req, ms_resid = 0.0175, 0.34916666666666667 / 3, 0.13833333333333333 / 6
    c = crossed_stats(D34)
    assert c.estimate == pytest.approx(0.325, abs=1e-15)
    assert (c.ms_seed, c.ms_request, c.ms_resid) == pytest.approx((ms_seed, ms_req, ms_resid), rel=1e-12)
    total = ms_seed + ms_req - ms_resid  # 0.1108333..
    assert c.se == pytest.approx(math.sqrt(total / 12), rel=1e-12)  # 0.0961047
    df = total**2 / (ms_seed**2 / 2 + ms_req**2 / 3 + ms_resid**2 / 6)
    assert c.df == pytest.approx(df, rel=1e-12) and c.df == pytest.approx(2.58221, abs=1e-5)
    assert c.sigma_seed == 0.0  # MS_seed < MS_resid: a negative estimate set to 0
    assert c.sigma_request == pytest.approx(math.sqrt((ms_req - ms_resid) / 3), rel=1e-12)
    assert c.sigma_interaction == pytest.approx(math.sqrt(ms_resid), rel=1e-12)
    t = stats.t.ppf(0.975, df)
    assert (c.low, c.high) == pytest.approx((0.325 - t * c.se, 0.325 + t * c.se), rel=1e-12)
    assert c.p == pytest.approx(2 * stats.t.sf(0.325 / c.se, df), rel=1e-10)
    assert c.mdd == pytest.approx((t + stats.t.ppf(0.8, df)) * c.se, rel=1e-12)
    assert not c.floored and (c.n_seeds, c.n_requests, c.n_clusters) == (3, 4, 4)


def test_mean_squares_match_statsmodels_anova() -> None:
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    d = np.random.default_rng(5).normal(0.0, 1.0, (4, 7)) + np.arange(7)[None, :] * 0.3  # [S, N]
    frame = pd.DataFrame({"d": d.ravel(), "seed": np.repeat(np.arange(4), 7), "req": np.tile(np.arange(7), 4)})
    table = anova_lm(smf.ols("d ~ C(seed) + C(req)", frame).fit())
    c = crossed_stats(d)
    assert c.ms_seed == pytest.approx(table.loc["C(seed)", "mean_sq"], rel=1e-10)
    assert c.ms_request == pytest.approx(table.loc["C(req)", "mean_sq"], rel=1e-10)
    assert c.ms_resid == pytest.approx(table.loc["Residual", "mean_sq"], rel=1e-10)


def test_singleton_clusters_equal_the_unclustered_request_term() -> None:
    d = np.random.default_rng(1).normal(0.02, 0.3, (5, 50)) + np.random.default_rng(2).normal(0, 0.1, 50)
    plain = crossed_stats(d)
    ids = np.random.default_rng(3).permutation(50) * 7 + 1000  # any distinct ids, in any order
    for clustered in (crossed_stats(d, np.arange(50)), crossed_stats(d, ids)):
        assert clustered.ms_request == pytest.approx(plain.ms_request, rel=1e-12)
        assert (clustered.se, clustered.df, clustered.low, clustered.high) == pytest.approx(
            (plain.se, plain.df, plain.low, plain.high), rel=1e-12)


def test_a_user_with_two_agreeing_requests_widens_the_se() -> None:
    # 2 seeds x 4 requests; requests 0 and 1 belong to one user and share a large positive difference
    d = np.array([[0.9, 0.9, 0.0, 0.2],
                  [0.7, 0.7, 0.2, 0.0]])  # [S, N]; request means 0.8, 0.8, 0.1, 0.1; grand mean 0.45
    plain = crossed_stats(d)
    users = crossed_stats(d, np.array([7, 7, 8, 9]))
    # by hand: G = 3 clusters, cluster sums M = (1.6, 0.1, 0.1), sizes (2, 1, 1):
    # Σ (M_g − n_g·m)² = 0.7² + 0.35² + 0.35² = 0.735; MS_req_cl = S·G/((G−1)·N)·0.735 = 2·3/(2·4)·0.735
    assert users.ms_request == pytest.approx(6 / 8 * 0.735, rel=1e-12)
    # unclustered: S·Σ (m_r − m)²/(N − 1) = 2·(4·0.35²)/3
    assert plain.ms_request == pytest.approx(2 * 4 * 0.35**2 / 3, rel=1e-12)
    assert users.n_clusters == 3 and users.se > plain.se
    # the same user holding two requests whose differences disagree: the user's sum cancels, the SE shrinks
    d2 = np.array([[0.9, 0.0, 0.9, 0.2],
                   [0.7, 0.2, 0.7, 0.0]])
    assert crossed_stats(d2, np.array([7, 7, 8, 9])).se < crossed_stats(d2).se


def test_floor_applies_when_seed_and_request_terms_are_below_the_noise() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = rng.normal(0.0, 0.3, (3, 40))  # [S, N] pure interaction: the floor applies in about half the draws
        c = crossed_stats(d)
        total = c.ms_seed + c.ms_request - c.ms_resid
        spread = c.ms_seed**2 / 2 + c.ms_request**2 / 39 + c.ms_resid**2 / 78
        if c.floored:
            assert total <= c.ms_resid
            assert c.se == pytest.approx(math.sqrt(c.ms_resid / 120), rel=1e-12)
            assert c.df == pytest.approx(c.ms_resid**2 / spread, rel=1e-12)
        else:
            assert c.se == pytest.approx(math.sqrt(total / 120), rel=1e-12)
            assert c.df == pytest.approx(total**2 / spread, rel=1e-12)
        assert c.se**2 >= c.ms_resid / 120 * (1 - 1e-12)


def test_one_seed_gives_no_interval_and_no_warning() -> None:
    d = np.random.default_rng(4).normal(0.05, 0.3, (1, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = crossed_stats(d)
        c1 = crossed_stats(d[0])  # a 1-d array is one seed
    assert c.estimate == pytest.approx(d.mean())
    for x in (c.se, c.df, c.low, c.high, c.low90, c.high90, c.p, c.mdd, c.sigma_seed):
        assert math.isnan(x)
    assert c.verdict(0.01) == "cannot tell" and c1.verdict(0.01) == "cannot tell"
    assert c.to_dict()["low"] is None and c.n_seeds == 1
    json.dumps(c.to_dict())


def test_constant_array_gives_a_zero_width_interval_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zero, shifted = crossed_stats(np.zeros((4, 30))), crossed_stats(np.full((4, 30), 0.1))
    assert (zero.se, zero.low, zero.high, zero.p) == (0.0, 0.0, 0.0, 1.0)
    assert (shifted.estimate, shifted.low, shifted.high, shifted.p) == (0.1, 0.1, 0.1, 0.0)
    assert zero.verdict(0.01) == "equivalent" and shifted.verdict(0.01) == "holds"


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        crossed_stats(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError):
        crossed_stats(np.zeros((2, 0)))
    with pytest.raises(ValueError):
        crossed_stats(np.zeros((2, 3)), np.array([1, 2]))


def test_every_verdict_word() -> None:
    assert VERDICTS == ("holds", "reversed", "equivalent", "cannot tell")
    delta = 0.01
    assert interval(0.001, 0.02, 0.003, 0.018).verdict(delta) == "holds"
    assert interval(-0.02, -0.001, -0.018, -0.003).verdict(delta) == "reversed"
    # TOST: the 95% interval holds 0 and leaves ±δ, the 90% interval lies inside ±δ -> equivalent
    assert interval(-0.011, 0.0105, -0.0095, 0.009).verdict(delta) == "equivalent"
    assert interval(-0.011, 0.0105, -0.0095, 0.0101).verdict(delta) == "cannot tell"  # 90% crosses +δ
    assert interval(-0.011, 0.0105, -0.0095, 0.009).verdict(0.005) == "cannot tell"
    # inside ±δ yet above 0: "holds" comes first
    assert interval(0.001, 0.008, 0.002, 0.007).verdict(delta) == "holds"
    nan = math.nan
    assert interval(nan, nan, nan, nan).verdict(delta) == "cannot tell"
    with pytest.raises(ValueError):
        interval(0.001, 0.02, 0.003, 0.018).verdict(-0.01)


def test_delta_and_interval_format() -> None:
    assert delta_of(0.1219) == pytest.approx(0.01219)
    assert delta_of(0.2, share=0.05) == pytest.approx(0.01)
    assert format_interval(-0.0140, 0.0126) == "[-1.40, +1.26]"
    assert format_interval(math.nan, 0.1) == "—"
    assert format_interval(0.5, 0.75, scale=1.0) == "[+0.50, +0.75]"


def _dl_by_hand(y: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """DerSimonian–Laird τ², the random-effects mean and the truncated-HKSJ SE, written out."""
    k = len(y)
    w = 1 / v
    fixed = (w * y).sum() / w.sum()
    q = (w * (y - fixed) ** 2).sum()
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    ws = 1 / (v + tau2)
    mean = (ws * y).sum() / ws.sum()
    scale = (ws * (y - mean) ** 2).sum() / (k - 1)
    return tau2, mean, math.sqrt(max(1.0, scale) / ws.sum())


def test_pooled_matches_a_worked_dersimonian_laird_example() -> None:
    y = np.array([0.000, 0.020, 0.010, 0.040, 0.005])  # [k] row estimates, heterogeneous
    se = np.array([0.002, 0.010, 0.003, 0.012, 0.002])  # [k]
    # by hand: w = 1/se² = 250000, 10000, 111111, 6944, 250000; fixed mean = Σwy/Σw = 0.00436
    # Q = Σ w (y − fixed)² = 19.64 > k − 1 = 4, so τ² = (Q − 4)/(Σw − Σw²/Σw) = 3.82e-5 > 0;
    # with w* = 1/(se² + τ²) the scatter q* = Σ w*(y − ȳ)²/4 = 2.11 > 1: the HKSJ SE is sqrt(q*/Σw*)
    tau2, mean, se_hk = _dl_by_hand(y, se**2)
    assert tau2 == pytest.approx(3.8227e-5, rel=1e-4)
    p = pooled([cell(a, b) for a, b in zip(y, se)] + [cell(0.3, math.nan)])  # a one-seed row is left out
    assert p is not None and p.k == 5 and p.df == 4
    assert p.tau == pytest.approx(math.sqrt(tau2), rel=1e-10)
    assert p.estimate == pytest.approx(mean, rel=1e-10)
    assert p.se == pytest.approx(se_hk, rel=1e-10)
    t = stats.t.ppf(0.975, 4)
    assert (p.low, p.high) == pytest.approx((mean - t * se_hk, mean + t * se_hk), rel=1e-10)
    assert (p.low90, p.high90) == pytest.approx((mean - stats.t.ppf(0.95, 4) * se_hk,
                                                 mean + stats.t.ppf(0.95, 4) * se_hk), rel=1e-10)
    assert p.p == pytest.approx(2 * stats.t.sf(abs(mean) / se_hk, 4), rel=1e-10)
    assert p.mdd == pytest.approx((t + stats.t.ppf(0.8, 4)) * se_hk, rel=1e-10)
    assert "DerSimonian" in p.method and "Hartung" in p.method
    json.dumps(p.to_dict())


def test_pooled_interval_is_statsmodels_hksj_when_the_rows_scatter() -> None:
    from statsmodels.stats.meta_analysis import combine_effects

    y = np.array([0.000, 0.020, 0.010, 0.040, 0.005])
    se = np.array([0.002, 0.010, 0.003, 0.012, 0.002])
    res = combine_effects(y, se**2, method_re="chi2", use_t=True)
    assert res.scale_hksj_re > 1  # the scatter exceeds the model's: the untruncated HKSJ interval
    hksj = res.conf_int(alpha=0.05, use_t=True)[3]
    p = pooled([cell(a, b) for a, b in zip(y, se)])
    assert (p.low, p.high) == pytest.approx(tuple(hksj), rel=1e-10)
    # τ² > 0 but the rows scatter less than the model says (q* = 0.93 < 1): the random-effects t interval,
    # wider than the untruncated HKSJ one
    y2 = np.array([0.010, 0.030, -0.005, 0.020, 0.045])
    se2 = np.array([0.005, 0.008, 0.006, 0.010, 0.007])
    res2 = combine_effects(y2, se2**2, method_re="chi2", use_t=True)
    assert res2.tau2 > 0 and res2.scale_hksj_re < 1
    _, re_ci, _, hksj2 = res2.conf_int(alpha=0.05, use_t=True)
    p2 = pooled([cell(a, b) for a, b in zip(y2, se2)])
    assert (p2.low, p2.high) == pytest.approx(tuple(re_ci), rel=1e-10)
    assert p2.high - p2.low > hksj2[1] - hksj2[0]


def test_pooled_homogeneous_rows_truncate_tau_and_the_hksj_scale() -> None:
    y = np.array([0.010, 0.011, 0.009, 0.0105])  # far more alike than their SEs: Q < k − 1
    se = np.array([0.004, 0.005, 0.006, 0.004])
    w = 1 / se**2
    fixed = (w * y).sum() / w.sum()
    assert (w * (y - fixed) ** 2).sum() < 3  # Q < k − 1: DL τ² is negative before truncation
    p = pooled([cell(a, b) for a, b in zip(y, se)])
    assert p.tau == 0.0
    assert p.estimate == pytest.approx(fixed, rel=1e-12)  # random effects = fixed effect at τ = 0
    # q* < 1: the SE is the model SE 1/sqrt(Σw), not the narrower untruncated HKSJ one
    assert p.se == pytest.approx(1 / math.sqrt(w.sum()), rel=1e-12)
    t = stats.t.ppf(0.975, 3)
    assert p.high - p.low == pytest.approx(2 * t / math.sqrt(w.sum()), rel=1e-12)


def test_pooled_needs_two_rows_with_an_se() -> None:
    assert pooled([cell(0.01, 0.004), cell(0.02, math.nan)]) is None
    assert pooled([]) is None


def _component_row(estimate: float, sigma_seed: float, v_req: float, sigma_e: float, s: int = 5,
                   n: int = 2000) -> CellStats:
    """A row whose mean squares are the expected ones of the given components (V_req: the clustered request
    variance per request) and whose SE is the formula's."""
    ms_resid = sigma_e**2
    ms_seed = n * sigma_seed**2 + ms_resid
    ms_req = s * v_req + ms_resid
    se = math.sqrt((ms_seed + ms_req - ms_resid) / (s * n))
    return cell(estimate, se, sigma_seed=sigma_seed, sigma_interaction=sigma_e, ms_seed=ms_seed, ms_request=ms_req,
                ms_resid=ms_resid, n_seeds=s, n_requests=n)


def test_seeds_needed_by_hand() -> None:
    # four identical rows: τ = 0, pooled SE² = v(S)/4 with v(S) = (σ_seed² + σ_e²/N)/S + V_req/N
    sigma_seed, v_req, sigma_e, n, k = 0.01, 0.0012, 0.26, 2000, 4
    rows = [_component_row(0.005, sigma_seed, v_req, sigma_e, n=n) for _ in range(k)]
    c = stats.t.ppf(0.975, k - 1) + stats.t.ppf(0.8, k - 1)
    # at its own 5 seeds the projection is the rows' pooled sensitivity
    assert projected_mdd(rows) == pytest.approx(c * rows[0].se / 2, rel=1e-10)
    delta = 0.004
    need = (sigma_seed**2 + sigma_e**2 / n) / (k * (delta / c) ** 2 - v_req / n)  # v(S) ≤ k(δ/c)²
    assert seeds_needed(rows, delta) == math.ceil(need)
    assert projected_mdd(rows, math.ceil(need)) <= delta < projected_mdd(rows, math.ceil(need) - 1)
    # the request term alone exceeds δ: no number of seeds reaches it
    assert seeds_needed(rows, 0.0005) is None
    # users: the seed term does not shrink with users, so a δ below c·σ_seed/sqrt(5·4) is out of reach
    assert projected_mdd(rows) > 0.010  # 1.09 points at the rows' own users
    f = users_factor_needed(rows, 0.010)
    assert f is not None and f > 1 and projected_mdd(rows, None, f) <= 0.010 < projected_mdd(rows, None, f - 0.01)
    assert users_factor_needed(rows, c * sigma_seed / math.sqrt(20) * 0.99) is None


def test_seeds_needed_is_none_when_tau_alone_exceeds_delta() -> None:
    rows = [_component_row(e, 0.01, 0.001, 0.26) for e in (-0.05, 0.0, 0.05, 0.1)]  # τ ≈ 6 points
    p = pooled(rows)
    assert p.tau > 0.03
    assert seeds_needed(rows, 0.01) is None
    assert seeds_needed(rows[:1], 0.01) is None  # one row: nothing to pool


def test_the_projection_at_the_rows_own_seeds_is_the_reported_sensitivity() -> None:
    """projected_mdd holds the pooled answer's own HKSJ scale and each row's floor: with the rows' own seeds it
    reproduces the sensitivity the table reports, so seeds_needed never reads "δ at 3 seeds" for a 5-seed table
    whose reported sensitivity lies above δ (a review found the scale-1 projection did)."""
    rng = np.random.default_rng(3)
    rows = [crossed_stats(rng.normal(mu, 0.26, (5, 400)) + rng.normal(0, 0.02, (5, 1)))
            for mu in (0.00, 0.03, -0.02, 0.05, 0.01, -0.04)]  # rows that scatter: HKSJ scale > 1
    p = pooled(rows)
    assert projected_mdd(rows) == pytest.approx(p.mdd, rel=1e-9)
    assert seeds_needed(rows, p.mdd * 0.999) is None or seeds_needed(rows, p.mdd * 0.999) > 5
    assert seeds_needed(rows, p.mdd * 1.001) <= 5
