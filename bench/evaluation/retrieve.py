"""Exact full-pool top-K retrieval by inner product with faiss, multi-interest merge, de-duplication.

Paper 2.2.4 retrieves with an approximate nearest-neighbour index; the benchmark ranks the models under
evaluation with an exact flat search so that metric differences are the models', not the index's. The
approximate `IVFIndex` is offered to the existing system's embedding channel only (existing.index=ivf),
where a million-item pool times every request makes exact search the run's largest cost.

This is the CPU path; on CUDA the evaluation ranks on the device (bench.evaluation.device_topk), with the same
rule for equal scores (PROTOCOL 5: ties by smaller item id) and the same ids.
"""

from __future__ import annotations

import logging
import time

logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise in run logs

import faiss  # noqa: E402
import numpy as np
import pandas as pd

from bench.evaluation.device_topk import key_ids, ranking_key
from bench.protocol.ragged import isin

# Below this many queries faiss computes inner products without BLAS, several times slower.
faiss.cvar.distance_compute_blas_threshold = 1
RESULT_BLOCK = 1 << 26  # at most this many (score, id) results per search call: 768 MB


def top_k(users: np.ndarray, items: np.ndarray, k: int, batch: int = 4096) -> np.ndarray:
    """[R, k] item ids (int32) by descending max_k <u_k, v_i>, ties by smaller id, distinct per row (PROTOCOL 5).

    users [R, K, D] float32 (K interests), items [N, D] float32. Each interest retrieves its own top k
    and the lists merge by score with duplicates removed, which is exact for the max-score ranking.
    Exhaustive search straight over `items` (faiss.knn: the same search as an IndexFlatIP, without the
    index's own copy of the item table, which is a full extra [N, D] on million-item pools).

    faiss orders equal scores by its heap, not by id, and keeps any of the items tied at the k-th place. So
    each interest retrieves one more than k, the merge puts ties in id order, and the requests one of whose
    lists is tied up to its end (the last score equals the k-th) search again with lists 4 times as long,
    until every list ends below its k-th score or holds the whole pool.
    """
    n_items = len(items)
    if k > n_items:
        raise ValueError(f"top-{k} asked from a pool of {n_items} items")
    items = np.ascontiguousarray(items, dtype=np.float32)  # a view when it already is
    top = np.empty((len(users), k), dtype=np.int32)
    rows, width = np.arange(len(users)), min(k + 1, n_items)
    while len(rows):
        queries = users if len(rows) == len(users) else users[rows]  # [r, K, D]
        per_batch = max(1, min(batch, RESULT_BLOCK // (width * users.shape[1])))
        found, tied = _search_in_batches(queries, k, lambda q: faiss.knn(q, items, width, metric=faiss.METRIC_INNER_PRODUCT),
                                         per_batch, check_ties=width < n_items)
        top[rows] = found
        rows, width = rows[tied], min(4 * width, n_items)
    return top


def _search_in_batches(users: np.ndarray, k: int, search, batch: int, check_ties: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
    """[R, k] int32 and [R] bool: `search(q [b*K, D]) -> (scores, ids) [b*K, w ≥ k]` over `batch` requests at a
    time, each request's K interest lists merged into its k best distinct ids (_merge). With `check_ties`, a
    request is flagged when one of its lists may end inside a run of scores tied with its k-th (w > k and the
    last score equals the k-th): items of that run may be missing from the list."""
    n_rows, n_int, dim = users.shape
    out = np.empty((n_rows, k), dtype=np.int32)  # ids < 2**31: half the memory of faiss's int64
    tied = np.zeros(n_rows, dtype=bool)
    for lo in range(0, n_rows, batch):
        q = np.ascontiguousarray(users[lo : lo + batch].reshape(-1, dim), dtype=np.float32)
        scores, ids = search(q)  # [b*K, w]
        b, width = len(q) // n_int, scores.shape[1]
        if check_ties and 0 < k < width:
            tied[lo : lo + b] = (scores[:, -1] == scores[:, k - 1]).reshape(b, n_int).any(axis=1)
        out[lo : lo + b] = _merge(scores.reshape(b, n_int * width), ids.reshape(b, n_int * width), k, n_int == 1)
    return out, tied


def default_ivf_lists(n_items: int) -> int:
    """The inverted lists an IVF index gets by default: about 4·sqrt(N), at least 39 training items per list."""
    return int(max(1, min(round(4 * np.sqrt(n_items)), n_items // 39)))


class IVFIndex:
    """An approximate inner-product index over `items` [N, D] (faiss IndexIVFFlat), for a channel of the
    existing system at million-item scale (paper 2.2.4's approximate nearest-neighbour retrieval).

    The coarse quantizer is k-means (faiss, `seed`) on at most 64 items per list drawn with `seed`; a query
    scans the `probe` lists nearest to it, so probe == lists is exact search. Never used to score the models
    under evaluation (bench.evaluation.evaluate ranks the whole pool exactly).
    """

    def __init__(self, items: np.ndarray, lists: int | None = None, probe: int = 32, seed: int = 0) -> None:
        items = np.ascontiguousarray(items, dtype=np.float32)  # [N, D]
        n, dim = items.shape
        self.lists = int(lists) if lists is not None else default_ivf_lists(n)
        if not 1 <= self.lists <= n:
            raise ValueError(f"an IVF index over {n} items needs 1 to {n} lists, not {self.lists}")
        self.probe = min(int(probe), self.lists)
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        n_train = min(n, 64 * self.lists)
        train = items if n_train == n else items[np.sort(rng.choice(n, n_train, replace=False))]
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, self.lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(seed)
        index.cp.min_points_per_centroid = 1  # no warning for small pools: the sample size is ours
        index.train(train)
        index.add(items)
        index.nprobe = self.probe
        self._quantizer, self._index = quantizer, index  # the quantizer must outlive the index
        self.build_seconds = time.perf_counter() - t0

    def top_k(self, users: np.ndarray, k: int, batch: int = 4096) -> np.ndarray:
        """[R, k] int32 ids by descending max_k <u_k, v_i> among the probed lists, distinct per row; -1 pads
        a row whose probed lists hold fewer than k items. users [R, K, D] float32 (K interests)."""
        # missing results: id -1 with score -3.4e38, so they sort last in the merge
        return _search_in_batches(users, k, lambda q: self._index.search(q, k), batch)[0]


def recall_against_exact(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of |approx ∩ exact| / |exact| for [R, k] id arrays (-1 entries never count)."""
    if len(exact) == 0:
        return float("nan")
    hit = row_membership(exact, approx)  # [R, k]
    return float((hit.sum(axis=1) / np.maximum((exact >= 0).sum(axis=1), 1)).mean())


def _merge(scores: np.ndarray, ids: np.ndarray, k: int, single: bool) -> np.ndarray:
    """Per row, the k best distinct ids of the concatenated interest lists [b, width], ties by smaller id
    (PROTOCOL 5): [b, k]. An id listed by several interests counts at its best score. `single`: one list per
    row, best first as faiss returns it, so only the rows with equal scores need ordering."""
    b, width = ids.shape
    if single:
        tied = np.flatnonzero((scores[:, 1:] == scores[:, :-1]).any(axis=1))
        ids = ids.astype(np.int64)
        ids[tied] = key_ids(_best_first(scores[tied], ids[tied]))
        return ids[:, :k]
    keys = _best_first(scores, ids.astype(np.int64))  # [b, width]
    rows = np.arange(b, dtype=np.int64)[:, None] << 32
    dup = pd.Series((rows | (keys & 0xFFFFFFFF)).ravel()).duplicated().to_numpy().reshape(b, width)  # (row, id) seen
    rank = np.cumsum(~dup, axis=1) - 1
    keep = ~dup & (rank < k)
    out = np.full((b, k), -1, dtype=np.int64)
    out[np.broadcast_to(np.arange(b)[:, None], keep.shape)[keep], rank[keep]] = key_ids(keys[keep])
    return out


def _best_first(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """[b, width] the `ranking_key`s of each row, best first."""
    return np.sort(ranking_key(scores, ids), axis=1)[:, ::-1]


def remove_and_fill(ranked: np.ndarray, exclude: np.ndarray, k: int, pool_size: int | None = None) -> np.ndarray:
    """Per row, the first k ids of `ranked` [R, n] not in that row's `exclude` [R, m]: [R, k], -1 where fewer remain.

    Inc@K's de-duplication against the base model's top K (PROTOCOL 5); needs n >= k + m, unless the
    ranking holds the whole pool (n == pool_size), when fewer than k may remain.
    """
    if ranked.shape[1] < k + exclude.shape[1] and ranked.shape[1] != pool_size:
        raise ValueError("retrieve at least k + |excluded| candidates so that k remain after removal")
    n_rows = len(ranked)
    hit = row_membership(ranked, exclude)
    rank = np.cumsum(~hit, axis=1) - 1
    keep = ~hit & (rank < k)
    out = np.full((n_rows, k), -1, dtype=np.int64)
    rows = np.broadcast_to(np.arange(n_rows)[:, None], ranked.shape)
    out[rows[keep], rank[keep]] = ranked[keep]
    return out


def row_membership(ranked: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """[R, n] bool: ranked[r, j] is one of pool[r, :] (entries of -1 are never members)."""
    width = int(max(ranked.max(initial=0), pool.max(initial=0))) + 2
    rows = np.arange(len(ranked), dtype=np.int64)[:, None] * width
    member = isin(rows + ranked + 1, rows + pool + 1)
    return member & (ranked >= 0)
