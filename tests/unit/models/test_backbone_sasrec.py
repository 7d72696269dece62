"""SASRec user tower: shapes, causality, padding invariance, gradients to every parameter."""

from __future__ import annotations

import torch

from models.backbones.sasrec import SASRec
from models.inputs import UserInput
from models.item_tower import ItemTower
from models.losses import sampled_softmax

N_ITEMS, DIM = 40, 16


def _model(**kw) -> SASRec:
    torch.manual_seed(0)
    tower = ItemTower(torch.randint(0, 3, (N_ITEMS, 2)), [3, 3], DIM)
    return SASRec(tower, [4, 5], n_scenarios=15, n_heads=2, inner_size=32, max_len=8, **kw)


def _user(items: list[list[int]]) -> UserInput:
    width = max(len(r) for r in items)
    pad = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.bool)
    for i, row in enumerate(items):
        pad[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
    return UserInput(torch.ones(len(items), 2, dtype=torch.long), pad, pad % 15, mask)


def test_output_shape_and_empty_histories() -> None:
    model = _model().eval()
    assert model(_user([[1, 2, 3], [4]])).shape == (2, 1, DIM)
    empty = UserInput(torch.ones(3, 2, dtype=torch.long), torch.zeros(3, 0, dtype=torch.long),
                      torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, 0, dtype=torch.bool))
    out = model(empty)
    assert out.shape == (3, 1, DIM) and torch.isfinite(out).all()


def test_causal_a_later_item_never_changes_earlier_positions() -> None:
    model = _model().eval()
    a, b = _user([[1, 2, 3, 4, 5]]), _user([[1, 2, 3, 9, 5]])  # position 3 (0-based history) differs
    with torch.no_grad():
        tok_a = torch.cat([model.start.expand(1, -1)[:, None], model.item_tower(a.items) + model.scenarios(a.tabs)], 1)
        tok_b = torch.cat([model.start.expand(1, -1)[:, None], model.item_tower(b.items) + model.scenarios(b.tabs)], 1)
        enc_a, enc_b = model.encode(tok_a), model.encode(tok_b)  # [1, 6, D]: start token + 5 items
    assert torch.allclose(enc_a[:, :4], enc_b[:, :4])  # the start token and items 0..2 see nothing later
    assert not torch.allclose(enc_a[:, 4:], enc_b[:, 4:])  # the changed item and the next one do change
    assert not torch.allclose(model(a), model(b))


def test_padding_changes_nothing() -> None:
    model = _model().eval()
    short = _user([[1, 2, 3], [4, 5, 6, 7, 8]])
    wider = UserInput(short.profile, torch.cat([short.items, torch.full((2, 2), 17)], 1),
                      torch.cat([short.tabs, torch.full((2, 2), 3)], 1), torch.cat([short.mask, torch.zeros(2, 2, dtype=torch.bool)], 1))
    wider.items[0, 3:5] = 11  # garbage at row 0's padded positions
    with torch.no_grad():
        assert torch.allclose(model(short), model(wider), atol=1e-6)


def test_gradients_reach_every_parameter() -> None:
    model = _model(hidden_dropout=0.0, attn_dropout=0.0).train()
    user = _user([[1, 2, 3], [4, 5], [6]])
    loss = sampled_softmax(model(user), torch.tensor([0, 1, 2]), model.item_tower(torch.tensor([7, 8, 9])),
                           model.item_tower(torch.arange(20, 30)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
