"""The metrics of PROTOCOL section 5 (paper eq. 9 and 3.1), declared once in METRICS.

For each evaluated request (a test request with a non-empty ITG) and each K, a metric is the share
of a truth set (ITG, or ETG for Exposure) that one ranked channel of K items retrieves:
    Base@K     = |top_K(base) ∩ ITG| / |ITG|
    Sup@K      = |ranks K+1..2K of base ∩ ITG| / |ITG|
    SupR@K     = |base's first K after removing its top K and R_u ∩ ITG| / |ITG|      (control)
    Inc@K      = |top_K(variant after removing top_K(base)) ∩ ITG| / |ITG|
    IncR@K     = |variant's first K after removing top_K(base) and R_u ∩ ITG| / |ITG|   (control)
    Seed@K     = |top_K(base of seed + 1000, after removing top_K(base)) ∩ ITG| / |ITG|  (control)
    SeedR@K    = the same after removing top_K(base) and R_u                             (diversity control)
    Seed2R@K   = SeedR of a third base (seed + 2000): the end-to-end A/A arm            (control)
    Exposure@K = |Inc channel ∩ ETG| / |ETG|
    Pop_Base@K, Pop_Sup@K = Base and Sup of the training-popularity ranking (the floor)
    PopR_Base@K = popularity's top K after removing R_u (the floor treated as SupR and IncR are)
reported as the mean over requests (eq. 9 normalised) and, with a micro_ prefix, as all hits over
all truth items. The per-request values (HitCounts) are kept for paired tests and bootstraps.
The record, the console table, the report and the plots all read METRICS; a new metric is one
entry there. COMPARISONS declares protocol v3's paired comparisons of two arms (PROTOCOL 5,
Comparisons) the same way: the report reads them, never a list of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench.protocol.ragged import Ragged
from bench.evaluation.retrieve import remove_and_fill, row_membership


@dataclass(frozen=True)
class Rankings:
    """Every ranking a run's metrics read, one row per evaluated request; None where a run has no such model.

    Each model ranking is at least 2·max(K) + budget deep (SupR and IncR skip K + |R_u| items)."""

    base: np.ndarray  # [R, n] the standalone base model's ranking
    popularity: np.ndarray  # [R, n] the training-period popularity ranking (the same row for every request)
    retrieved: np.ndarray  # [R, budget] R_u of the existing system, padded with -1
    variant: np.ndarray | None = None  # [R, n] the variant's serving tower
    seed_base: np.ndarray | None = None  # [R, n] a second standalone base (seed + SEED_OFFSET)
    seed2_base: np.ndarray | None = None  # [R, n] a third standalone base (seed + SEED2_OFFSET): the A/A arm
    pool_size: int | None = None  # rankings as deep as the pool are complete: skipping may leave fewer than K


Channel = Callable[[Rankings, int], "np.ndarray | None"]  # the K items a metric scores, [R, K], or None


@dataclass(frozen=True)
class Metric:
    """One metric: its name, the channel of K items it scores, the truth it scores against."""

    name: str  # the record's key is f"{name}@{K}" (and f"micro_{name}@{K}")
    channel: Channel
    truth: str = "itg"  # itg | etg
    control: bool = False  # a control of PROTOCOL 5 (rules out a cheaper explanation of Inc > Sup)
    curve: bool = False  # recorded on the hit-rate-vs-K grid for the plots
    description: str = ""  # one line for tables and the docs


SEED_OFFSET = 1000  # Seed@K's second base uses seed + SEED_OFFSET (PROTOCOL 5)
SEED2_OFFSET = 2000  # the A/A control's third base uses seed + SEED2_OFFSET (PROTOCOL 5, Calibration)


def _skip(r: Rankings, ranked: np.ndarray | None, exclude: list[np.ndarray], k: int) -> np.ndarray | None:
    if ranked is None:
        return None
    return remove_and_fill(ranked, np.concatenate(exclude, axis=1), k, pool_size=r.pool_size)


METRICS: tuple[Metric, ...] = (
    Metric("Base", lambda r, k: r.base[:, :k], curve=True, description="base model's top K"),
    Metric("Sup", lambda r, k: r.base[:, k : 2 * k], curve=True, description="base model's ranks K+1..2K"),
    Metric("SupR", lambda r, k: _skip(r, r.base, [r.base[:, :k], r.retrieved], k), control=True,
           description="base model's next K after its top K and R_u"),
    Metric("Inc", lambda r, k: _skip(r, r.variant, [r.base[:, :k]], k), curve=True,
           description="variant's top K after the base's top K"),
    Metric("IncR", lambda r, k: _skip(r, r.variant, [r.base[:, :k], r.retrieved], k), control=True,
           description="variant's top K after the base's top K and R_u"),
    Metric("Seed", lambda r, k: _skip(r, r.seed_base, [r.base[:, :k]], k), control=True,
           description="second base (seed + 1000) after the first base's top K"),
    Metric("SeedR", lambda r, k: _skip(r, r.seed_base, [r.base[:, :k], r.retrieved], k), control=True,
           description="second base (seed + 1000) after the first base's top K and R_u"),
    Metric("Seed2R", lambda r, k: _skip(r, r.seed2_base, [r.base[:, :k], r.retrieved], k), control=True,
           description="third base (seed + 2000) after the first base's top K and R_u (A/A)"),
    Metric("Exposure", lambda r, k: _skip(r, r.variant, [r.base[:, :k]], k), truth="etg",
           description="Inc channel against the exposed items (paper Table 3)"),
    Metric("Pop_Base", lambda r, k: r.popularity[:, :k], description="popularity's top K"),
    Metric("Pop_Sup", lambda r, k: r.popularity[:, k : 2 * k], description="popularity's ranks K+1..2K"),
    Metric("PopR_Base", lambda r, k: _skip(r, r.popularity, [r.retrieved], k),
           description="popularity's top K after removing R_u"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
CONTROLS = tuple(m.name for m in METRICS if m.control)


ROLES = ("primary", "paper", "control", "aa")  # PROTOCOL 5's roles of a comparison


@dataclass(frozen=True)
class Comparison:
    """One paired comparison of protocol v3 (PROTOCOL 5, Comparisons): arm `a` minus arm `b`, per request.

    Arm b is metric `b` of the same record, or, with `b_from="twin"`, metric `b` of the permuted-label twin's
    record (same backbone and seed, `increc=TWIN_VARIANT`). δ is 10% of arm b's mean (its reference)."""

    a: str  # metric of the channel arm, e.g. "IncR"
    b: str  # metric of the reference arm, read from `b_from`
    role: str  # primary | paper | control | aa
    b_label: str = ""  # how the reference arm is called in tables when it is not `b` itself (ShufR)
    b_from: str = "self"  # self | twin
    question: str = ""  # one line: what the comparison asks

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"comparison role {self.role!r}; choose one of {list(ROLES)}")

    @property
    def reference(self) -> str:
        return self.b_label or self.b

    @property
    def name(self) -> str:
        return f"{self.a} − {self.reference}"


TWIN_VARIANT = "na_permuted"  # the mechanism control's variant: IncRec-NA with the flags permuted within each day
COMPARISONS: tuple[Comparison, ...] = (
    Comparison("IncR", "SupR", "primary", question="does the IncRec channel beat extending the base, both skipping R_u?"),
    Comparison("Inc", "Sup", "paper", question="the paper's Table 1 comparison (neither skips R_u)"),
    Comparison("IncR", "IncR", "control", b_label="ShufR", b_from="twin",
               question="does the gain need the incremental labels (flags permuted within each day)?"),
    Comparison("IncR", "SeedR", "control", question="is the gain any second model's diversity (base at seed + 1000)?"),
    Comparison("SeedR", "Seed2R", "aa", question="end-to-end A/A: two exchangeable bases (seed + 1000, seed + 2000)"),
)


def record_comparisons(metrics: dict[str, float | None], ks: list[int]) -> dict[str, dict]:
    """The comparisons one run's record holds both arms of (the twin's arm lives in another record): per
    comparison its role and, per K, the difference of the two arms' means (PROTOCOL 5). Intervals need
    several seeds: bench.report computes them."""
    out = {}
    for c in COMPARISONS:
        if c.b_from != "self":
            continue
        diffs = {str(k): metrics[f"{c.a}@{k}"] - metrics[f"{c.b}@{k}"] for k in ks
                 if metrics.get(f"{c.a}@{k}") is not None and metrics.get(f"{c.b}@{k}") is not None}
        if diffs:
            out[c.name] = {"role": c.role, "a": c.a, "b": c.b, "difference": diffs}
    return out


def comparison(name: str) -> Comparison:
    """The declared comparison called `name` (e.g. 'IncR − SupR')."""
    for c in COMPARISONS:
        if c.name == name:
            return c
    raise KeyError(f"no comparison {name!r}; declared: {[c.name for c in COMPARISONS]}")


def metric(name: str) -> Metric:
    """The declared metric called `name`."""
    for m in METRICS:
        if m.name == name:
            return m
    raise KeyError(f"no metric {name!r}; declared: {list(METRIC_NAMES)}")


@dataclass(frozen=True)
class HitCounts:
    """Per evaluated request: hits of one channel at one K, and the size of the truth set."""

    hits: np.ndarray  # [R] int, truth items the channel retrieved
    size: np.ndarray  # [R] int, |truth| (ITG or ETG), > 0 for every evaluated request

    def ratios(self) -> np.ndarray:
        """[R] the per-request hit rate (the quantity eq. 9 averages)."""
        return self.hits / self.size


def _hits(ranked: np.ndarray, truth: Ragged) -> np.ndarray:
    """[R, n] bool: ranked[r, j] is in truth row r."""
    pool, _ = truth.padded(np.arange(truth.n_rows), pad=-1)
    return row_membership(ranked, pool)


def hit_counts(channel: np.ndarray, truth: Ragged) -> HitCounts:
    """Per request, how many of the channel's items [R, K] are in that request's truth set."""
    return HitCounts(_hits(channel, truth).sum(axis=1), truth.lengths())


def metric_counts(rankings: Rankings, itg: Ragged, etg: Ragged, ks: list[int], curve_ks: list[int] | None = None,
                  metrics: tuple[Metric, ...] = METRICS) -> dict[str, HitCounts]:
    """Per-request hits of every declared metric whose channel this run has, at every K of `ks`
    (and of `curve_ks` for the curve metrics)."""
    out: dict[str, HitCounts] = {}
    truths = {"itg": itg, "etg": etg}
    for m in metrics:
        for k in sorted(set(ks) | (set(curve_ks or []) if m.curve else set())):
            channel = m.channel(rankings, k)
            if channel is not None:
                truth = truths[m.truth]
                out[f"{m.name}@{k}"] = hit_counts(channel, truth)
    return out


def summarise(counts: dict[str, HitCounts]) -> dict[str, float]:
    """Mean of per-request ratios (eq. 9 normalised) and, with a micro_ prefix, all hits over all truth items."""
    out: dict[str, float] = {}
    for name, c in counts.items():
        total = int(c.size.sum())
        out[name] = float(np.mean(c.ratios())) if len(c.size) else 0.0
        out[f"micro_{name}"] = float(c.hits.sum() / total) if total else 0.0
    return out


def curve_ks(ks: list[int], points: int) -> list[int]:
    """`points` K values evenly spaced up to max(ks), plus ks itself: the x axis of hit-rate-vs-K plots."""
    top = max(ks)
    grid = {max(1, int(round(top * (j + 1) / points))) for j in range(points)} if points > 0 else set()
    return sorted(grid | set(ks))


def hits_by_tab(ranked: np.ndarray, itg: Ragged, itg_tabs: np.ndarray, n_tabs: int) -> np.ndarray:
    """[n_tabs] how many of the ranked items hit an ITG target of each scenario (the tab of the target's
    first positive). ranked [R, n]; itg and itg_tabs aligned (itg_tabs[j] is the tab of itg.values[j])."""
    n_items = int(max(ranked.max(initial=0), itg.values.max(initial=0))) + 1
    key = itg.row_ids().astype(np.int64) * n_items + itg.values  # [T]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    hit = _hits(ranked, itg)  # [R, n]
    rows, cols = np.nonzero(hit)
    where = np.searchsorted(sorted_key, rows.astype(np.int64) * n_items + ranked[rows, cols])
    return np.bincount(itg_tabs[order[where]], minlength=n_tabs)[:n_tabs]


def popularity_ranking(items: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """[k] the most frequent items of `items` (training positives), ties by smaller id."""
    counts = np.bincount(items, minlength=n_items)
    return np.lexsort((np.arange(n_items), -counts))[:k]
