"""torch top-K (bench.evaluation.device_topk) against faiss (bench.evaluation.retrieve.top_k): the same rankings,
ties included, by PROTOCOL 5's rule (descending score, ties by smaller item id)."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from bench.evaluation.device_topk import key_ids, ranking_key, torch_top_k
from bench.evaluation.retrieve import remove_and_fill, top_k


def protocol_ranking(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """[R, k] the rule written out: max over interests of exact (float64) scores, then (score desc, id asc)."""
    best = np.einsum("rkd,nd->rkn", users.astype(np.float64), items.astype(np.float64)).max(axis=1)  # [R, N]
    ids = np.broadcast_to(np.arange(len(items)), best.shape)
    return np.lexsort((ids, -best), axis=1)[:, :k]


def both(users: np.ndarray, items: np.ndarray, k: int, **torch_args) -> tuple[np.ndarray, np.ndarray]:
    """(faiss, torch-on-CPU) rankings of the same data."""
    return top_k(users, items, k), torch_top_k(torch.from_numpy(users), torch.from_numpy(items), k, **torch_args)


def tied_data(seed: int, n_rows: int, n_int: int, n_items: int, dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Integer-valued vectors (exact fp32 products, many equal scores), a third of the items duplicated and one
    all-zero user (every score 0)."""
    rng = np.random.default_rng(seed)
    items = rng.integers(-2, 3, size=(n_items, dim)).astype(np.float32)  # [N, D]
    items[n_items // 3 : 2 * (n_items // 3)] = items[: n_items // 3]
    users = rng.integers(-2, 3, size=(n_rows, n_int, dim)).astype(np.float32)  # [R, K, D]
    users[0] = 0.0
    return users, items


def test_faiss_alone_breaks_ties_by_its_heap_not_by_id():
    """Why retrieve.top_k re-orders ties: faiss.knn's order on equal scores is not PROTOCOL 5's (faiss 1.15)."""
    users, items = tied_data(0, 20, 1, 50)
    _, ids = faiss.knn(users[:, 0], items, 7, metric=faiss.METRIC_INNER_PRODUCT)
    assert (ids != protocol_ranking(users, items, 7)).any(axis=1).sum() > 10


@pytest.mark.parametrize("n_int", [1, 3])
def test_random_vectors_same_ranking(n_int: int):
    rng = np.random.default_rng(n_int)
    users = rng.normal(size=(37, n_int, 8)).astype(np.float32)  # [R, K, D]
    items = rng.normal(size=(101, 8)).astype(np.float32)  # [N, D]
    want = protocol_ranking(users, items, 12)
    faiss_top, torch_top = both(users, items, 12, batch=10, chunk=16)
    assert faiss_top.tolist() == want.tolist()
    assert torch_top.tolist() == want.tolist()
    assert torch_top.dtype == faiss_top.dtype == np.int32


@pytest.mark.parametrize("n_int", [1, 3])
@pytest.mark.parametrize("k", [1, 9, 40, 100, 150])  # 100+: faiss's reservoir rather than its heap
def test_tied_scores_by_smaller_id(n_int: int, k: int):
    users, items = tied_data(10 + k, 30, n_int, 150)
    want = protocol_ranking(users, items, k)
    assert want[0].tolist() == list(range(k))  # the zero user: every score ties
    faiss_top, torch_top = both(users, items, k, batch=7, chunk=13)
    assert faiss_top.tolist() == want.tolist()
    assert torch_top.tolist() == want.tolist()


@pytest.mark.parametrize("chunk", [1, 7, 50, 64, 1000])  # chunk < k, not dividing N, dividing N, N + k ≤ chunk
def test_chunk_and_batch_boundaries(chunk: int):
    users, items = tied_data(3, 23, 2, 64)
    want = protocol_ranking(users, items, 10)
    for batch in (1, 5, 23, 100):
        got = torch_top_k(torch.from_numpy(users), torch.from_numpy(items), 10, batch=batch, chunk=chunk)
        assert got.tolist() == want.tolist(), (batch, chunk)


def test_whole_pool():
    users, items = tied_data(4, 9, 2, 40)
    want = protocol_ranking(users, items, 40)
    faiss_top, torch_top = both(users, items, 40, chunk=9)
    assert faiss_top.tolist() == torch_top.tolist() == want.tolist()
    assert all(sorted(row) == list(range(40)) for row in torch_top.tolist())
    with pytest.raises(ValueError):
        torch_top_k(torch.from_numpy(users), torch.from_numpy(items), 41)


def test_callers_read_the_same_rankings():
    """remove_and_fill (Inc@K's de-duplication) gives the same channel from either backend."""
    users, items = tied_data(5, 25, 2, 80)
    faiss_top, torch_top = both(users, items, 30, chunk=11)
    base = faiss_top[:, :10]
    assert np.array_equal(remove_and_fill(faiss_top, base, 10), remove_and_fill(torch_top, base, 10))
    assert torch_top_k(torch.zeros((0, 2, 4)), torch.from_numpy(items), 5).shape == (0, 5)


def test_ranking_key_orders_by_score_then_smaller_id():
    scores = torch.tensor([[0.5, -0.0, 0.0, -1.5, float("inf"), -float("inf"), 0.5, 3e-39, -3e-39, -1.5]])
    ids = torch.arange(scores.shape[1])
    order = key_ids(ranking_key(scores, ids).sort(dim=1, descending=True).values)[0]
    assert order.tolist() == [4, 0, 6, 7, 1, 2, 8, 3, 9, 5]  # -0.0 ties 0.0; subnormals keep their sign's order
    assert key_ids(ranking_key(torch.tensor([-3.4e38]), torch.tensor([-1]))).tolist() == [-1]  # IVF's missing result


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_against_faiss():
    """The evaluation's CUDA path: vectors on the device, fp32 products (TF32 off), the same ids as faiss."""
    torch.backends.cuda.matmul.fp32_precision = "tf32"  # what a training run may have set: ranking must undo it
    try:
        for n_int, k in ((1, 50), (4, 300)):
            users, items = tied_data(6 + n_int, 500, n_int, 20_000, dim=16)
            got = torch_top_k(torch.from_numpy(users).cuda(), torch.from_numpy(items).cuda(), k, chunk=3001)
            assert got.tolist() == top_k(users, items, k).tolist()
            # 11-bit integers, D = 4: every fp32 product and sum is exact, but TF32 (10-bit mantissa) would round
            rng = np.random.default_rng(n_int)
            users = rng.integers(-1500, 1501, size=(500, n_int, 4)).astype(np.float32)
            items = rng.integers(-1500, 1501, size=(20_000, 4)).astype(np.float32)
            got = torch_top_k(torch.from_numpy(users).cuda(), torch.from_numpy(items).cuda(), k)
            assert got.tolist() == top_k(users, items, k).tolist() == protocol_ranking(users, items, k).tolist()
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"  # the caller's setting is restored
    finally:
        torch.backends.cuda.matmul.fp32_precision = "none"
