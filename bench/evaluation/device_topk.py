"""Exact full-pool top-K by inner product with torch, on whatever device holds the vectors (PROTOCOL 5).

The CUDA evaluation path: the item matrix stays on the device, scores are computed a [b, chunk] block at a
time (queries and items chunked, so memory is bounded whatever the pool), and a running top-k is merged
across item chunks; only the [R, k] ids come back to the host. It runs on the CPU too, where the tests hold it
against faiss (bench.evaluation.retrieve.top_k, which orders its own ties with the same `ranking_key`).

Ranking rule (PROTOCOL 5, as section 2 states it for R_u): descending score, ties by smaller item id. Both are
packed into one int64 key per (request, item) — the score's order-preserving bits above, the complement of
the id below — so every key is distinct and torch.topk's choice and order are fully determined.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, TypeVar

import numpy as np
import torch

ID_MAX = 2**31 - 1  # item ids (and -1, a missing result) fit below the key's 32 low bits
SCORE_BLOCK = 1 << 26  # default bound on a chunk's [b, K, chunk] fp32 scores: 256 MB
Array = TypeVar("Array", torch.Tensor, np.ndarray)


def ranking_key(scores: Array, ids: Array) -> Array:
    """int64 keys, shaped like `scores` (float32), whose descending order is PROTOCOL 5's ranking: higher score
    first, equal scores by smaller id. `ids` (int64) broadcasts against `scores`; -0.0 ranks as 0.0. Works on
    torch tensors (any device) and on numpy arrays alike."""
    on_torch = isinstance(scores, torch.Tensor)
    bits = (scores + 0.0).view(torch.int32 if on_torch else np.int32)  # + 0.0 turns -0.0 into 0.0
    ordered = bits ^ ((bits >> 31) & ID_MAX)  # int order == float order: a negative's 31 low bits flipped
    ordered = ordered.long() if on_torch else ordered.astype(np.int64)
    return (ordered << 32) | (ID_MAX - ids)


def key_ids(keys: Array) -> Array:
    """The item ids (int64) packed in `ranking_key` keys."""
    return ID_MAX - (keys & 0xFFFFFFFF)


@contextmanager
def exact_fp32_matmul() -> Iterator[None]:
    """fp32 products in CUDA matmuls (no TF32) inside the block; the caller's setting is restored after."""
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = before


@torch.no_grad()
def torch_top_k(users: torch.Tensor, items: torch.Tensor, k: int, batch: int = 1024,
                chunk: int | None = None) -> np.ndarray:
    """[R, k] item ids (int32, host) by descending max_k <u_k, v_i>, ties by smaller id (PROTOCOL 5).

    users [R, K, D] and items [N, D] on one device (any float dtype, scored in fp32 without TF32). `batch`
    requests are scored against `chunk` items at a time (default: [b, K, chunk] within SCORE_BLOCK floats);
    each chunk's keys merge with the running top k by torch.topk. The max over interests makes every id
    appear once, as retrieve._merge's merge of per-interest lists does.
    """
    n_rows, n_int, dim = users.shape
    n_items = len(items)
    if k > n_items:
        raise ValueError(f"top-{k} asked from a pool of {n_items} items")
    b_max = min(batch, max(n_rows, 1))
    chunk = chunk or max(1, SCORE_BLOCK // (b_max * n_int))
    items = items.float()  # [N, D]
    out = np.empty((n_rows, k), dtype=np.int32)
    with exact_fp32_matmul():
        for lo in range(0, n_rows, batch):
            q = users[lo : lo + batch].float()  # [b, K, D]
            best = torch.empty((len(q), 0), dtype=torch.int64, device=items.device)  # [b, ≤k] keys, best first
            for start in range(0, n_items, chunk):
                block = items[start : start + chunk]  # [c, D]
                scores = torch.matmul(q, block.T).amax(dim=1)  # [b, c] float32, max over interests
                ids = torch.arange(start, start + len(block), device=items.device)  # [c]
                merged = torch.cat([best, ranking_key(scores, ids)], dim=1)  # [b, ≤k + c]
                best = merged.topk(min(k, merged.shape[1]), dim=1).values  # sorted, keys distinct
            out[lo : lo + len(q)] = key_ids(best).cpu().numpy()
    return out
