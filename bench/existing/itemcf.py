"""The simulated existing retrieval system: windowed co-visitation item-CF (PROTOCOL section 2).

Paper 3.1 simulates the app's existing retrieval with "an item-to-item method over all samples".
Fit (training-period positives only):
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

from bench.ragged import Ragged

PAIR_CHUNK = 20_000_000  # candidate pairs materialised at once while counting co-visits


@dataclass
class ItemCF:
    """Fitted item-item similarities: row i holds sim(i, j) of i's kept neighbours j (columns in id order)."""

    neighbors: sp.csr_matrix  # [n_items, n_items] float64, at most `neighbors` entries per row

    @property
    def n_items(self) -> int:
        return self.neighbors.shape[0]


def _top_per_row(mat: sp.csr_matrix, k: int | None, block_entries: int = 4_000_000) -> sp.csr_matrix:
    """Keep each row's k largest entries (ties: smaller column), as a CSR with sorted indices.

    Rows longer than k are sorted in blocks of similar length, padded, with a stable row-wise argsort
    (columns ascending within a row, so a stable sort breaks score ties by the smaller column).
    """
    mat = sp.csr_matrix(mat)
    mat.sum_duplicates()
    mat.sort_indices()
    lens = np.diff(mat.indptr)
    if k is None or not (lens > k).any():
        return mat
    keep = np.ones(mat.nnz, dtype=bool)
    long_rows = np.flatnonzero(lens > k)
    long_rows = long_rows[np.argsort(lens[long_rows], kind="stable")]
    cum = np.cumsum(lens[long_rows])
    start = 0
    while start < len(long_rows):
        stop = max(int(np.searchsorted(cum, cum[start] - lens[long_rows[start]] + block_entries, side="right")), start + 1)
        rows = long_rows[start:stop]
        width = int(lens[rows].max())
        offs = mat.indptr[rows]
        real = np.arange(width)[None, :] < lens[rows][:, None]  # [b, width]
        idx = np.where(real, offs[:, None] + np.arange(width)[None, :], 0)
        neg = np.where(real, -mat.data[idx], np.inf)
        order = np.argsort(neg, axis=1, kind="stable")[:, k:]  # positions to drop
        drop = np.take_along_axis(idx, order, axis=1)[np.take_along_axis(real, order, axis=1)]
        keep[drop] = False
        start = stop
    rows_all = np.repeat(np.arange(mat.shape[0]), lens)
    out = sp.csr_matrix((mat.data[keep], (rows_all[keep], mat.indices[keep])), shape=mat.shape)
    out.sort_indices()
    return out


def covisit_counts(user: np.ndarray, item: np.ndarray, n_items: int, window: int | None, progress: bool = False) -> sp.csr_matrix:
    """Symmetric c_ij over positives sorted by (user, time): users counted once per item pair."""
    n = len(user)
    if window is None:
        # Anywhere in the history: the plain user-item incidence product X^T X.
        x = sp.csr_matrix((np.ones(n, dtype=np.float64), (user, item)), shape=(int(user.max()) + 1 if n else 0, n_items))
        x.data[:] = 1.0  # duplicates summed by the constructor: back to 0/1
        c = (x.T @ x).tocsr()
        c.setdiag(0)
        c.eliminate_zeros()
        return c
    if n == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float64)
    # Windowed: pairs at position offsets 1..window-1 within a user. Users are processed in blocks
    # (whole users only, so a (user, pair) is always deduplicated within one block).
    user_starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    per_block = max(PAIR_CHUNK // max(window - 1, 1), 1)
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    block_starts = user_starts[np.unique(np.searchsorted(user_starts, np.arange(0, n, per_block), side="right") - 1)]
    bounds = np.r_[block_starts, n]
    for lo_pos, hi_pos in tqdm(zip(bounds[:-1], bounds[1:]), total=len(bounds) - 1, desc="item-CF co-visits",
                               leave=False, disable=None if progress else True):
        u_blk, i_blk = user[lo_pos:hi_pos], item[lo_pos:hi_pos].astype(np.int64)
        pairs, owners = [], []
        for d in range(1, min(window, len(u_blk))):
            same = (u_blk[d:] == u_blk[:-d]) & (i_blk[d:] != i_blk[:-d])
            a, b = i_blk[:-d][same], i_blk[d:][same]
            pairs.append(np.minimum(a, b) * n_items + np.maximum(a, b))
            owners.append(u_blk[d:][same])
        pair, owner = (np.concatenate(pairs), np.concatenate(owners)) if pairs else (np.zeros(0, np.int64),) * 2
        if len(pair) == 0:  # no two different items within the window in this block
            continue
        order = np.lexsort((owner, pair))
        pair, owner = pair[order], owner[order]
        first = np.r_[True, (pair[1:] != pair[:-1]) | (owner[1:] != owner[:-1])]
        pair = pair[first]
        counts = counts + sp.csr_matrix((np.ones(len(pair)), (pair // n_items, pair % n_items)), shape=(n_items, n_items))
    return (counts + counts.T).tocsr()


def fit_itemcf(
    user: np.ndarray,
    item: np.ndarray,
    n_items: int,
    *,
    window: int | None = 50,
    shrink: float = 10.0,
    neighbors: int | None = 100,
    progress: bool = False,
) -> ItemCF:
    """Fit on positives sorted by (user, time) from the training period only."""
    c = covisit_counts(user, item, n_items, window, progress)
    n_i = np.zeros(n_items, dtype=np.float64)
    distinct = np.unique(user.astype(np.int64) * n_items + item)
    np.add.at(n_i, distinct % n_items, 1.0)
    c = c.tocoo()
    sim = c.data / (np.sqrt(n_i[c.row] * n_i[c.col]) + shrink)
    full = sp.csr_matrix((sim, (c.row, c.col)), shape=(n_items, n_items))
    return ItemCF(_top_per_row(full, neighbors))


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
