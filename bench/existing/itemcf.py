"""The simulated existing retrieval system: windowed co-visitation item-CF (PROTOCOL section 2).

Paper 3.1 simulates the app's existing retrieval with "an item-to-item method over all samples".
Which positives a fit sees is `existing.fit` (bench.existing.fit, which calls fit_itemcf and retrieve):
rolling (default, protocol v2: a request on day d gets R_u from a fit on every positive before day
d's first millisecond, Beijing time), train_period (v1: one fit on every positive before the test
period) or all (one fit on the whole log, test period included). This module fits on whatever
positives it is given.
Fit:
    c_ij = #users with positives on both i and j (i != j) at most `window - 1` positions apart in
           their time-ordered positives (each user counted once per pair; window None = anywhere)
    n_i  = #users with a positive on i
    sim(i, j) = c_ij / (sqrt(n_i * n_j) + shrink), each item keeping its top `neighbors`.
Retrieve: triggers = the `n_triggers` most recent distinct history items, weights decay**age;
    score(i) = sum_t w_t * sim(t, i); R_u = the `budget` best items (ties: smaller item id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from bench.existing.channel import FitData, check_positive, check_triggers
from bench.existing.kernels import csr_top_k_mask, occurrences_by_item, windowed_neighbours
from bench.protocol.ragged import Ragged

@dataclass
class ItemCF:
    """Fitted item-item similarities: row i holds sim(i, j) of i's kept neighbours j (columns in id order)."""

    neighbors: sp.csr_matrix  # [n_items, n_items] float64, at most `neighbors` entries per row

    @property
    def n_items(self) -> int:
        return self.neighbors.shape[0]


class ItemCFChannel:
    """`existing=itemcf`: the channel contract (bench.existing.channel) over fit_itemcf and retrieve."""

    def __init__(self, window: int | None = 50, shrink: float = 10.0, neighbors: int | None = 100,
                 n_triggers: int = 20, decay: float = 0.9) -> None:
        check_positive("window", window, minimum=2, allow_none=True, what="at least 2, or null for the whole history")
        check_positive("shrink", shrink, minimum=0, what="must be 0 or more")
        check_positive("neighbors", neighbors, allow_none=True, what="at least 1, or null for all")
        check_triggers(n_triggers, decay)
        self.window, self.shrink, self.neighbors = window, float(shrink), neighbors
        self.n_triggers, self.decay = int(n_triggers), float(decay)

    def fit(self, data: FitData, n_items: int) -> "FittedItemCF":
        model = fit_itemcf(data.user, data.item, n_items, window=self.window, shrink=self.shrink,
                           neighbors=self.neighbors)
        return FittedItemCF(model, self.n_triggers, self.decay)


@dataclass
class FittedItemCF:
    model: ItemCF
    n_triggers: int
    decay: float

    def retrieve(self, history: Ragged, budget: int, rows: np.ndarray | None = None, progress: bool = False) -> Ragged:
        return retrieve(self.model, history, budget=budget, n_triggers=self.n_triggers, decay=self.decay,
                        progress=progress)


def _top_per_row(mat: sp.csr_matrix, k: int | None) -> sp.csr_matrix:
    """Keep each row's k largest entries (ties: smaller column), as a CSR with sorted indices."""
    mat = sp.csr_matrix(mat)
    mat.sum_duplicates()
    mat.sort_indices()
    if k is None or not (np.diff(mat.indptr) > k).any():
        return mat
    keep = csr_top_k_mask(mat.indptr.astype(np.int64), mat.indices, mat.data, k)
    lens = np.diff(mat.indptr)
    rows = np.repeat(np.arange(mat.shape[0]), lens)[keep]
    return sp.csr_matrix((mat.data[keep], mat.indices[keep], np.r_[0, np.cumsum(np.bincount(rows, minlength=mat.shape[0]))]),
                         shape=mat.shape)


def fit_itemcf(
    user: np.ndarray,
    item: np.ndarray,
    n_items: int,
    *,
    window: int | None = 50,
    shrink: float = 10.0,
    neighbors: int | None = 100,
) -> ItemCF:
    """Fit on positives sorted by (user, time) (PROTOCOL section 2); which positives is the caller's
    choice (bench.existing.fit: those before a cutoff, or all of them).

    One pass over each item's occurrences (bench.existing.kernels.windowed_neighbours):
    O(positives x window) time; window None scans whole histories, O(sum of squared history lengths).
    """
    n = len(user)
    items = np.asarray(item, dtype=np.int32)
    if n and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"item ids must lie in [0, {n_items})")
    if n >= 2**31:  # the kernel's (item, user) group ids are int32
        raise ValueError(f"{n} positives: the item-CF fit takes fewer than 2**31")
    # Each position's user run [start, stop): users are contiguous, their positives time-ordered.
    user = np.asarray(user)
    new_run = np.r_[True, user[1:] != user[:-1]] if n else np.zeros(0, dtype=bool)
    run_starts = np.flatnonzero(new_run)
    run_lens = np.diff(np.r_[run_starts, n])
    occ_ptr, occ_pos = occurrences_by_item(items, n_items)  # [P] positions by item, then position (so by user)
    occ_start = np.repeat(run_starts, run_lens)[occ_pos]  # [P] the run of each occurrence's user
    occ_stop = occ_start + np.repeat(run_lens, run_lens)[occ_pos]
    span = int(run_lens.max()) if n else 1
    w = span if window is None else int(window)
    occ_lo = np.maximum(occ_start, occ_pos - w + 1)  # positions within the window, inside the run
    occ_hi = np.minimum(occ_stop, occ_pos + w)
    occ_items = items[occ_pos]
    occ_new_user = np.r_[True, (occ_items[1:] != occ_items[:-1]) | (occ_start[1:] != occ_start[:-1])] if n \
        else np.zeros(0, dtype=bool)
    n_users = np.bincount(occ_items[occ_new_user], minlength=n_items).astype(np.float64)  # n_i
    indptr, indices, data = windowed_neighbours(items, occ_ptr, occ_lo.astype(np.int64), occ_hi.astype(np.int64),
                                                occ_new_user, n_users, float(shrink),
                                                -1 if neighbors is None else int(neighbors))
    return ItemCF(sp.csr_matrix((data, indices.astype(np.int32), indptr), shape=(n_items, n_items)))


def triggers(history: Ragged, n_triggers: int = 20, decay: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, item, weight) of every trigger: each row's most recent distinct history items, newest
    weight 1, the k-th most recent decay**k."""
    rows = history.row_ids()
    # Walk each history from the newest item back: age = rank among distinct items, newest 0.
    rev = np.lexsort((-(np.arange(len(rows))), rows))  # within a row, newest first
    r_rev, i_rev = rows[rev], history.values[rev].astype(np.int64)
    key = r_rev * (int(i_rev.max()) + 1 if len(i_rev) else 1) + i_rev
    _, first_idx = np.unique(key, return_index=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first_idx] = True
    r_k, i_k = r_rev[keep], i_rev[keep]
    age = np.arange(len(r_k)) - np.searchsorted(r_k, r_k, side="left")
    sel = age < n_triggers
    return r_k[sel], i_k[sel], decay ** age[sel].astype(np.float64)


def retrieve(model: ItemCF, history: Ragged, *, budget: int = 200, n_triggers: int = 20, decay: float = 0.9,
             chunk: int = 50_000, progress: bool = False) -> Ragged:
    """R_u for every row of `history`: the top `budget` items by trigger-weighted similarity, as a set
    (each row in item-id order)."""
    n_rows = history.n_rows
    t_rows, t_items, t_w = triggers(history, n_triggers, decay)
    w = sp.csr_matrix((t_w, (t_rows, t_items)), shape=(n_rows, model.n_items))
    out_rows, out_items = [], []
    for lo in tqdm(range(0, n_rows, chunk), desc="item-CF retrieval", leave=False, disable=None if progress else True):
        scores = sp.csr_matrix(w[lo : lo + chunk] @ model.neighbors)  # [chunk, n_items], all > 0
        top = _top_per_row(scores, budget)
        out_rows.append(np.repeat(np.arange(lo, lo + top.shape[0]), np.diff(top.indptr)))
        out_items.append(top.indices.astype(np.int32))
    rows = np.concatenate(out_rows) if out_rows else np.zeros(0, np.int64)
    items = np.concatenate(out_items) if out_items else np.zeros(0, np.int32)
    return Ragged.from_rows(rows, items, n_rows)
