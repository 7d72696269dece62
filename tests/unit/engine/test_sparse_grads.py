"""train.sparse_item_grads: sparse item-tower gradients give AdaGrad the same updates and leave unread rows alone."""

from __future__ import annotations

import pytest
import torch

from bench.engine.build import SPARSE_AUTO_ITEMS, sparse_item_grads
from models.item_tower import ItemTower


def _step(sparse: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    features = torch.randint(0, 5, (50, 2))
    tower = ItemTower(features, [5, 5], dim=8, sparse=sparse)
    opt = torch.optim.Adagrad(tower.parameters(), lr=0.1)
    items = torch.tensor([[3, 7, 7], [1, 3, 40]])  # repeated rows: their gradients add up
    for _ in range(3):
        loss = (tower(items) ** 2).sum() + tower(items).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    grads = [p.grad for p in tower.parameters()]
    return tower.ids.weight.detach().clone(), grads


def test_sparse_and_dense_gradients_give_the_same_adagrad_steps() -> None:
    dense, dense_grads = _step(False)
    sparse, sparse_grads = _step(True)
    assert all(g.is_sparse for g in sparse_grads) and not any(g.is_sparse for g in dense_grads)
    torch.testing.assert_close(sparse, dense, rtol=1e-6, atol=1e-7)
    torch.manual_seed(0)
    start = ItemTower(torch.randint(0, 5, (50, 2)), [5, 5], dim=8).ids.weight.detach()
    read = torch.tensor([1, 3, 7, 40])
    unread = torch.ones(50, dtype=torch.bool)
    unread[read] = False
    assert torch.equal(sparse[unread], start[unread])  # rows no batch read never move
    assert not torch.equal(sparse[read], start[read])


@pytest.mark.parametrize(("setting", "n_items", "want"), [
    ("auto", SPARSE_AUTO_ITEMS - 1, False), ("auto", SPARSE_AUTO_ITEMS, True), (True, 10, True), (False, 10**7, False)])
def test_auto_turns_sparse_gradients_on_for_large_pools(setting, n_items, want) -> None:
    assert sparse_item_grads(setting, n_items) is want
