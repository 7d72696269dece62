"""Calibration of the protocol v3 verdict rule (PROTOCOL 5, "Calibration").

Two checks, each returning a plain JSON-ready dict that `markdown` renders:

- `simulate`: arrays drawn from the crossed model D[s, r] = μ + a_s + b_r + e_sr with user-clustered
  request effects (b_r = u_g + v_r), at known components; per S and μ the share of draws whose 95%
  interval covers μ, the share of "holds" at μ = 0 (false positives) and at μ = the design's MDD (power),
  for v3 (`crossed_stats`) and, on the same draws, v2's `two_level_bootstrap`.
- `planted`: a table's own per-request hit arrays, turned into a null with a known true difference of 0
  and a known μ planted in the channel arm (misses turned into hits at a per-seed random rate).

Written by hand: the simulation and the planting (no library draws this design). The statistics under
test are bench.report.stats's own.

Monte-Carlo error: a share p estimated from n draws has sd sqrt(p(1 − p)/n); `mc_band` gives the band
p ± z·sd a calibrated method's share falls in (e.g. 95% ± 1.35 points at n = 1,000, z = 1.96). PROTOCOL 5's
targets: coverage 93–97%, "holds" under μ = 0 at most 5% plus Monte-Carlo error, power at the MDD 80% ± 5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.report.stats import POWER, crossed_stats, delta_of, design_mdd, two_level_bootstrap

NOMINAL = 0.95
COVERAGE_TARGET = (0.93, 0.97)
POWER_TARGET = (POWER - 0.05, POWER + 0.05)
FP_TARGET = 0.05
SAMPLE_REQUESTS, SAMPLE_USERS = 2226, 1829  # the sample's test requests and their users (PROTOCOL 5)
METHODS = ("v3", "v2_bootstrap")


def mc_sd(p: float, n: int) -> float:
    """Monte-Carlo standard deviation of a share p estimated from n independent draws."""
    return math.sqrt(p * (1.0 - p) / n)


def mc_band(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """p ± z·sqrt(p(1 − p)/n): where a method whose true share is p lands over n draws (z = 1.96: 95%)."""
    h = z * mc_sd(p, n)
    return p - h, p + h


def _bands(n: int) -> dict:
    """The Monte-Carlo bands and PROTOCOL 5's targets for n draws (or plants)."""
    return {"n": n, "coverage_band": list(mc_band(NOMINAL, n)), "coverage_target": list(COVERAGE_TARGET),
            "fp_max": FP_TARGET + 1.96 * mc_sd(FP_TARGET, n), "power_band": list(mc_band(POWER, n)),
            "power_target": list(POWER_TARGET)}


def user_sizes(rng: np.random.Generator, n_users: int, requests_per_user_max: int,
               mean_requests_per_user: float = SAMPLE_REQUESTS / SAMPLE_USERS) -> np.ndarray:
    """[G] requests per user: 1 + Poisson(mean − 1), truncated at `requests_per_user_max` (at the sample's
    2,226 / 1,829 about 19% of users have more than one request)."""
    extra = rng.poisson(max(mean_requests_per_user - 1.0, 0.0), n_users)
    return 1 + np.minimum(extra, max(requests_per_user_max - 1, 0))


def simulate_draw(rng: np.random.Generator, n_seeds: int, n_users: int, requests_per_user_max: int,
                  sigma_seed: float, sigma_request: float, sigma_interaction: float, mu: float, *,
                  user_share: float = 0.5, sizes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One draw of the crossed model (PROTOCOL 5, Calibration, Simulation): D[s, r] = μ + a_s + b_r + e_sr,
    a_s ~ N(0, σ_seed²), e_sr ~ N(0, σ_interaction²), and b_r = u_g + v_r for request r of user g, with
    Var u = user_share·σ_request², Var v = (1 − user_share)·σ_request², so requests of one user correlate
    and each request's effect has variance σ_request². Units: hit-rate fractions (σ_interaction ≈ 0.26).
    `sizes` ([G] requests per user) fixes the test set's user structure; None draws it (`user_sizes`).
    Returns (D [S, N], clusters [N], the user of each request)."""
    if sizes is None:
        sizes = user_sizes(rng, n_users, requests_per_user_max)
    clusters = np.repeat(np.arange(len(sizes)), sizes)  # [N]
    n_req = clusters.size
    u = rng.normal(0.0, sigma_request * math.sqrt(user_share), len(sizes))  # [G]
    b = u[clusters] + rng.normal(0.0, sigma_request * math.sqrt(1.0 - user_share), n_req)  # [N]
    a = rng.normal(0.0, sigma_seed, n_seeds)  # [S]
    e = rng.normal(0.0, sigma_interaction, (n_seeds, n_req))  # [S, N]
    return mu + a[:, None] + b[None, :] + e, clusters


def design_sensitivity(n_seeds: int, sizes: np.ndarray, sigma_seed: float, sigma_request: float,
                       sigma_interaction: float, user_share: float = 0.5) -> dict[str, float]:
    """The design's true SE, its df and MDD from the known components (the simulation's "stated MDD").

    SE² = σ_seed²/S + V_b/N² + σ_interaction²/(S·N), V_b = Var(Σ_r b_r) = σ_request²·Σ_g (share·n_g² +
    (1 − share)·n_g); df = Satterthwaite's at the expected mean squares (E MS_seed = N·σ_seed² + σ_e²,
    E MS_req_cl = S·V_b/N + σ_e², E MS_resid = σ_e²); MDD = (t(0.975, df) + t(0.80, df))·SE."""
    sizes = np.asarray(sizes, dtype=np.float64)  # [G]
    n_req, n_users = float(sizes.sum()), len(sizes)
    v_b = sigma_request**2 * float(np.sum(user_share * sizes**2 + (1.0 - user_share) * sizes))
    ve = sigma_interaction**2
    se = math.sqrt(sigma_seed**2 / n_seeds + v_b / n_req**2 + ve / (n_seeds * n_req))
    ms = (n_req * sigma_seed**2 + ve, n_seeds * v_b / n_req + ve, ve)
    dfs = (n_seeds - 1, n_users - 1, (n_seeds - 1) * (n_req - 1))
    df = (ms[0] + ms[1] - ms[2]) ** 2 / sum(m**2 / f for m, f in zip(ms, dfs))
    return {"se": se, "df": df, "mdd": design_mdd(se, df)}


def _intervals(d: np.ndarray, clusters: np.ndarray, methods: Sequence[str], n_boot: int, seed: int) -> dict:
    """Each method's estimate, 95% interval (and v3's 90% one, se, df, floor flag) on one array d [S, N]."""
    out = {}
    for method in methods:
        if method == "v3":
            c = crossed_stats(d, clusters)
            out[method] = dict(estimate=c.estimate, low=c.low, high=c.high, low90=c.low90, high90=c.high90,
                               se=c.se, df=c.df, floored=c.floored)
        elif method == "v2_bootstrap":
            low, high = two_level_bootstrap(d, n_boot=n_boot, seed=seed)
            out[method] = dict(estimate=float(d.mean()), low=low, high=high)
        else:
            raise ValueError(f"unknown method {method!r}; known: {METHODS}")
    return out


def _summarise(rows: list[dict], mu: float, delta: float | None) -> dict:
    """Shares over draws of one (method, μ): coverage, holds, reversed (and equivalent with δ)."""
    n = len(rows)
    low = np.array([r["low"] for r in rows])  # [n]
    high = np.array([r["high"] for r in rows])  # [n]
    est = np.array([r["estimate"] for r in rows])  # [n]
    out = {"n": n, "coverage": float(np.mean((low <= mu) & (mu <= high))), "holds": float(np.mean(low > 0)),
           "reversed": float(np.mean(high < 0)), "mean_estimate": float(est.mean()),
           "sd_estimate": float(est.std(ddof=1)) if n > 1 else math.nan}
    if "se" in rows[0]:
        out["mean_se"] = float(np.mean([r["se"] for r in rows]))
        out["median_df"] = float(np.median([r["df"] for r in rows]))
        out["floored"] = float(np.mean([r["floored"] for r in rows]))
        if delta is not None and delta > 0:
            low90 = np.array([r["low90"] for r in rows])
            high90 = np.array([r["high90"] for r in rows])
            out["equivalent"] = float(np.mean((low <= 0) & (high >= 0) & (-delta < low90) & (high90 < delta)))
    return out


def _checks(row: dict) -> dict:
    """PROTOCOL 5's targets for one row: coverage 93–97%; at μ = 0 "holds" ≤ 5% + MC error; at the MDD
    power 80% ± 5 points."""
    n = row["n"]
    checks = {"coverage_ok": COVERAGE_TARGET[0] <= row["coverage"] <= COVERAGE_TARGET[1]}
    if row["mu_label"] == "0":
        checks["fp_ok"] = row["holds"] <= FP_TARGET + 1.96 * mc_sd(FP_TARGET, n)
    if row["mu_label"] == "MDD":
        checks["power_ok"] = POWER_TARGET[0] <= row["holds"] <= POWER_TARGET[1]
    return checks


def simulate(n_seeds: Sequence[int] = (5, 10, 20), n_draws: int = 1000, rng_seed: int = 0,
             mu_values: Sequence[float] = (0.0,), *, n_users: int = SAMPLE_USERS, requests_per_user_max: int = 8,
             sigma_seed: float = 0.01, sigma_request: float = 0.03, sigma_interaction: float = 0.26,
             user_share: float = 0.5, delta: float | None = None, methods: Sequence[str] = METHODS,
             n_boot: int = 1000) -> dict:
    """Calibration by simulation (PROTOCOL 5, Calibration, Simulation).

    The test set's user structure (`user_sizes`) is drawn once and kept for every S and draw, as a real
    test set is. For each S, `n_draws` arrays are drawn at μ = 0 and every method is run once per draw;
    all intervals here are shift-equivariant (v3's mean squares do not see a constant; the bootstrap's
    percentiles move with it), so the array of μ is the draw plus μ and the same draws serve every μ:
    coverage is the same for each μ, and "holds" at μ = 0 is the false-positive share, at μ = the design
    MDD the power. μ runs over `mu_values`, δ (when given) and the MDD of the design at that S, computed
    from the known components (`design_sensitivity`), the sensitivity the design states.
    `n_boot`: bootstrap draws of v2's interval (fewer in tests, for speed)."""
    rng = np.random.default_rng(rng_seed)
    sizes = user_sizes(rng, n_users, requests_per_user_max)  # [G]
    comps = dict(sigma_seed=sigma_seed, sigma_request=sigma_request, sigma_interaction=sigma_interaction)
    rows = []
    for s in n_seeds:
        design = design_sensitivity(s, sizes, **comps, user_share=user_share)
        per_draw = {m: [] for m in methods}
        for i in range(n_draws):
            d, clusters = simulate_draw(rng, s, n_users, requests_per_user_max, **comps, mu=0.0,
                                        user_share=user_share, sizes=sizes)
            for m, r in _intervals(d, clusters, methods, n_boot, seed=i).items():
                per_draw[m].append(r)
        mus = [(_label(mu), float(mu)) for mu in mu_values]
        if delta is not None:
            mus.append(("δ", float(delta)))
        mus.append(("MDD", design["mdd"]))
        for m in methods:
            for label, mu in mus:
                shifted = [{k: (v + mu if k in _SHIFT else v) for k, v in r.items()} for r in per_draw[m]]
                row = {"method": m, "n_seeds": s, "n_requests": int(sizes.sum()), "mu_label": label, "mu": mu,
                       **_summarise(shifted, mu, delta), "design_se": design["se"], "design_df": design["df"],
                       "design_mdd": design["mdd"]}
                row["checks"] = _checks(row)
                rows.append(row)
    return {"kind": "simulation",
            "settings": {"n_seeds": list(n_seeds), "n_draws": n_draws, "rng_seed": rng_seed, **comps,
                         "user_share": user_share, "n_users": int(len(sizes)), "n_requests": int(sizes.sum()),
                         "requests_per_user_max": requests_per_user_max, "delta": delta, "methods": list(methods),
                         "n_boot": n_boot},
            "mc": _bands(n_draws), "rows": rows}


_SHIFT = ("estimate", "low", "high", "low90", "high90")


def _label(mu: float) -> str:
    return "0" if mu == 0 else f"{mu:g}"


def _rates(hits: np.ndarray, size: np.ndarray, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """[S, N] hits and sizes as float arrays (a [N] size is every seed's)."""
    h = np.asarray(hits, dtype=np.int64)
    z = np.broadcast_to(np.asarray(size, dtype=np.int64), h.shape)
    if h.ndim != 2 or h.shape[0] != n_seeds:
        raise ValueError(f"hits must be [S, N] with S = {n_seeds}, got {h.shape}")
    if np.any(z <= 0) or np.any(h < 0) or np.any(h > z):
        raise ValueError("need 0 ≤ hits ≤ size and size > 0 for every request")
    return h, np.array(z)


NULLS = ("wild", "swap")
_SIGNS = np.array([-1.0, 1.0])


@dataclass(frozen=True)
class WildNull:
    """The wild null of one table row (see `planted`): D0[s, r] = c·ε_s·(D[s, r] − m_r) + k·η_g(r)·(m_r − m)
    with random signs ε per seed and η per user."""

    within: np.ndarray  # [S, N] D − m_r: seed deviations + interaction
    req_dev: np.ndarray  # [N] m_r − m: request deviations
    cluster_of: np.ndarray  # [N] dense user index of each request
    n_users: int
    seed_scale: float  # c = sqrt(S/(S − 1))
    req_scale: float  # k = sqrt(max(0, 1 − MS_resid/MS_req_cl))

    @classmethod
    def of(cls, d: np.ndarray, clusters: np.ndarray | None) -> WildNull:
        """The parts of d [S, N] (clusters [N], None: one user per request)."""
        d = np.asarray(d, dtype=np.float64)
        n_seeds, n_req = d.shape
        row = crossed_stats(d, clusters)
        req_mean = d.mean(axis=0)  # [N]
        ids = np.arange(n_req) if clusters is None else np.asarray(clusters)
        _, cluster_of = np.unique(ids, return_inverse=True)
        cluster_of = cluster_of.reshape(n_req)
        signal = 1.0 - row.ms_resid / row.ms_request if _finite_pair(row.ms_resid, row.ms_request) else 0.0
        return cls(within=d - req_mean[None, :], req_dev=req_mean - d.mean(), cluster_of=cluster_of,
                   n_users=int(cluster_of.max()) + 1,
                   seed_scale=math.sqrt(n_seeds / (n_seeds - 1)) if n_seeds > 1 else 1.0,
                   req_scale=math.sqrt(max(signal, 0.0)))

    def draw(self, rng: np.random.Generator, seed_sign: np.ndarray | None = None) -> np.ndarray:
        """[S, N] one null array; `seed_sign` ([S] ±1) when the caller drew the seed signs already."""
        if seed_sign is None:
            seed_sign = rng.choice(_SIGNS, self.within.shape[0])  # [S]
        user_sign = rng.choice(_SIGNS, self.n_users)[self.cluster_of]  # [N] one sign per user
        return (self.seed_scale * seed_sign[:, None] * self.within
                + self.req_scale * user_sign[None, :] * self.req_dev[None, :])


def planted(a_hits: np.ndarray, a_size: np.ndarray, b_hits: np.ndarray, b_size: np.ndarray,
            clusters: np.ndarray | None, mu_values: Sequence[float | str] = (0.0, "delta", "mdd"),
            n_plants: int = 200, rng_seed: int = 0, *, null: str = "wild", rate_cv: float = 0.2,
            methods: Sequence[str] = ("v3",), n_boot: int = 1000) -> dict:
    """Planted effects on a table's own arrays (PROTOCOL 5, Calibration, Planted effect on real records).

    a_hits, b_hits: [S, N] hits of the channel arm A and the reference arm B (seeds × requests, the same
    requests); a_size, b_size: [S, N] or [N] |ITG| per request; clusters: [N] user of each request.
    D = A − B per request (hit rates). μ values: floats, "delta" (δ = 10% of B's mean hit rate) and
    "mdd" (the real row's v3 MDD, the sensitivity the table states for that row).

    The null (true difference exactly 0, the table's structure kept), one per plant:
    - null="swap" (the first design, kept for comparison): D0[s, r] = ε_s·D[s, r] with ε_s = ±1 at random,
      the arms swapped inside the seeds with ε_s = −1. Under exchangeable arms this leaves the distribution
      unchanged and it keeps the seed, request, interaction and user structure. Where the real arms differ
      by θ it is not a null of this table: the expectation over signs is still 0, but θ becomes ±θ per
      seed, so θ² joins the seed variance. Measured on the sample's Table 1 (K = 50, 11 backbones,
      200 plants): Base − Sup (θ ≈ 6 points) gives null SEs of 2.2–3.2 points against the rows' 0.6–0.9
      and power at the row's MDD of 2–8%; IncR − SupR with θ ≈ −1 point (kuaiformer, GRU4Rec) 29–33%.
      With few seeds the patterns where every sign agrees (2 of 2^S, 6% at S = 5) also give ±θ with no
      seed spread to absorb it.
    - null="wild" (default): the crossed decomposition D = m + (m_s − m) + (m_r − m) + e_sr, with the
      grand mean m (so the real θ) removed and each part's sign randomised at its own level:
        D0[s, r] = c·ε_s·(D[s, r] − m_r) + k·η_g(r)·(m_r − m),
      ε_s = ±1 per seed, η_g = ±1 per user (a user's requests flip together, so the clustering is kept),
      c = sqrt(S/(S − 1)) and k = sqrt(max(0, 1 − MS_resid/MS_req_cl)). D − m_r holds the seed deviations
      and the interaction; c undoes the (S − 1)/S that centring takes from them. m_r − m holds the request
      effects plus the interaction's noise σ_e²/S, which the first part already carries; k keeps the
      request signal only. Over the signs the null estimate has variance c²·Σ_s (m_s − m)²/S² +
      k²·Σ_g (M_g − n_g·m)²/N², whose expectation is σ_seed²/S + Var(Σ_r b_r)/N² + σ_e²/(S·N), the
      true variance of the row; and the row's request term is re-drawn, which a fixed set of requests
      cannot do otherwise. On the same table the null's mean v3 SE is within a few % of the row's SE in
      every row (Base − Sup included), and the null estimates' sd matches it.
    The seed part takes 2^S sign patterns (32 at S = 5): coverage is a randomisation property conditional
    on the table's arrays, so one row's planted coverage varies around 95% with its realised seed
    deviations (rows whose SE sits at the floor over-cover); read it over a table's rows.

    The plant: misses of the channel arm (A; under "swap" the arm that is A after the swap) are turned into
    hits at rate_s = rate·(1 + ε'_s), ε'_s ~ N(0, rate_cv) clipped at −0.9 (and rate_s at 1), hits added per
    request ~ Binomial(misses, rate_s), rate = μ / mean over seeds and requests of misses/size, so the
    planted increase of the mean per-request hit rate is μ in expectation; the per-seed rate keeps the
    seed term in the plant. Plant arrays: D0 + added/size. Coverage: share of plants whose 95% interval
    covers μ; "holds" at μ = 0: false positives; at μ = the row's MDD: power. The plant adds its own
    variance (binomial hits, the per-seed rate), which the row's stated MDD, measured without it, does
    not hold: on the sample's rows (wild null, rate_cv 0.2) the plants' SE at the MDD is 3–12% above the
    row's, and the power at the stated MDD is about 70% on IncR − SupR and Inc − Sup (62–90% by row) and
    77% on Base − Sup, rather than 80%.
    """
    if null not in NULLS:
        raise ValueError(f"null must be one of {NULLS}, got {null!r}")
    if n_plants < 1:
        raise ValueError("n_plants must be ≥ 1")
    a_h = np.asarray(a_hits)
    n_seeds = a_h.shape[0] if a_h.ndim == 2 else 0
    a_h, a_z = _rates(a_hits, a_size, n_seeds)  # [S, N] each
    b_h, b_z = _rates(b_hits, b_size, n_seeds)  # [S, N] each
    if a_h.shape != b_h.shape:
        raise ValueError(f"the arms' arrays differ in shape: {a_h.shape} vs {b_h.shape}")
    a_rate, b_rate = a_h / a_z, b_h / b_z  # [S, N]
    d = a_rate - b_rate  # [S, N]
    row = crossed_stats(d, clusters)
    delta = delta_of(float(b_rate.mean()))
    mus = []
    for mu in mu_values:
        if mu == "delta":
            mus.append(("δ", delta))
        elif mu == "mdd":
            mus.append(("MDD", row.mdd))
        else:
            mus.append((_label(float(mu)), float(mu)))
    wild = WildNull.of(d, clusters) if null == "wild" else None
    rng = np.random.default_rng(rng_seed)
    per = {(m, label): [] for m in methods for label, _ in mus}
    for i in range(n_plants):
        sign = rng.choice(_SIGNS, n_seeds)  # [S]
        if null == "swap":
            swapped = (sign < 0)[:, None]  # [S, 1]
            d0 = sign[:, None] * d
            misses = np.where(swapped, b_z - b_h, a_z - a_h)  # [S, N] misses of the arm that is A now
            size = np.where(swapped, b_z, a_z)
        else:
            d0 = wild.draw(rng, sign)
            misses, size = a_z - a_h, a_z
        miss_rate = float(np.mean(misses / size))
        for label, mu in mus:
            if not math.isfinite(mu):
                continue
            if mu < 0 or mu > miss_rate:
                raise ValueError(f"μ = {mu} cannot be planted: it must lie in [0, the arm's miss rate {miss_rate:.4f}]")
            rate = mu / miss_rate if miss_rate > 0 else 0.0
            jitter = np.maximum(rng.normal(0.0, rate_cv, n_seeds), -0.9)  # [S]
            rate_s = np.clip(rate * (1.0 + jitter), 0.0, 1.0)  # [S]
            added = rng.binomial(misses, rate_s[:, None])  # [S, N]
            for m, r in _intervals(d0 + added / size, clusters, methods, n_boot, seed=i).items():
                per[(m, label)].append(r)
    rows = []
    for m in methods:
        for label, mu in mus:
            if not per[(m, label)]:
                continue
            r = {"method": m, "null": null, "n_seeds": n_seeds, "n_requests": int(d.shape[1]), "mu_label": label,
                 "mu": mu, **_summarise(per[(m, label)], mu, delta), "row_mdd": row.mdd, "row_se": row.se}
            r["checks"] = _checks(r)
            rows.append(r)
    return {"kind": "planted",
            "settings": {"n_plants": n_plants, "rng_seed": rng_seed, "null": null, "rate_cv": rate_cv,
                         "methods": list(methods), "n_boot": n_boot, "delta": delta,
                         "seed_sign_patterns": 2**n_seeds},
            "row": row.to_dict(), "mc": _bands(n_plants), "rows": rows}


def _finite_pair(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and b > 0


def _pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100.0 * x:.1f}%"


def _pts(x: float | None, sign: bool = True) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100.0 * x:+.2f}" if sign else f"{100.0 * x:.2f}"


def markdown(results: dict, title: str) -> str:
    """The calibration tables of `simulate` or `planted` results as Markdown (S, μ, coverage, false
    positives, power, Monte-Carlo band, method)."""
    mc, st = results["mc"], results["settings"]
    lines = [f"### {title}", ""]
    if results["kind"] == "simulation":
        lines.append(f"Simulated crossed arrays, {st['n_draws']} draws per S; σ_seed {100 * st['sigma_seed']:.2f}, "
                     f"σ_request {100 * st['sigma_request']:.2f}, σ_interaction {100 * st['sigma_interaction']:.2f} "
                     f"points per request ({100 * st['user_share']:.0f}% of σ_request² a user effect); "
                     f"{st['n_requests']} requests from {st['n_users']} users.")
    else:
        row = results["row"]
        lines.append(f"Planted effects on the table's arrays, {st['n_plants']} plants ({st['null']} null, "
                     f"{st['seed_sign_patterns']} seed sign patterns), per-seed rate cv {st['rate_cv']}; the row: "
                     f"D̄ {_pts(row['estimate'])}, SE {_pts(row['se'], False)}, MDD {_pts(row['mdd'], False)} "
                     f"points, δ {_pts(st['delta'], False)}.")
    lines += ["", "| method | S | μ | μ (points) | coverage | holds | reversed | mean SE (points) | check |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["rows"]:
        method = r["method"] if results["kind"] == "simulation" else f"{r['method']}, {r['null']} null"
        bad = [k.removesuffix("_ok") for k, ok in r["checks"].items() if not ok]
        se = r.get("mean_se", r.get("sd_estimate"))
        lines.append(f"| {method} | {r['n_seeds']} | {r['mu_label']} | {_pts(r['mu'])} | {_pct(r['coverage'])} | "
                     f"{_pct(r['holds'])} | {_pct(r['reversed'])} | {_pts(se, False)} | "
                     f"{'ok' if not bad else 'out: ' + ', '.join(bad)} |")
    lo, hi = mc["coverage_band"]
    plo, phi = mc["power_band"]
    lines += ["", f"Targets (PROTOCOL 5): coverage {_pct(COVERAGE_TARGET[0])}–{_pct(COVERAGE_TARGET[1])}; "
              f"\"holds\" at μ = 0 at most {_pct(mc['fp_max'])} (5% plus 1.96 Monte-Carlo sd); power at the MDD "
              f"{_pct(POWER_TARGET[0])}–{_pct(POWER_TARGET[1])}. Monte-Carlo 95% band over n = {mc['n']}: a "
              f"calibrated coverage lands in {_pct(lo)}–{_pct(hi)}, a power of 80% in {_pct(plo)}–{_pct(phi)}."
              + (" Coverage is the same for every μ (shift-equivariant intervals on shared draws)."
                 if results["kind"] == "simulation" else
                 " Power is read at the row's stated MDD; the plant's own noise is not in that MDD.")
              + " v2_bootstrap has no SE: its column shows the sd of its estimates."]
    return "\n".join(lines) + "\n"
