"""Base / Sup / Inc / Exposure hit rates of PROTOCOL section 5 (paper eq. 9 and 3.1).

For each evaluated request (a test request with a non-empty ITG) and each K:
    Base@K     = |top_K(base) ∩ ITG| / |ITG|
    Sup@K      = |ranks K+1..2K of base ∩ ITG| / |ITG|
    Inc@K      = |top_K(variant after removing top_K(base)) ∩ ITG| / |ITG|
    Exposure@K = |top_K(variant after removing top_K(base)) ∩ ETG| / |ETG|
reported as the mean over requests (eq. 9 normalised) and, with a micro_ prefix, as all hits over
all truth items. The per-request values (HitCounts) are kept for paired significance tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.ragged import Ragged
from bench.retrieve import remove_and_fill, row_membership


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


def base_sup_counts(base_ranked: np.ndarray, itg: Ragged, ks: list[int], prefix: str = "") -> dict[str, HitCounts]:
    """Base@K and Sup@K per request from a ranking of at least 2*max(ks) items per request."""
    hits = _hits(base_ranked, itg)  # [R, n]
    sizes = itg.lengths()
    out: dict[str, HitCounts] = {}
    for k in ks:
        out[f"{prefix}Base@{k}"] = HitCounts(hits[:, :k].sum(axis=1), sizes)
        out[f"{prefix}Sup@{k}"] = HitCounts(hits[:, k : 2 * k].sum(axis=1), sizes)
    return out


def incremental_channels(variant_ranked: np.ndarray, base_ranked: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
    """Per K, the Inc channel [R, K]: the variant's ranking without the base model's top K, first K left."""
    return {k: remove_and_fill(variant_ranked, base_ranked[:, :k], k) for k in ks}


def incremental_counts(variant_ranked: np.ndarray, base_ranked: np.ndarray, itg: Ragged, etg: Ragged,
                       ks: list[int]) -> dict[str, HitCounts]:
    """Inc@K and Exposure@K per request: the variant's top K after removing the base model's top K."""
    out: dict[str, HitCounts] = {}
    for k, channel in incremental_channels(variant_ranked, base_ranked, ks).items():
        out[f"Inc@{k}"] = HitCounts(_hits(channel, itg).sum(axis=1), itg.lengths())
        out[f"Exposure@{k}"] = HitCounts(_hits(channel, etg).sum(axis=1), etg.lengths())
    return out


def summarise(counts: dict[str, HitCounts]) -> dict[str, float]:
    """Mean of per-request ratios (eq. 9 normalised) and, with a micro_ prefix, all hits over all truth items."""
    out: dict[str, float] = {}
    for name, c in counts.items():
        total = int(c.size.sum())
        out[name] = float(np.mean(c.ratios())) if len(c.size) else 0.0
        out[f"micro_{name}"] = float(c.hits.sum() / total) if total else 0.0
    return out


def base_sup(base_ranked: np.ndarray, itg: Ragged, ks: list[int], prefix: str = "") -> dict[str, float]:
    """Base@K and Sup@K (mean and micro) from a ranking of at least 2*max(ks) items per request."""
    return summarise(base_sup_counts(base_ranked, itg, ks, prefix))


def incremental(variant_ranked: np.ndarray, base_ranked: np.ndarray, itg: Ragged, etg: Ragged, ks: list[int]) -> dict[str, float]:
    """Inc@K and Exposure@K (mean and micro): the variant's top K after removing the base model's top K."""
    return summarise(incremental_counts(variant_ranked, base_ranked, itg, etg, ks))


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
