"""`existing=swing`: Swing item-to-item similarity (Yang et al., "Large Scale Product Graph Construction
for Recommendation in E-commerce", 2020), retrieved like item-CF.

Fit, on the positives a fit is given (bench.existing.fit says which):
    I_u  = the distinct items user u has a positive on; when there are more than `max_items_per_user`,
           the most recent that many (by the user's latest positive on each; ties: smaller item id),
           and every other positive of u is left out of the fit (U_i, w_u and the intersections alike)
    U_i  = the users with a positive on i; when there are more than `max_users_per_item`, that many of
           them drawn uniformly without replacement (numpy's generator seeded with `seed`, one draw
           per fit), so a row reads at most max_users_per_item × max_items_per_user items; with no
           user cap (null) a fit is refused when its most popular item's m users would need an m × m
           pair table over PAIR_TABLE_LIMIT bytes
    w_u  = (|I_u| + offset) ** (-beta)
    sim(i, j) = sum over unordered pairs {u, v} of distinct users in U_i, both with a positive on j,
                of w_u * w_v / (alpha + |I_u ∩ I_v|)                                  (j != i)
    each item keeping its top `neighbors` (ties: smaller item id).
Unlike item-CF there is no window: a pair of users counts once per item they share, wherever it sits
in their histories. With the cap, sim is read row by row (U_i is the row item's sample), so sim(i, j)
and sim(j, i) can differ.
Retrieve: exactly item-CF's (bench.existing.itemcf.retrieve): the `n_triggers` most recent distinct
history items weighted decay**age, score(i) = sum_t w_t * sim(t, i), the `budget` best items.

Cost per row i: sum over items j held by a user of U_i of (users of U_i holding j)², after reading
every item of those users: both caps bound it (at most max_users_per_item × max_items_per_user items
read per row). On KuaiRand-1K-sized data (1,000 users with 1,378 distinct positive items each on
average; its training period, 4.6M positives) one fit took 276 s without the item cap and 5.0 s with
the default 200, against item-CF's 34 s (2-core AMD EPYC, beside two training jobs). No Python loop
per positive (one numba kernel, serial, deterministic).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from bench.errors import ConfigError
from bench.existing.channel import FitData, check_positive, check_triggers
from bench.existing.itemcf import FittedItemCF, ItemCF
from bench.existing.kernels import append_top_k
from bench.protocol.ragged import unique_sorted

PAIR_TABLE_LIMIT = 2 << 30  # bytes of one row's |I_u ∩ I_v| table (int64, m × m) an uncapped fit may need


def distinct_pairs(user: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (user, item) pairs of the positives, sorted by (user, item): ([Q] int64, [Q] int64)."""
    width = int(np.max(item, initial=0)) + 1
    key = unique_sorted(np.asarray(user, np.int64) * width + np.asarray(item, np.int64))
    return key // width, key % width


def recent_pairs(user: np.ndarray, item: np.ndarray, time_ms: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """distinct_pairs with each user cut to the `cap` items of their latest positives (ties: smaller item id)."""
    it = np.asarray(item, np.int64)
    width = int(np.max(it, initial=0)) + 1
    key = np.asarray(user, np.int64) * width + it
    order = np.lexsort((np.asarray(time_ms, np.int64), key))  # by pair, then time
    key, t = key[order], np.asarray(time_ms, np.int64)[order]
    last = np.r_[key[1:] != key[:-1], True] if len(key) else np.zeros(0, bool)
    key, t = key[last], t[last]  # each pair once, at its latest time, pairs ascending
    pu, pi = key // width, key % width
    by_recency = np.lexsort((pi, -t, pu))  # within a user: latest first, then smaller item
    starts = np.r_[True, pu[by_recency][1:] != pu[by_recency][:-1]] if len(key) else np.zeros(0, bool)
    pos = np.arange(len(key))
    rank = pos - np.maximum.accumulate(np.where(starts, pos, 0))
    kept = np.sort(by_recency[rank < cap])
    return pu[kept], pi[kept]


def sampled_item_users(pair_user: np.ndarray, pair_item: np.ndarray, n_items: int, cap: int | None,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """U_i per item as CSR (indptr [n_items + 1] int64, users int64 ascending within an item): every user of
    the item, or `cap` of them drawn uniformly (one random key per pair from default_rng(seed), the cap
    smallest kept)."""
    item, user = np.asarray(pair_item, np.int64), np.asarray(pair_user, np.int64)
    if cap is not None:
        keys = np.random.default_rng(seed).random(len(item))
        order = np.lexsort((keys, item))  # by item, then random key
        counts = np.bincount(item, minlength=n_items)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        rank = np.arange(len(order)) - np.repeat(starts, counts)
        kept = order[rank < cap]
        item, user = item[kept], user[kept]
    order = np.lexsort((user, item))
    item, user = item[order], user[order]
    indptr = np.r_[0, np.cumsum(np.bincount(item, minlength=n_items))].astype(np.int64)
    return indptr, user


@njit(cache=True)
def swing_neighbours(user_ptr: np.ndarray, user_items: np.ndarray, item_ptr: np.ndarray, item_users: np.ndarray,
                     weight: np.ndarray, alpha: float, k: int):
    """The fitted rows of sim(i, j) (module docstring), each cut to its top k (k < 0 keeps all).

    user_ptr [n_users + 1], user_items: I_u (ascending); item_ptr [n_items + 1], item_users: U_i (sampled);
    weight [n_users] w_u. Row i: the items of U_i's users are grouped by item (a counting sort over the
    row's local user ids 0..m-1), |I_u ∩ I_v| for every local pair is the number of items both hold,
    then sim(i, j) sums w_u w_v / (alpha + |I_u ∩ I_v|) over the local pairs holding j.
    Returns CSR arrays (indptr [n_items + 1] int64, indices int64 ascending in a row, data float64).
    """
    n_items = len(item_ptr) - 1
    count = np.zeros(n_items, dtype=np.int64)  # local users of the row holding j
    touched = np.empty(n_items, dtype=np.int64)
    fill = np.zeros(n_items, dtype=np.int64)
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    indices = np.empty(1024, dtype=np.int64)
    data = np.empty(1024, dtype=np.float64)
    nnz = 0
    for i in range(n_items):
        users = item_users[item_ptr[i]:item_ptr[i + 1]]
        m = len(users)
        if m < 2:
            indptr[i + 1] = nnz
            continue
        n_touched = 0
        total = 0
        for a in range(m):
            u = users[a]
            for q in range(user_ptr[u], user_ptr[u + 1]):
                j = user_items[q]
                if count[j] == 0:
                    touched[n_touched] = j
                    n_touched += 1
                count[j] += 1
                total += 1
        # group the (j, local user) incidences by j: start offsets in first-touch order
        start = np.empty(n_touched + 1, dtype=np.int64)
        start[0] = 0
        for t in range(n_touched):
            j = touched[t]
            start[t + 1] = start[t] + count[j]
            fill[j] = start[t]
        holders = np.empty(total, dtype=np.int64)
        for a in range(m):
            u = users[a]
            for q in range(user_ptr[u], user_ptr[u + 1]):
                j = user_items[q]
                holders[fill[j]] = a
                fill[j] += 1
        inter = np.zeros((m, m), dtype=np.int64)  # |I_u ∩ I_v| for local a < b
        for t in range(n_touched):
            lo, hi = start[t], start[t + 1]
            for x in range(lo, hi):
                for y in range(x + 1, hi):
                    inter[holders[x], holders[y]] += 1
        cols = np.empty(n_touched, dtype=np.int64)
        vals = np.empty(n_touched, dtype=np.float64)
        n_cols = 0
        for t in range(n_touched):
            j = touched[t]
            count[j] = 0
            lo, hi = start[t], start[t + 1]
            if j == i or hi - lo < 2:
                continue
            s = 0.0
            for x in range(lo, hi):
                a = holders[x]
                for y in range(x + 1, hi):
                    b = holders[y]
                    s += weight[users[a]] * weight[users[b]] / (alpha + inter[a, b])
            cols[n_cols] = j
            vals[n_cols] = s
            n_cols += 1
        indices, data, nnz = append_top_k(indices, data, nnz, cols[:n_cols], vals[:n_cols], k)
        indptr[i + 1] = nnz
    return indptr, indices[:nnz].copy(), data[:nnz].copy()


def fit_swing(user: np.ndarray, item: np.ndarray, n_items: int, *, alpha: float = 1.0, beta: float = 0.3,
              offset: float = 5.0, max_users_per_item: int | None = 100, max_items_per_user: int | None = None,
              time_ms: np.ndarray | None = None, neighbors: int | None = 100, seed: int = 0) -> ItemCF:
    """Swing similarities (module docstring) of the positives (user [P], item [P], time_ms [P] when
    max_items_per_user is set), as item-CF's neighbour table."""
    item = np.asarray(item)
    if len(item) and (item.min() < 0 or item.max() >= n_items):
        raise ValueError(f"item ids must lie in [0, {n_items})")
    if max_items_per_user is None:
        pair_user, pair_item = distinct_pairs(user, item)
    elif time_ms is None:
        raise ValueError("max_items_per_user needs the positives' time_ms (the most recent items are kept)")
    else:
        pair_user, pair_item = recent_pairs(user, item, time_ms, int(max_items_per_user))
    users, user_code = np.unique(pair_user, return_inverse=True)  # local user codes 0..n_users-1
    n_users = len(users)
    user_ptr = np.r_[0, np.cumsum(np.bincount(user_code, minlength=n_users))].astype(np.int64)
    sizes = np.diff(user_ptr).astype(np.float64)  # |I_u|
    weight = (sizes + float(offset)) ** (-float(beta))
    item_ptr, item_users = sampled_item_users(user_code, pair_item, n_items, max_users_per_item, seed)
    m = int(np.diff(item_ptr).max(initial=0))  # the most users one row holds
    if max_users_per_item is None and 8 * m * m > PAIR_TABLE_LIMIT:
        raise ConfigError(f"swing's max_users_per_item=null: an item has {m} users, whose pair table needs "
                          f"{8 * m * m / 2**30:.1f} GiB (limit {PAIR_TABLE_LIMIT / 2**30:.0f} GiB); set a cap such as 100")
    indptr, indices, data = swing_neighbours(user_ptr, pair_item.astype(np.int64), item_ptr, item_users, weight,
                                             float(alpha), -1 if neighbors is None else int(neighbors))
    return ItemCF(sp.csr_matrix((data, indices.astype(np.int32), indptr), shape=(n_items, n_items)))


class SwingChannel:
    """`existing=swing`: the channel contract (bench.existing.channel) over fit_swing and item-CF's retrieval."""

    def __init__(self, alpha: float = 1.0, beta: float = 0.3, offset: float = 5.0,
                 max_users_per_item: int | None = 100, max_items_per_user: int | None = 200,
                 neighbors: int | None = 100, n_triggers: int = 20, decay: float = 0.9, seed: int = 0) -> None:
        check_positive("alpha", alpha, minimum=0, what="must be 0 or more")  # a counted pair shares i and j: |I_u ∩ I_v| >= 2
        check_positive("beta", beta, minimum=0, what="must be 0 or more")
        check_positive("offset", offset, minimum=0, what="must be 0 or more")
        check_positive("max_users_per_item", max_users_per_item, minimum=2, allow_none=True, integer=True,
                       what="a whole number of at least 2 (a row needs a pair of users), or null for no cap")
        check_positive("max_items_per_user", max_items_per_user, allow_none=True, integer=True,
                       what="a whole number of at least 1, or null for no cap")
        check_positive("neighbors", neighbors, allow_none=True, integer=True, what="a whole number of at least 1, or null for all")
        check_triggers(n_triggers, decay)
        self.kw = dict(alpha=float(alpha), beta=float(beta), offset=float(offset),
                       max_users_per_item=max_users_per_item, max_items_per_user=max_items_per_user,
                       neighbors=neighbors, seed=int(seed))
        self.n_triggers, self.decay = int(n_triggers), float(decay)

    def fit(self, data: FitData, n_items: int) -> FittedItemCF:
        return FittedItemCF(fit_swing(data.user, data.item, n_items, time_ms=data.time_ms, **self.kw),
                            self.n_triggers, self.decay)
