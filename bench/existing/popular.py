"""`existing=popular`: the training-popularity ranking as of the fit's cutoff, recency-decayed.

Fit, on the positives a fit is given (bench.existing.fit says which; under `rolling`, every positive
before the request's day):
    score(i) = sum over positives p on item i of 0.5 ** ((cutoff_ms - time_ms(p)) / (half_life_days * 1 day))
    (half_life_days null: every positive counts 1, plain counts)
Retrieve: the same `budget` best items (ties: smaller item id) for every history; items with no
positive in the fit are never retrieved, so R_u can hold fewer than `budget`.
"""

from __future__ import annotations

import numpy as np

from bench.existing.channel import FitData, check_positive
from bench.protocol.ragged import Ragged
from bench.protocol.requests import DAY_MS


def popularity_scores(item: np.ndarray, time_ms: np.ndarray, cutoff_ms: int, n_items: int,
                      half_life_days: float | None) -> np.ndarray:
    """[n_items] float64 score(i) of the module docstring."""
    if half_life_days is None:
        weights = None
    else:
        age_days = (int(cutoff_ms) - np.asarray(time_ms, np.int64)) / DAY_MS  # >= 0 for a cut fit
        weights = 0.5 ** (age_days / float(half_life_days))
    return np.bincount(np.asarray(item, np.int64), weights=weights, minlength=n_items).astype(np.float64)


class PopularChannel:
    """`existing=popular`: the channel contract (bench.existing.channel) over the decayed popularity ranking."""

    def __init__(self, half_life_days: float | None = 7.0) -> None:
        check_positive("half_life_days", half_life_days, minimum=1e-9, allow_none=True,
                       what="above 0 (days), or null for plain counts")
        self.half_life_days = None if half_life_days is None else float(half_life_days)

    def fit(self, data: FitData, n_items: int) -> "FittedPopular":
        scores = popularity_scores(data.item, data.time_ms, data.cutoff_ms, n_items, self.half_life_days)
        order = np.lexsort((np.arange(n_items), -scores))  # best first, ties by smaller id
        return FittedPopular(order[scores[order] > 0])


class FittedPopular:
    def __init__(self, ranking: np.ndarray) -> None:
        self.ranking = ranking  # [n_positive_items] item ids, best first

    def retrieve(self, history: Ragged, budget: int, rows: np.ndarray | None = None, progress: bool = False) -> Ragged:
        top = np.sort(self.ranking[:budget]).astype(np.int32)  # one set for every row, in item-id order
        n = history.n_rows
        indptr = np.arange(n + 1, dtype=np.int64) * len(top)
        return Ragged(indptr, np.tile(top, n))
