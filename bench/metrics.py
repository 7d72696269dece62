"""Base / Sup / Inc / Exposure hit rates of PROTOCOL section 5 (paper eq. 9 and 3.1).

For each evaluated request (a test request with a non-empty ITG) and each K:
    Base@K     = |top_K(base) ∩ ITG| / |ITG|
    Sup@K      = |ranks K+1..2K of base ∩ ITG| / |ITG|
    Inc@K      = |top_K(variant after removing top_K(base)) ∩ ITG| / |ITG|
    Exposure@K = |top_K(variant after removing top_K(base)) ∩ ETG| / |ETG|
reported as the mean over requests (eq. 9 normalised) and, with a micro_ prefix, as all hits over
all truth items.
"""

from __future__ import annotations

import numpy as np

from bench.ragged import Ragged
from bench.retrieve import remove_and_fill, row_membership


def _hits(ranked: np.ndarray, truth: Ragged) -> np.ndarray:
    """[R, n] bool: ranked[r, j] is in truth row r."""
    pool, _ = truth.padded(np.arange(truth.n_rows), pad=-1)
    return row_membership(ranked, pool)


def _ratio(hits: np.ndarray, sizes: np.ndarray, prefix: str, name: str) -> dict[str, float]:
    counts = hits.sum(axis=1)
    total = sizes.sum()
    return {
        f"{prefix}{name}": float(np.mean(counts / sizes)) if len(sizes) else 0.0,
        f"micro_{prefix}{name}": float(counts.sum() / total) if total else 0.0,
    }


def base_sup(base_ranked: np.ndarray, itg: Ragged, ks: list[int], prefix: str = "") -> dict[str, float]:
    """Base@K and Sup@K from a ranking of at least 2*max(ks) items per request."""
    hits = _hits(base_ranked, itg)
    sizes = itg.lengths()
    out: dict[str, float] = {}
    for k in ks:
        out |= _ratio(hits[:, :k], sizes, prefix, f"Base@{k}")
        out |= _ratio(hits[:, k : 2 * k], sizes, prefix, f"Sup@{k}")
    return out


def incremental(variant_ranked: np.ndarray, base_ranked: np.ndarray, itg: Ragged, etg: Ragged, ks: list[int]) -> dict[str, float]:
    """Inc@K and Exposure@K: the variant's top K after removing the base model's top K."""
    out: dict[str, float] = {}
    for k in ks:
        channel = remove_and_fill(variant_ranked, base_ranked[:, :k], k)  # [R, k]
        out |= _ratio(_hits(channel, itg), itg.lengths(), "", f"Inc@{k}")
        out |= _ratio(_hits(channel, etg), etg.lengths(), "", f"Exposure@{k}")
    return out


def popularity_ranking(items: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """[k] the most frequent items of `items` (training positives), ties by smaller id."""
    counts = np.bincount(items, minlength=n_items)
    return np.lexsort((np.arange(n_items), -counts))[:k]
