"""Units and tiny helpers that several modules of the synthetic generator share: the minute in
milliseconds and the number of tabs (the event simulator and the log writer), probability
normalisation and row-wise weighted sampling without replacement (the world and the simulator)."""

from __future__ import annotations

import numpy as np

MIN_MS = 60_000
N_TABS = 15


def _norm(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum()


def _gumbel_topk_mask(rng: np.random.Generator, logw: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Row-wise weighted sampling without replacement: a mask with k[r] True entries in row r."""
    keys = logw + rng.gumbel(size=logw.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(logw.shape[1])[None, :].repeat(len(logw), 0), axis=1)
    return rank < k[:, None]
