"""Full-pool exact retrieval against the machine's matmul: `retrieval_fraction_of_matmul_peak`.

The harness's retrieval (bench.retrieve.top_k: faiss inner products, top-K selection and the
multi-interest merge) does 2·Q·I·N·D flops of scoring for Q requests with I interests over N items
of dimension D. Its achieved GFLOP/s over the GFLOP/s of a plain float32 matmul of the same shape
([Q·I, D] x [D, N], torch, same threads, in tiles of 256 queries x 262,144 items, about 256 MB
of scores each, so that the same tile serves 200k and 4.4M items) is the figure; the top-K
selection and the merge count as overhead, so 1.0 would mean they are free. At D = 64 that matmul
is bound by memory, not by the arithmetic peak.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.retrieve import top_k


def _best_seconds(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def retrieval_figures(n_items: int, n_queries: int, dim: int = 64, n_interests: int = 1, k: int = 2000,
                      repeats: int = 3, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((n_items, dim), dtype=np.float32)
    users = rng.standard_normal((n_queries, n_interests, dim), dtype=np.float32)
    flops = 2.0 * n_queries * n_interests * n_items * dim
    ours = _best_seconds(lambda: top_k(users, items, k), repeats)
    q, v = torch.from_numpy(users.reshape(-1, dim)), torch.from_numpy(items)

    def matmul() -> None:
        for items_tile in v.split(262_144):
            for block in q.split(256):
                block @ items_tile.T  # [256, 262144] scores, dropped

    peak = _best_seconds(matmul, repeats)
    return {
        "retrieval_gflops": flops / ours / 1e9,
        "matmul_gflops": flops / peak / 1e9,
        "retrieval_fraction_of_matmul_peak": peak / ours,
        "retrieval_seconds": ours,
    }
