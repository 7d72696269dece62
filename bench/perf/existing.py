"""The existing system's channels side by side: Swing's fit against item-CF's, and one multi-channel retrieval.

On the same positives (a preset's training period) and histories (every request's B_u), one thread:
- `existing_itemcf_fit_seconds`, `existing_swing_fit_seconds` (best of `repeats` fits each, numba's
  compiled kernels loaded first and timed apart) and their ratio `existing_swing_over_itemcf_fit`;
  `existing_popular_fit_seconds`;
- `existing_multi_retrieve_seconds`: R_u of every request from the three fitted channels at
  conf/existing/multi.yaml's budgets and their union (bench.existing.multi.union), once; with
  `existing_multi_requests` and the mean |R_u| of the union.
"""

from __future__ import annotations

import time

import numpy as np
from omegaconf import OmegaConf

from bench.config import CONF_DIR
from bench.existing.channel import FitData, build_channels
from bench.existing.multi import union
from bench.perf.timing import best_seconds
from bench.ragged import Ragged


def existing_figures(user: np.ndarray, item: np.ndarray, time_ms: np.ndarray, cutoff_ms: int, n_items: int,
                     history: Ragged, repeats: int = 3) -> dict[str, float]:
    """Figures of the module docstring; positives (user, item, time_ms) sorted by (user, time), all before cutoff_ms."""
    channels = {c.name: c for c in build_channels(OmegaConf.load(CONF_DIR / "existing" / "multi.yaml"), n_items)}
    data = FitData(user, item, time_ms, int(cutoff_ms))
    tiny = FitData(np.zeros(2, np.int64), np.arange(2), np.zeros(2, np.int64), 1)
    start = time.perf_counter()
    for c in channels.values():  # loads (or compiles, once per environment) the numba kernels
        c.channel.fit(tiny, 2)
    out: dict[str, float] = {"existing_first_calls_seconds": time.perf_counter() - start,
                             "existing_positives": float(len(item))}
    fitted = {}
    for name, c in channels.items():
        out[f"existing_{name}_fit_seconds"] = best_seconds(lambda: fitted.__setitem__(name, c.channel.fit(data, n_items)),
                                                           repeats)
    out["existing_swing_over_itemcf_fit"] = out["existing_swing_fit_seconds"] / out["existing_itemcf_fit_seconds"]
    start = time.perf_counter()
    r_u = union([fitted[name].retrieve(history, c.budget) for name, c in channels.items()], n_items)
    out["existing_multi_retrieve_seconds"] = time.perf_counter() - start
    out["existing_multi_requests"] = float(history.n_rows)
    out["existing_multi_mean_retrieved"] = float(r_u.lengths().mean()) if r_u.n_rows else 0.0
    return out
