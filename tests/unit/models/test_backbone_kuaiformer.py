"""KuaiFormer user tower (models.backbones.kuaiformer): schedule, token counts, causality, padding, gradients, config."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from models.backbones.kuaiformer import KuaiFormer, scale_schedule
from models.inputs import UserInput
from models.item_tower import ItemTower
from models.losses import sampled_softmax
from tests.conftest import compose_config

N_ITEMS, DIM, N_SCENARIOS = 40, 16, 15
PROFILE_CARDS = [4, 6]
PAPER_GROUPS = [(2, 64), (5, 16)]


def make_item_tower(seed: int = 0) -> ItemTower:
    g = torch.Generator().manual_seed(seed)
    features = torch.stack([torch.randint(0, 5, (N_ITEMS,), generator=g), torch.randint(0, 3, (N_ITEMS,), generator=g)], 1)
    torch.manual_seed(seed)
    return ItemTower(features, [5, 3], dim=DIM)


def make_tower(max_len: int = 50, item_tower: ItemTower | None = None, **kw) -> KuaiFormer:
    torch.manual_seed(1)
    tower = KuaiFormer(item_tower or make_item_tower(), PROFILE_CARDS, N_SCENARIOS, max_len=max_len, n_heads=2,
                       inner_size=32, **kw)
    return tower.eval()


def make_user(lengths: list[int], width: int, seed: int = 0) -> UserInput:
    """Left-aligned histories of the given lengths; padding positions hold 0."""
    g = torch.Generator().manual_seed(seed)
    b = len(lengths)
    mask = torch.arange(width)[None] < torch.tensor(lengths)[:, None]  # [B, W]
    items = torch.randint(1, N_ITEMS, (b, width), generator=g) * mask
    tabs = torch.randint(0, N_SCENARIOS, (b, width), generator=g) * mask
    profile = torch.stack([torch.randint(0, c, (b,), generator=g) for c in PROFILE_CARDS], 1)
    return UserInput(profile=profile, items=items, tabs=tabs, mask=mask)


def clone(user: UserInput) -> UserInput:
    return UserInput(user.profile.clone(), user.items.clone(), user.tabs.clone(), user.mask.clone())


# --------------------------------------------------------------------------- schedule and token counts


def test_schedule_is_the_papers_at_256_and_scaled_below():
    assert scale_schedule(PAPER_GROUPS, 48, 256) == ([(2, 64), (5, 16)], 48)
    assert scale_schedule(PAPER_GROUPS, 48, 50) == ([(2, 13), (5, 3)], 9)
    assert scale_schedule(PAPER_GROUPS, 48, 100) == ([(2, 25), (5, 6)], 20)
    assert scale_schedule(PAPER_GROUPS, 48, 1) == ([], 1)
    for max_len in range(1, 300):  # the scaled schedule always covers exactly max_len items, >= 1 recent
        groups, keep = scale_schedule(PAPER_GROUPS, 48, max_len)
        assert keep >= 1 and sum(c * s for c, s in groups) + keep == max_len
        assert all(c >= 1 and s >= 1 for c, s in groups)


@pytest.mark.parametrize("max_len, n_history", [(256, 2 + 5 + 48), (50, 2 + 5 + 9)])
def test_compression_token_count(max_len: int, n_history: int):
    tower = make_tower(max_len)
    assert tower.n_history_tokens == n_history
    assert tower.n_tokens == 1 + n_history + 6  # profile token + history + query tokens
    lengths = sorted({0, 1, 5, 9, 10, 12, 13, 20, 25, 30, 41, 49, 50, 60, 100, 128, 200, 208, 209, max_len} - set(range(max_len + 1, 999)))
    user = make_user(lengths, max_len)
    with torch.no_grad():
        tokens, real, _ = tower.history_tokens(user)
    assert tokens.shape == (len(lengths), n_history, DIM)
    assert real.sum(1).tolist() == [tower.token_count(n) for n in lengths]
    assert tower.token_count(max_len) == n_history
    if max_len == 50:  # by hand: 9 recent, then groups of 3 (five), then groups of 13 (two)
        assert [tower.token_count(n) for n in (0, 9, 10, 12, 13, 24, 25, 37, 38, 50)] == [0, 9, 10, 10, 11, 14, 15, 15, 16, 16]
    else:
        assert [tower.token_count(n) for n in (48, 49, 128, 129, 256)] == [48, 49, 53, 54, 55]


# --------------------------------------------------------------------------- outputs


def test_output_shape_and_finite():
    tower = make_tower(50)
    user = make_user([50, 3, 17, 0], 50)
    out = tower(user)
    assert out.shape == (4, 6, DIM) and torch.isfinite(out).all()
    assert tower(make_user([7, 2], 7)).shape == (2, 6, DIM)  # narrower batches are fine


def test_width_beyond_max_len_is_refused():
    with pytest.raises(ValueError, match="max_len"):
        make_tower(10)(make_user([11], 11))


def test_empty_histories_are_finite_and_width_independent():
    tower = make_tower(50)
    empty0 = make_user([0, 0, 0], 0)
    empty5 = make_user([0, 0, 0], 5)
    empty5 = UserInput(empty0.profile, torch.randint(1, N_ITEMS, (3, 5)), torch.randint(0, N_SCENARIOS, (3, 5)), empty5.mask)
    with torch.no_grad():
        a, b = tower(empty0), tower(empty5)
    assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-6)
    tower.train()  # dropout paths too
    assert torch.isfinite(tower(empty0)).all() and torch.isfinite(tower(empty5)).all()


def test_padding_changes_nothing():
    tower = make_tower(50)
    user = make_user([50, 23, 9, 1, 0], 50)
    garbage = clone(user)  # other items and scenarios at the masked positions
    pad = ~user.mask
    garbage.items[pad] = torch.randint(1, N_ITEMS, (int(pad.sum()),))
    garbage.tabs[pad] = torch.randint(0, N_SCENARIOS, (int(pad.sum()),))
    narrow = UserInput(user.profile[1:], user.items[1:, :23], user.tabs[1:, :23], user.mask[1:, :23])
    with torch.no_grad():
        ref = tower(user)
        assert torch.allclose(ref, tower(garbage), atol=1e-6)
        assert torch.allclose(ref[1:], tower(narrow), atol=1e-6)
        # empty slots embed the padding id 0: its vector must not matter either (attention masks, pooling)
        tower.item_tower.ids.weight[0] += 3.0 * torch.randn(DIM)
        assert torch.allclose(ref, tower(user), atol=1e-6)


def test_causal_encoder_never_looks_ahead():
    tower = make_tower(50)  # 2 groups of 13, 5 groups of 3, 9 recent (raw positions 41..49)
    user = make_user([50, 50], 50)
    changed = clone(user)
    changed.items[:, 45] = (user.items[:, 45] % (N_ITEMS - 1)) + 1  # a different item at raw recent position 45
    with torch.no_grad():
        out, real = tower.encode(user)
        new, _ = tower.encode(changed)
    assert real.all()
    at = 1 + tower.n_group_tokens + (45 - (50 - tower.keep_recent))  # token of raw position 45
    assert torch.allclose(out[:, :at], new[:, :at], atol=1e-6)  # profile, groups, recent 41..44 unchanged
    assert not torch.allclose(out[:, at], new[:, at], atol=1e-4)  # the changed position itself
    assert not torch.allclose(out[:, -6:], new[:, -6:], atol=1e-4)  # and the interests

    # a change in the third 3-item group (raw 32..34, token 1 + 2 + 2 = 5) leaves tokens 0..4 alone
    changed = clone(user)
    changed.items[:, 33] = (user.items[:, 33] % (N_ITEMS - 1)) + 1
    with torch.no_grad():
        new, _ = tower.encode(changed)
    assert torch.allclose(out[:, :5], new[:, :5], atol=1e-6)
    assert not torch.allclose(out[:, 5:], new[:, 5:], atol=1e-4)


def test_oldest_item_still_reaches_the_interests():
    tower = make_tower(50)
    user = make_user([50, 30], 50)
    changed = clone(user)
    changed.items[:, 0] = (user.items[:, 0] % (N_ITEMS - 1)) + 1  # row 0: first 13-group; row 1: oldest of 30
    changed.tabs[:, 0] = (user.tabs[:, 0] + 1) % N_SCENARIOS
    with torch.no_grad():
        a, b = tower(user), tower(changed)
    assert not torch.allclose(a[0], b[0], atol=1e-5) and not torch.allclose(a[1], b[1], atol=1e-5)


def test_compression_mean_pools_real_items_only():
    """A group token depends on its real items only; a group with none gives a zero, masked token."""
    tower = make_tower(50)
    compressor = tower.compressors[1]  # groups of 3
    x = torch.randn(2, 2 * 3, DIM)  # 2 rows x 2 groups
    real = torch.tensor([[False, False, True, True, False, True], [False, False, False, True, True, True]])
    other = torch.where(real[..., None], x, torch.randn_like(x))  # different vectors in the padding slots
    with torch.no_grad():
        a, valid = compressor(x, real)
        b, _ = compressor(other, real)
    assert torch.allclose(a, b, atol=1e-6)
    assert valid.tolist() == [[True, True], [False, True]] and torch.all(a[1, 0] == 0)
    tower.skip_empty_slots = False  # the full layout, empty groups included
    _, real, _ = tower.history_tokens(make_user([10], 10))  # 9 recent + one item alone in the last 3-group
    assert real[0, : tower.n_group_tokens].tolist() == [False] * 6 + [True]


# --------------------------------------------------------------------------- training signal


def test_gradients_reach_every_parameter():
    items = make_item_tower()
    tower = make_tower(50, item_tower=items)
    tower.train()
    user = make_user([50, 48, 41, 30, 20, 13, 50, 50, 45, 50, 37, 50], 50, seed=3)
    out = tower(user)  # [B, 6, D]
    g = torch.Generator().manual_seed(5)
    rows = torch.arange(user.batch_size).repeat_interleave(6)  # 6 positives per row
    pos = items(torch.randint(1, N_ITEMS, (len(rows),), generator=g))
    neg = items(torch.randint(1, N_ITEMS, (16,), generator=g))
    sampled_softmax(out, rows, pos, neg).backward()
    names = dict(tower.named_parameters())
    assert any(n.startswith("item_tower.side") for n in names) and any(n.startswith("compressors.1") for n in names)
    missing = [n for n, p in names.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert tower.item_tower is items  # shared, not copied


# --------------------------------------------------------------------------- config


def test_yaml_composes_and_instantiates():
    cfg = compose_config("model=kuaiformer")
    assert cfg.model.name == "kuaiformer"
    make = instantiate(cfg.model.user_tower)
    items = ItemTower(torch.randint(0, 3, (N_ITEMS, 2)), [3, 3], dim=int(cfg.model.dim),
                      use_side_features=bool(cfg.model.item_side_features))
    tower = make(item_tower=items, profile_cardinalities=PROFILE_CARDS, n_scenarios=15)
    assert isinstance(tower, KuaiFormer) and tower.item_tower is items
    assert tower.max_len == int(cfg.requests.max_len) == 50 and tower.n_interests == 6
    assert tower.groups == [(2, 13), (5, 3)] and tower.keep_recent == 9
    user = make_user([50, 4, 0], 50)
    assert tower.eval()(user).shape == (3, 6, int(cfg.model.dim))
