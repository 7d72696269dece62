"""Compiled (numba) loops of the item-CF existing system: windowed co-visit neighbours, per-row top-k.

These are the two loops of PROTOCOL section 2 that vectorised numpy cannot do without materialising
every (user, item pair) candidate: the neighbour fit walks each item's occurrences once with a
sparse accumulator (Gustavson's row-by-row scheme, as sparse matrix products do), so its cost is
O(positives x window) time and O(n_items) scratch memory, and each row is cut to its top k as it
is produced. Both are serial and deterministic. `numba` caches the compiled code beside this file
(first call in a fresh environment: a few seconds of compilation).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _row_top_k(cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Positions (ascending) of the k largest `vals`; ties go to the smaller column.

    cols [m] int64 ascending, vals [m] float64; returns [min(m, k)] int64. O(m) selection of the
    k-th largest value, then one pass: everything above it, and the first (smallest-column) ties.
    """
    m = len(cols)
    if k < 0 or m <= k:
        return np.arange(m)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(vals, m - k)[m - k]  # the k-th largest value
    above = 0
    for t in range(m):
        if vals[t] > kth:
            above += 1
    ties_left = k - above
    out = np.empty(k, dtype=np.int64)
    n = 0
    for t in range(m):
        if vals[t] > kth:
            out[n] = t
            n += 1
        elif vals[t] == kth and ties_left > 0:
            out[n] = t
            n += 1
            ties_left -= 1
    return out


@njit(cache=True)
def _grow(arr: np.ndarray, need: int) -> np.ndarray:
    if need <= len(arr):
        return arr
    out = np.empty(max(need, 2 * len(arr)), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


@njit(cache=True)
def windowed_neighbours(items: np.ndarray, occ_ptr: np.ndarray, occ_lo: np.ndarray, occ_hi: np.ndarray,
                        occ_new_user: np.ndarray, n_users: np.ndarray, shrink: float, k: int):
    """The fitted sim(i, j) = c_ij / (sqrt(n_i n_j) + shrink) rows, each cut to its top k (PROTOCOL 2).

    items [P] int32: every user's time-ordered positives, users contiguous. Item i's occurrences are
    o in [occ_ptr[i], occ_ptr[i + 1]) (ascending positions, hence grouped by user); positions
    [occ_lo[o], occ_hi[o]) are those within the window around occurrence o inside its user's run, and
    occ_new_user[o] marks the first occurrence of a (item, user) group. n_users [n_items] float64 is
    n_i. c_ij counts the groups of row i that hold j != i in some occurrence's window: each user once
    per pair. k < 0 keeps every neighbour. Returns CSR arrays (indptr [n_items + 1] int64, indices
    int64 ascending within a row, data float64).
    """
    n_items = len(occ_ptr) - 1
    count = np.zeros(n_items, dtype=np.int32)  # c_ij of the current row i (int32: half the cache footprint)
    seen = np.full(n_items, -1, dtype=np.int32)  # the (i, user) group that last counted j (< #positives)
    touched = np.empty(n_items, dtype=np.int64)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    indices = np.empty(1024, dtype=np.int64)
    data = np.empty(1024, dtype=np.float64)
    nnz = 0
    group = -1
    for i in range(n_items):
        n_touched = 0
        for o in range(occ_ptr[i], occ_ptr[i + 1]):
            if occ_new_user[o]:
                group += 1
            for q in range(occ_lo[o], occ_hi[o]):
                j = items[q]
                if j == i or seen[j] == group:
                    continue
                seen[j] = group
                if count[j] == 0:
                    touched[n_touched] = j
                    n_touched += 1
                count[j] += 1
        cols = np.sort(touched[:n_touched])
        vals = np.empty(n_touched, dtype=np.float64)
        for t in range(n_touched):
            j = cols[t]
            vals[t] = np.float64(count[j]) / (np.sqrt(n_users[i] * n_users[j]) + shrink)
            count[j] = 0
        keep = _row_top_k(cols, vals, k)
        indices = _grow(indices, nnz + len(keep))
        data = _grow(data, nnz + len(keep))
        for t in range(len(keep)):
            indices[nnz] = cols[keep[t]]
            data[nnz] = vals[keep[t]]
            nnz += 1
        indptr[i + 1] = nnz
    return indptr, indices[:nnz].copy(), data[:nnz].copy()


@njit(cache=True)
def csr_top_k_mask(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, k: int) -> np.ndarray:
    """[nnz] bool: the entries kept when each CSR row (indices ascending) keeps its k largest values,
    ties going to the smaller column."""
    keep = np.zeros(len(data), dtype=np.bool_)
    for r in range(len(indptr) - 1):
        lo, hi = indptr[r], indptr[r + 1]
        for t in _row_top_k(indices[lo:hi].astype(np.int64), data[lo:hi].astype(np.float64), k):
            keep[lo + t] = True
    return keep
