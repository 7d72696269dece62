"""Protocol v3's comparisons of a Table 1 (PROTOCOL 5, "Comparisons" and "Statistics"): per backbone and K,
each declared comparison of bench.evaluation.metrics.COMPARISONS tested over seeds and requests (requests clustered by
user), and per comparison and K the pooled random-effects answer over the table's backbones with δ, its
verdict, its sensitivity and the seeds that would bring it to δ.

Arms come from the IncRec-NA records (`na`) of a backbone; the mechanism control's reference arm (ShufR)
is the IncR of the permuted-label twin (`na_permuted`) of the same backbone and seed. Rows whose records
lack an arm (records older than the arm) say which arm is missing instead of a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.evaluation.metrics import COMPARISONS, TWIN_VARIANT, Comparison
from bench.report.collect import Job, TableRuns, paired_arrays, request_users
from bench.report.stats import CellStats, Pooled, crossed_stats, delta_of, pooled, seeds_needed, users_factor_needed

VARIANT = "na"  # Table 1's variant (the paper's IncRec-NA): its records hold every self-arm


@dataclass
class RowComparison:
    """One comparison in one backbone's row at one K."""

    model: str
    comparison: Comparison
    stats: CellStats | None  # None: an arm is missing from these records (`missing` says which)
    reference_mean: float | None  # mean of the reference arm (δ is 10% of it)
    missing: str = ""
    clustered: bool = True  # requests clustered by user (False: the records lack users and their data are not here)

    @property
    def delta(self) -> float | None:
        return None if self.reference_mean is None else delta_of(self.reference_mean)

    @property
    def poolable(self) -> bool:
        """Whether the row enters the pooled answer: an interval (two seeds or more) and a positive SE (stats.pooled)."""
        return self.stats is not None and self.stats.n_seeds >= 2 and self.stats.se > 0

    @property
    def verdict(self) -> str:
        if self.stats is None:
            return "not measured"
        if self.stats.n_seeds < 2:
            return "no interval (one seed)"
        return self.stats.verdict(self.delta)

    def to_dict(self) -> dict:
        return {"stats": None if self.stats is None else self.stats.to_dict(), "reference_mean": self.reference_mean,
                "delta": self.delta, "verdict": self.verdict, "missing": self.missing or None,
                "clustered_by_user": self.clustered}


@dataclass
class PooledComparison:
    """One comparison at one K pooled over the table's backbones (PROTOCOL 5, Pooled answer)."""

    comparison: Comparison
    rows: list[RowComparison]
    result: Pooled | None  # None with fewer than two rows that have an interval
    delta: float | None  # the backbones' mean δ
    seeds: int | None  # seeds per backbone that would bring the pooled sensitivity to δ (None: seeds alone cannot)
    users: float | None = None  # × the test users that would, at the rows' own seeds (None: users alone cannot)

    @property
    def verdict(self) -> str:
        if self.result is None:
            reasons = sorted({r.missing for r in self.rows if r.stats is None})
            if reasons and all(r.stats is None for r in self.rows):
                return f"not measured: {'; '.join(reasons)}"
            return "not pooled (fewer than two backbones with an interval)"
        return self.result.verdict(self.delta)

    def components(self) -> dict[str, tuple[float, float]]:
        """Range (min, max) over the pooled rows of σ_seed, σ_request, σ_interaction, in hit-rate units."""
        got = [r.stats for r in self.rows if r.poolable]
        if not got:
            return {}
        return {name: (min(getattr(s, name) for s in got), max(getattr(s, name) for s in got))
                for name in ("sigma_seed", "sigma_request", "sigma_interaction")}

    def to_dict(self) -> dict:
        return {"pooled": None if self.result is None else self.result.to_dict(), "delta": self.delta,
                "verdict": self.verdict, "seeds_needed": self.seeds, "users_factor_needed": self.users,
                "backbones": [r.model for r in self.rows if r.poolable],
                "components": {k: list(v) for k, v in self.components().items()}}


@dataclass
class ComparisonsAtK:
    k: int
    rows: dict[str, dict[str, RowComparison]] = field(default_factory=dict)  # model -> comparison name -> row
    pooled: dict[str, PooledComparison] = field(default_factory=dict)  # comparison name -> pooled answer


def _arms(runs: TableRuns, model: str, c: Comparison) -> tuple[list[Job], list[Job], str]:
    a_jobs = runs.select(model, VARIANT)
    b_jobs = a_jobs if c.b_from == "self" else runs.select(model, TWIN_VARIANT)
    if not a_jobs:
        return a_jobs, b_jobs, f"no {VARIANT} records"
    if not b_jobs:
        return a_jobs, b_jobs, f"no {TWIN_VARIANT} records (the permuted-label twin)"
    return a_jobs, b_jobs, ""


def same_base(a_jobs: list[Job], b_jobs: list[Job], k: int) -> bool:
    """Whether two arms' records, seed by seed, served the same base (identical Base@K hits): the twin and
    IncRec-NA skip the same base top K only then (they read it from the stage cache, or retrain it
    deterministically)."""
    b_by = {j.seed: j for j in b_jobs}
    return all(np.array_equal(j.arrays.get(f"Base@{k}/hits"), b_by[j.seed].arrays.get(f"Base@{k}/hits"))
               for j in a_jobs if j.seed in b_by)


def row_comparison(runs: TableRuns, model: str, c: Comparison, k: int) -> RowComparison:
    """`c` at K for one backbone: D[s, r] = a − b per seed both arms have and per test request."""
    a_jobs, b_jobs, missing = _arms(runs, model, c)
    if missing:
        return RowComparison(model, c, None, None, missing)
    arrays = paired_arrays(a_jobs, f"{c.a}@{k}", b_jobs, f"{c.b}@{k}")
    if arrays is None:
        return RowComparison(model, c, None, None, f"the records predate {c.a if a_jobs[0].metric(f'{c.a}@{k}') is None else c.reference}@{k}")
    if c.b_from == "twin" and not same_base(a_jobs, b_jobs, k):
        return RowComparison(model, c, None, None, f"the twin's base differs from IncRec-NA's (Base@{k} hits per "
                                                   "seed): their R-channels skip different items")
    a, b = arrays  # [S, R] each
    users = request_users(a_jobs[0])
    stats = crossed_stats(a - b, users)
    return RowComparison(model, c, stats, float(b.mean()), clustered=users is not None)


def table1_comparisons(runs: TableRuns, models: list[str]) -> list[ComparisonsAtK]:
    """Every declared comparison per backbone of `models` and K, and pooled over the backbones (PROTOCOL 5)."""
    out = []
    for k in runs.any.record["ks"]:
        at_k = ComparisonsAtK(k)
        for model in models:
            at_k.rows[model] = {c.name: row_comparison(runs, model, c, k) for c in COMPARISONS}
        for c in COMPARISONS:
            rows = [at_k.rows[m][c.name] for m in models]
            usable = [r for r in rows if r.poolable]
            deltas = [r.delta for r in usable if r.delta is not None]
            delta = float(np.mean(deltas)) if deltas else None
            result = pooled([r.stats for r in usable]) if len(usable) >= 2 else None
            needed = seeds_needed([r.stats for r in usable], delta) if result is not None and delta else None
            users = users_factor_needed([r.stats for r in usable], delta) if result is not None and delta else None
            at_k.pooled[c.name] = PooledComparison(c, rows, result, delta, needed, users)
        out.append(at_k)
    return out


def pts(x: float | None) -> str:
    """A difference in percentage points, signed ("—" where missing)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * x:+.2f}"
