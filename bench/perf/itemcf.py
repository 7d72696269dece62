"""The existing system's item-CF fit against `implicit`'s item-item cosine: `itemcf_time_ratio_vs_implicit`.

Both fit on the same positives (the synthetic `pure` preset's training period by default): ours is
bench.existing.itemcf.fit_itemcf (windowed co-visitation, shrinkage, top neighbours); theirs is
implicit.nearest_neighbours.CosineRecommender(K=neighbors).fit on the user-item matrix, on one
thread like ours, each timed as the best of three fits. Theirs is a plain cosine over whole
histories, ours the protocol's windowed count, so the work differs; the ratio is our seconds over
theirs (the target is <= 1.5).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from bench.existing.itemcf import fit_itemcf
from bench.perf.timing import best_seconds


def itemcf_figures(user: np.ndarray, item: np.ndarray, n_items: int, window: int | None = 50, shrink: float = 10.0,
                   neighbors: int = 100, repeats: int = 3) -> dict[str, float | str]:
    """Best of `repeats` fits each. Our first call of a process also loads numba's compiled kernels
    (or compiles them, once per environment): timed apart as `itemcf_first_call_seconds`."""
    start = time.perf_counter()
    fit_itemcf(np.zeros(2, np.int64), np.arange(2), 2, window=window, shrink=shrink, neighbors=neighbors)
    first = time.perf_counter() - start
    ours = best_seconds(lambda: fit_itemcf(user, item, n_items, window=window, shrink=shrink, neighbors=neighbors),
                         repeats)
    out: dict[str, float | str] = {"itemcf_fit_seconds": ours, "itemcf_first_call_seconds": first,
                                   "itemcf_positives": float(len(user))}
    try:
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        out["itemcf_time_ratio_vs_implicit"] = "skipped (pip install implicit)"
        return out
    n_users = int(user.max()) + 1 if len(user) else 0
    matrix = sp.csr_matrix((np.ones(len(user), dtype=np.float32), (user, item)), shape=(n_users, n_items))
    theirs = best_seconds(lambda: CosineRecommender(K=neighbors, num_threads=1).fit(matrix, show_progress=False),
                          repeats)
    out |= {"implicit_fit_seconds": theirs, "implicit_threads": 1.0, "itemcf_time_ratio_vs_implicit": ours / theirs}
    return out
