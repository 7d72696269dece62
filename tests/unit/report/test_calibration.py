"""bench.report.calibration (PROTOCOL 5, Calibration): the simulation's draws, v3's coverage against v2's
bootstrap on the same draws, and planted effects on hit arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.report.calibration import (WildNull, design_sensitivity, markdown, mc_band, mc_sd, planted, simulate,
                                      simulate_draw, user_sizes)
from bench.report.stats import crossed_stats


def test_simulated_draw_has_the_model_structure() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([1, 3, 2, 1])  # [G]
    # request effects only, all of them the user's: the requests of one user are equal, seeds identical
    d, clusters = simulate_draw(rng, 3, 4, 3, 0.0, 0.1, 0.0, 0.5, user_share=1.0, sizes=sizes)
    assert d.shape == (3, 7) and clusters.tolist() == [0, 1, 1, 1, 2, 2, 3]
    assert np.all(d == d[0]) and d[0, 1] == d[0, 2] == d[0, 3] and d[0, 4] == d[0, 5]
    # seed effects only: constant within a seed
    d, _ = simulate_draw(rng, 4, 4, 3, 0.2, 0.0, 0.0, 0.0, sizes=sizes)
    assert np.allclose(d, d[:, :1]) and d[:, 0].std() > 0
    s = user_sizes(np.random.default_rng(1), 20000, 8)
    assert s.min() == 1 and s.max() <= 8 and s.mean() == pytest.approx(2226 / 1829, abs=0.01)


def test_design_sensitivity_closed_form() -> None:
    sizes = np.array([1, 1, 2])  # N = 4 requests from 3 users
    out = design_sensitivity(2, sizes, 0.1, 0.2, 0.3, user_share=0.5)
    v_b = 0.04 * (0.5 * (1 + 1 + 4) + 0.5 * 4)  # σ_request²·Σ (share·n² + (1 − share)·n) = 0.2
    assert out["se"] == pytest.approx(math.sqrt(0.01 / 2 + v_b / 16 + 0.09 / 8), rel=1e-12)
    ms = (4 * 0.01 + 0.09, 2 * v_b / 4 + 0.09, 0.09)
    df = (ms[0] + ms[1] - ms[2]) ** 2 / (ms[0] ** 2 / 1 + ms[1] ** 2 / 2 + ms[2] ** 2 / 3)
    assert out["df"] == pytest.approx(df, rel=1e-12)


def test_v3_is_calibrated_where_v2_bootstrap_is_not() -> None:
    # S = 5 seeds, ~300 requests: σ_seed = 8 points against σ_interaction/√N = 1.5, the seed term dominates.
    # v2's bootstrap resamples 5 seeds (variance (S − 1)/S of the truth, normal quantiles where t(4) is due):
    # on the same draws it covers about 85%.
    n = 400
    r = simulate(n_seeds=(5,), n_draws=n, rng_seed=1, mu_values=(0.0,), delta=0.02, n_users=250,
                 requests_per_user_max=4, sigma_seed=0.08, sigma_request=0.03, sigma_interaction=0.26, n_boot=200)
    rows = {(x["method"], x["mu_label"]): x for x in r["rows"]}
    band = 3 * mc_sd(0.95, n)  # ±3 Monte-Carlo sd: stable, yet a miscalibrated method falls out
    v3, v2 = rows[("v3", "0")], rows[("v2_bootstrap", "0")]
    assert abs(v3["coverage"] - 0.95) <= band
    assert v2["coverage"] < 0.95 - band
    assert v3["holds"] <= 0.025 + 3 * mc_sd(0.025, n)
    power = rows[("v3", "MDD")]["holds"]
    assert abs(power - 0.80) <= 3 * mc_sd(0.80, n)
    assert rows[("v3", "MDD")]["coverage"] == v3["coverage"]  # shared draws, shift-equivariant interval
    assert {x["mu_label"] for x in r["rows"]} == {"0", "δ", "MDD"}
    assert r["mc"]["coverage_band"] == pytest.approx(list(mc_band(0.95, n)))
    text = markdown(json.loads(json.dumps(r)), "simulation")
    assert "| v3 | 5 | 0 |" in text and "v2_bootstrap" in text and "out: coverage" in text


def fake_table(rng: np.random.Generator, n_seeds: int = 5, n_users: int = 300, theta: float = 0.05,
               sigma_seed: float = 0.01) -> tuple[np.ndarray, ...]:
    """Hit arrays like a table's: |ITG| mostly 1, per-request difficulty shared by both arms and all seeds,
    a per-seed shift of each arm, and arm A ahead of B by θ."""
    sizes = user_sizes(rng, n_users, 4)  # [G]
    clusters = np.repeat(np.arange(n_users), sizes)  # [N]
    n = clusters.size
    size = 1 + rng.binomial(2, 0.04, n)  # [N] |ITG|
    p = rng.beta(1.0, 7.0, n)  # [N] the request's difficulty, mean 0.125
    pa = np.clip(p[None, :] + theta + rng.normal(0, sigma_seed, (n_seeds, 1)), 0, 1)  # [S, N]
    pb = np.clip(p[None, :] + rng.normal(0, sigma_seed, (n_seeds, 1)), 0, 1)  # [S, N]
    return rng.binomial(size, pa), size, rng.binomial(size, pb), size, clusters


def test_planted_effects_run_and_report() -> None:
    a, az, b, bz, clusters = fake_table(np.random.default_rng(3), theta=0.0)
    r = planted(a, az, b, bz, clusters, mu_values=(0.0, "delta", "mdd"), n_plants=200, rng_seed=1)
    assert r["kind"] == "planted" and r["settings"]["n_plants"] == 200 and r["settings"]["seed_sign_patterns"] == 32
    rows = {x["mu_label"]: x for x in r["rows"]}
    assert set(rows) == {"0", "δ", "MDD"}
    assert rows["MDD"]["mu"] == pytest.approx(crossed_stats(a / az - b / bz, clusters).mdd)
    assert rows["δ"]["mu"] == pytest.approx(0.1 * np.mean(b / bz))
    for x in rows.values():
        assert x["n"] == 200 and 0.0 <= x["coverage"] <= 1.0 and 0.0 <= x["holds"] <= 1.0
        assert "coverage_ok" in x["checks"]
    assert "fp_ok" in rows["0"]["checks"] and "power_ok" in rows["MDD"]["checks"]
    # the plant moves the mean by μ in expectation (the null's own mean is 0 over the sign patterns)
    assert rows["MDD"]["mean_estimate"] - rows["0"]["mean_estimate"] == pytest.approx(rows["MDD"]["mu"], rel=0.15)
    assert rows["0"]["coverage"] >= 0.9 and rows["MDD"]["holds"] > rows["0"]["holds"]
    text = markdown(json.loads(json.dumps(r)), "planted")
    assert "v3, wild null" in text and "| MDD |" in text


def test_swap_null_turns_a_real_effect_into_seed_variance_and_the_wild_null_does_not() -> None:
    # arms 5 points apart (θ ≫ σ_seed = 1 point): swapping the arms per seed makes ±θ a seed effect
    a, az, b, bz, clusters = fake_table(np.random.default_rng(4), theta=0.05)
    row = crossed_stats(a / az - b / bz, clusters)
    swap = planted(a, az, b, bz, clusters, mu_values=(0.0,), n_plants=200, rng_seed=2, null="swap")["rows"][0]
    wild = planted(a, az, b, bz, clusters, mu_values=(0.0,), n_plants=200, rng_seed=2)["rows"][0]
    assert abs(swap["mean_estimate"]) < 0.02 and abs(wild["mean_estimate"]) < 0.005  # both nulls average ~0
    assert swap["mean_se"] > 2 * row.se  # θ² joined the seed variance (θ/√S = 2.2 points against SE 1.1)
    # the wild null keeps the row's SE, and its estimates scatter as that SE says
    assert wild["mean_se"] == pytest.approx(row.se, rel=0.1)
    assert wild["sd_estimate"] == pytest.approx(wild["mean_se"], rel=0.2)


def test_wild_null_flips_seeds_and_users_at_their_own_level() -> None:
    rng = np.random.default_rng(0)
    # request effects only (two users of two requests, one of one): MS_resid = 0, so k = 1 and every draw
    # is ±(m_r − m) with one sign per user, the same in every seed
    d = np.tile(np.array([0.5, 0.1, -0.2, 0.4, 0.0]), (3, 1))  # [S, N]; m = 0.16
    null = WildNull.of(d, np.array([9, 9, 4, 4, 7]))
    assert null.req_scale == pytest.approx(1.0) and null.seed_scale == pytest.approx(math.sqrt(1.5))
    dev = d[0] - 0.16
    signs = set()
    for _ in range(20):
        ratio = null.draw(rng) / dev  # [S, N] ±1 up to rounding
        assert np.allclose(np.abs(ratio), 1.0) and np.allclose(ratio, ratio[0])
        assert np.isclose(ratio[0, 0], ratio[0, 1]) and np.isclose(ratio[0, 2], ratio[0, 3])
        signs.add(tuple(ratio[0, [0, 2, 4]].round()))
    assert len(signs) > 4  # the three users flip independently
    # seed effects only: c·ε_s·(m_s − m), one sign per seed, c = sqrt(S/(S − 1)); no request part
    d = np.array([[0.3] * 4, [0.1] * 4, [0.2] * 4])  # [S, N]; m = 0.2
    null = WildNull.of(d, None)
    for _ in range(5):
        z = null.draw(rng)
        assert np.allclose(np.abs(z[:, 0]), math.sqrt(1.5) * np.array([0.1, 0.1, 0.0]))
        assert np.allclose(z, z[:, :1])
    # the request scale k keeps the request signal: 1 − MS_resid/MS_req_cl
    d = np.random.default_rng(1).normal(0.0, 0.3, (4, 60)) + np.random.default_rng(2).normal(0.0, 0.3, 60)
    c = crossed_stats(d)
    assert WildNull.of(d, None).req_scale == pytest.approx(math.sqrt(1 - c.ms_resid / c.ms_request))


def test_planted_refuses_what_cannot_be_planted() -> None:
    a, az, b, bz, clusters = fake_table(np.random.default_rng(5))
    with pytest.raises(ValueError):
        planted(a, az, b, bz, clusters, mu_values=(0.99,), n_plants=1)
    with pytest.raises(ValueError):
        planted(a, az, b, bz, clusters, null="shuffle", n_plants=1)
    with pytest.raises(ValueError):
        planted(a[:, :-1], az[:-1], b, bz, clusters, n_plants=1)
