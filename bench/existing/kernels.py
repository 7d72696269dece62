"""Compiled (numba) loops of the item-CF existing system: grouping by item, windowed co-visit
neighbours, per-row top-k.

These are the loops of PROTOCOL section 2 that vectorised numpy cannot do without materialising
every (user, item pair) candidate: the neighbour fit walks each item's occurrences once with a
sparse accumulator (Gustavson's row-by-row scheme, as sparse matrix products do), so its cost is
O(positives x window) time and O(n_items) scratch memory, and each row is cut to its top k as it
is produced, sorting only what it keeps. All are serial and deterministic. `numba` caches the
compiled code beside this file (first call in a fresh environment: 14 s of compilation on 2 cores, once).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _top_k_by_column(cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest `vals` (ties go to the smaller column), in ascending column order.

    cols [m] int64 distinct, in any order; vals [m] float64, no NaN; k < 0 keeps all. Returns [min(m, k)] int64.
    O(m) selection of the k-th largest value, then sorts only what is kept (and the ties at the
    k-th value, when they do not all fit), never all m.
    """
    m = len(cols)
    if k < 0 or m <= k:
        return np.argsort(cols)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(vals, m - k)[m - k]  # the k-th largest value
    above = 0
    n_ties = 0
    for t in range(m):
        if vals[t] > kth:
            above += 1
        elif vals[t] == kth:
            n_ties += 1
    ties_left = k - above
    keep = np.empty(k, dtype=np.int64)
    n = 0
    if n_ties == ties_left:  # every tie fits
        for t in range(m):
            if vals[t] >= kth:
                keep[n] = t
                n += 1
    else:
        ties = np.empty(n_ties, dtype=np.int64)
        n_t = 0
        for t in range(m):
            if vals[t] > kth:
                keep[n] = t
                n += 1
            elif vals[t] == kth:
                ties[n_t] = t
                n_t += 1
        first = np.argsort(cols[ties])[:ties_left]  # the ties with the smallest columns
        for x in range(ties_left):
            keep[n] = ties[first[x]]
            n += 1
    return keep[np.argsort(cols[keep])]


@njit(cache=True)
def _grow(arr: np.ndarray, need: int) -> np.ndarray:
    if need <= len(arr):
        return arr
    out = np.empty(max(need, 2 * len(arr)), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


@njit(cache=True)
def append_top_k(indices: np.ndarray, data: np.ndarray, nnz: int, cols: np.ndarray, vals: np.ndarray, k: int):
    """Append one CSR row, the k largest `vals` of `cols` (_top_k_by_column), at position nnz of the growing
    indices / data arrays: returns (indices, data, nnz), the arrays possibly reallocated."""
    keep = _top_k_by_column(cols, vals, k)
    indices = _grow(indices, nnz + len(keep))
    data = _grow(data, nnz + len(keep))
    for t in range(len(keep)):
        indices[nnz] = cols[keep[t]]
        data[nnz] = vals[keep[t]]
        nnz += 1
    return indices, data, nnz


@njit(cache=True)
def occurrences_by_item(items: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of positions by item: (occ_ptr [n_items + 1] int64, occ_pos [P] int64), item i's
    positions occ_pos[occ_ptr[i]:occ_ptr[i + 1]] ascending. O(P + n_items). items [P] must lie in
    [0, n_items): numba does not check bounds, so the caller validates (fit_itemcf does)."""
    occ_ptr = np.zeros(n_items + 1, dtype=np.int64)
    for q in range(len(items)):
        occ_ptr[items[q] + 1] += 1
    for i in range(n_items):
        occ_ptr[i + 1] += occ_ptr[i]
    fill = occ_ptr[:-1].copy()
    occ_pos = np.empty(len(items), dtype=np.int64)
    for q in range(len(items)):
        occ_pos[fill[items[q]]] = q
        fill[items[q]] += 1
    return occ_ptr, occ_pos


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
    touched = np.empty(n_items, dtype=np.int64)  # row i's columns in first-touch order (at most n_items - 1)
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
                seen[i] = group  # so i never counts itself
            for q in range(occ_lo[o], occ_hi[o]):  # branch-free: mispredicted branches cost more than the writes
                j = items[q]
                inc = np.int32(seen[j] != group)  # j not yet counted for this user
                seen[j] = group
                touched[n_touched] = j
                n_touched += inc & np.int32(count[j] == 0)  # keep j if this is its first count in row i
                count[j] += inc
        cols = touched[:n_touched]  # in first-touch order
        vals = np.empty(n_touched, dtype=np.float64)
        for t in range(n_touched):
            j = cols[t]
            vals[t] = np.float64(count[j]) / (np.sqrt(n_users[i] * n_users[j]) + shrink)
            count[j] = 0
        indices, data, nnz = append_top_k(indices, data, nnz, cols, vals, k)
        indptr[i + 1] = nnz
    return indptr, indices[:nnz].copy(), data[:nnz].copy()


@njit(cache=True)
def csr_top_k_mask(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, k: int) -> np.ndarray:
    """[nnz] bool: the entries kept when each CSR row (indices ascending) keeps its k largest values,
    ties going to the smaller column."""
    keep = np.zeros(len(data), dtype=np.bool_)
    for r in range(len(indptr) - 1):
        lo, hi = indptr[r], indptr[r + 1]
        for t in _top_k_by_column(indices[lo:hi].astype(np.int64), data[lo:hi].astype(np.float64), k):
            keep[lo + t] = True
    return keep
