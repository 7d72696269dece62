"""Full-pool exact retrieval against the machine's matmul: `retrieval_fraction_of_matmul_peak`.

The harness's retrieval (bench.evaluation.retrieve.top_k: faiss inner products, top-K selection and the
multi-interest merge) does 2·Q·I·N·D flops of scoring for Q requests with I interests over N items
of dimension D. Its achieved GFLOP/s over the GFLOP/s of a plain float32 matmul of the same shape
([Q·I, D] x [D, N], torch, same threads) is the figure. The full score matrix does not fit in
memory at 4.4M items, so the matmul runs in tiles; its rate is the best over the tile shapes in
TILES (large tiles are bound by writing the scores, small ones stay in cache), measured on up to
PEAK_ITEMS items. The top-K selection and the merge count as overhead, so 1.0 would mean they are
free.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.perf.timing import best_seconds
from bench.evaluation.retrieve import top_k


TILES = ((256, 262_144), (4096, 1024), (1024, 4096), (4096, 16_384))  # (queries, items) per matmul call
PEAK_ITEMS = 524_288  # the matmul rate is measured on at most this many items (a rate: the tiles repeat)


def matmul_gflops(q: torch.Tensor, v: torch.Tensor, repeats: int) -> tuple[float, str]:
    """The best GFLOP/s of q @ v.T ([Q, D] x [D, N]) over the tile shapes in TILES, and that shape, on the
    tensors' device and in their dtype (timed to the end of the device's work)."""
    v = v[:PEAK_ITEMS]
    flops = 2.0 * q.shape[0] * v.shape[0] * q.shape[1]
    best, best_tile = 0.0, ""
    for rows, cols in TILES:
        def tiled() -> None:
            for items_tile in v.split(cols):
                for block in q.split(rows):
                    block @ items_tile.T  # [rows, cols] scores, dropped

        rate = flops / best_seconds(tiled, repeats, q.device) / 1e9
        if rate > best:
            best, best_tile = rate, f"{rows}x{cols}"
    return best, best_tile


def retrieval_figures(n_items: int, n_queries: int, dim: int = 64, n_interests: int = 1, k: int = 2000,
                      repeats: int = 3, seed: int = 0) -> dict[str, float | str]:
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((n_items, dim), dtype=np.float32)
    users = rng.standard_normal((n_queries, n_interests, dim), dtype=np.float32)
    flops = 2.0 * n_queries * n_interests * n_items * dim
    ours = best_seconds(lambda: top_k(users, items, k), repeats)
    peak, tile = matmul_gflops(torch.from_numpy(users.reshape(-1, dim)), torch.from_numpy(items), repeats)
    achieved = flops / ours / 1e9
    return {
        "retrieval_gflops": achieved,
        "matmul_gflops": peak,
        "matmul_best_tile": tile,
        "retrieval_fraction_of_matmul_peak": achieved / peak,
        "retrieval_seconds": ours,
    }
