"""The YouTube-DNN, DSSM, ComiRec-DR and ComiRec-SA user towers (PROTOCOL section 3): shapes, empty
and width-0 histories, padding invariance, gradients to every parameter, the permutation behaviour
of each ComiRec extractor, the closest-interest rule in training, and the Hydra configs.
"""

from __future__ import annotations

import itertools
from typing import Callable

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from models.backbones.comirec import ComiRecDR, ComiRecSA, squash
from models.backbones.dssm import DSSM
from models.backbones.youtube_dnn import YouTubeDNN
from models.inputs import UserInput
from models.item_tower import ItemTower
from models.losses import sampled_softmax
from tests.conftest import compose_config

DIM, N_ITEMS, N_SCENARIOS, MAX_LEN = 16, 80, 4, 12
PROFILE_CARDS = [3, 5]


def item_tower(normalize: bool = False, dim: int = DIM) -> ItemTower:
    features = torch.stack([torch.arange(N_ITEMS) % 4, torch.arange(N_ITEMS) % 7], dim=1)  # [N, 2]
    return ItemTower(features, [4, 7], dim=dim, normalize=normalize)


# id -> (item tower normalised?, factory); every tower with profile and scenario on
TOWERS: dict[str, tuple[bool, Callable[[ItemTower], nn.Module]]] = {
    "youtube_dnn": (False, lambda it: YouTubeDNN(it, PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[32, 24])),
    "dssm_cosine": (True, lambda it: DSSM(it, PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[32, 32], similarity="cosine")),
    "dssm_inner_sum_relu": (False, lambda it: DSSM(it, PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[32], similarity="inner",
                                                   pooling="sum", activation="relu")),
    "comirec_dr": (False, lambda it: ComiRecDR(it, PROFILE_CARDS, N_SCENARIOS, max_len=MAX_LEN)),
    "comirec_dr_shared": (False, lambda it: ComiRecDR(it, PROFILE_CARDS, N_SCENARIOS, max_len=MAX_LEN, bilinear="shared",
                                                      routing_init="random")),
    "comirec_sa": (False, lambda it: ComiRecSA(it, PROFILE_CARDS, N_SCENARIOS, max_len=MAX_LEN)),
}


def make_tower(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    normalize, factory = TOWERS[name]
    return factory(item_tower(normalize))


def user_input(lengths: list[int], width: int, seed: int = 1) -> UserInput:
    """Left-aligned random histories with the given lengths, padding (item 0, tab 0) after them."""
    g = torch.Generator().manual_seed(seed)
    b = len(lengths)
    mask = torch.arange(width)[None] < torch.tensor(lengths)[:, None]  # [B, L]
    items = torch.randint(1, N_ITEMS, (b, width), generator=g) * mask
    tabs = torch.randint(0, N_SCENARIOS, (b, width), generator=g) * mask
    profile = torch.stack([torch.randint(0, n, (b,), generator=g) for n in PROFILE_CARDS], dim=1)  # [B, F]
    return UserInput(profile, items, tabs, mask)


def permute_history(user: UserInput, perm: torch.Tensor) -> UserInput:
    """The same users with their history columns reordered by perm (all rows full, so no padding moves)."""
    return UserInput(user.profile, user.items[:, perm], user.tabs[:, perm], user.mask[:, perm])


def same_interest_set(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    """Whether every row of b [B, K, D] is a reordering of the interests of the same row of a."""
    k = a.shape[1]
    return all(any(torch.allclose(a[r, list(p)], b[r], atol=atol) for p in itertools.permutations(range(k)))
               for r in range(a.shape[0]))


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", TOWERS)
def test_output_shape(name):
    tower = make_tower(name)
    user = user_input([3, 7, 1, 12], width=MAX_LEN)
    out = tower(user)
    expected_k = 4 if name.startswith("comirec") else 1
    assert tower.n_interests == expected_k
    assert out.shape == (4, expected_k, DIM) and out.dtype == torch.float32


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", TOWERS)
def test_empty_histories_are_finite(name, training):
    tower = make_tower(name).train(training)
    for user in (user_input([0, 0, 0], width=5), user_input([0, 0, 0], width=0), user_input([0, 4, 0], width=4)):
        out = tower(user)
        assert out.shape == (3, tower.n_interests, DIM)
        assert torch.isfinite(out).all()
        # gradients stay finite too (squash and normalisation at a zero vector)
        loss = sampled_softmax(out, torch.arange(3), tower.item_tower(torch.tensor([1, 2, 3])),
                               tower.item_tower(torch.arange(10, 20)))
        tower.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in tower.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", TOWERS)
def test_padding_invariance(name):
    tower = make_tower(name).eval()
    lengths = [3, 7, 0, 9]
    user = user_input(lengths, width=9)
    with torch.no_grad():
        ref = tower(user)
        # three more padding columns
        pad = torch.zeros(4, MAX_LEN - 9, dtype=torch.long)
        wider = UserInput(user.profile, torch.cat([user.items, pad], 1), torch.cat([user.tabs, pad], 1),
                          torch.cat([user.mask, pad.bool()], 1))
        assert torch.allclose(tower(wider), ref, atol=1e-6)
        # other items and scenarios at the padded positions
        noisy = UserInput(user.profile, torch.where(user.mask, user.items, torch.randint(1, N_ITEMS, user.items.shape)),
                          torch.where(user.mask, user.tabs, torch.randint(0, N_SCENARIOS, user.tabs.shape)), user.mask)
        assert not torch.equal(noisy.items, user.items)
        assert torch.allclose(tower(noisy), ref, atol=1e-6)


@pytest.mark.parametrize("name", TOWERS)
def test_gradients_reach_every_parameter(name):
    tower = make_tower(name).train()
    user = user_input([MAX_LEN, 5, 1, 0, MAX_LEN, 8], width=MAX_LEN)  # a full row: every position has an item
    rows = torch.tensor([0, 1, 1, 2, 3, 4, 5])
    pos = tower.item_tower(torch.tensor([5, 9, 11, 13, 17, 19, 23]))
    neg = tower.item_tower(torch.arange(30, 60))
    sampled_softmax(tower(user), rows, pos, neg).backward()
    names = [n for n, _ in tower.named_parameters()]
    assert any(n.startswith("item_tower.") for n in names)  # the shared item tower is part of the graph
    assert any(n.startswith("profile.") for n in names) and any(n.startswith("scenarios.") for n in names)
    for n, p in tower.named_parameters():
        assert p.grad is not None, f"{n} has no gradient"
        assert p.grad.abs().sum() > 0, f"{n} has a zero gradient"


# --------------------------------------------------------------------------- YouTube-DNN and DSSM


def test_youtube_dnn_is_the_mlp_of_the_masked_mean():
    torch.manual_seed(0)
    tower = YouTubeDNN(item_tower(), PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[8], use_profile=False, use_scenario=False)
    user = user_input([2, 5], width=6)
    with torch.no_grad():
        mean = torch.stack([tower.item_tower(user.items[r, :n]).mean(dim=0) for r, n in enumerate([2, 5])])  # [2, D]
        assert torch.allclose(tower(user)[:, 0], tower.mlp(mean), atol=1e-6)
        assert (tower(user) < 0).any()  # a linear output layer by default
        torch.manual_seed(0)
        relu_out = YouTubeDNN(item_tower(), PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[8], output_relu=True)
        assert (relu_out(user) >= 0).all()  # output_relu: the paper's ReLU at the top of the tower


def test_dssm_cosine_scores_are_cosines_over_temperature():
    torch.manual_seed(0)
    it = item_tower(normalize=True)
    tower = DSSM(it, PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[16], temperature=0.1)
    user = user_input([4, 0, 9], width=9)
    with torch.no_grad():
        u = tower(user)[:, 0]  # [B, D]
        items = it.all_items()  # [N, D]
    assert torch.allclose(items.norm(dim=-1), torch.ones(N_ITEMS), atol=1e-5)
    assert torch.allclose(u.norm(dim=-1), torch.full((3,), 10.0), atol=1e-4)
    assert ((u @ items.T).abs() <= 10.0 + 1e-4).all()  # |cos| / τ <= 1 / τ
    inner = DSSM(item_tower(), PROFILE_CARDS, N_SCENARIOS, hidden_sizes=[16], similarity="inner")
    with torch.no_grad():
        norms = inner(user)[:, 0].norm(dim=-1)  # [B], y itself: not rescaled
    assert not torch.allclose(norms, norms[:1].expand(3))


def test_dssm_warns_on_cosine_without_normalised_items():
    with pytest.warns(UserWarning, match="item_normalize"):
        DSSM(item_tower(normalize=False), PROFILE_CARDS, N_SCENARIOS, similarity="cosine")


# --------------------------------------------------------------------------- ComiRec


def test_squash():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    out = squash(s)
    assert torch.allclose(out[0], s[0] / 5 * 25 / 26, atol=1e-6)  # length 25/26, direction kept
    assert torch.equal(out[1], torch.zeros(2))


def test_comirec_dr_per_position_is_order_aware():
    tower = make_tower("comirec_dr").eval()
    user = user_input([6, 6, 6], width=6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        a, b = tower(user), tower(permute_history(user, perm))
    assert not same_interest_set(a, b, atol=1e-4)  # W_ij depends on the position i


def test_comirec_dr_shared_routing_is_permutation_equivariant():
    tower = make_tower("comirec_dr_shared").eval()
    user = user_input([6, 6, 6], width=6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        history = tower.history(user)  # [B, L, D]
        hat = tower.predictions(history)  # [B, K, L, D]
        logits = torch.randn(3, tower.n_interests, 6)  # [B, K, L]
        ref = tower.route(hat, user.mask, logits)
        # items and their initial logits permuted together: the same interests, in the same order
        assert torch.allclose(tower.route(hat[:, :, perm], user.mask[:, perm], logits[:, :, perm]), ref, atol=1e-5)
        # the items alone permuted under per-position eval logits: different interests
        a, b = tower(user), tower(permute_history(user, perm))
        assert not same_interest_set(a, b, atol=1e-4)
        # with initial logits constant over positions, the whole tower is permutation-invariant
        tower.eval_logits.copy_(tower.eval_logits[:, :1].clone().expand_as(tower.eval_logits))
        assert torch.allclose(tower(permute_history(user, perm)), tower(user), atol=1e-5)


def test_comirec_dr_shared_needs_random_logits():
    with pytest.raises(ValueError, match="identical"):
        ComiRecDR(item_tower(), PROFILE_CARDS, N_SCENARIOS, bilinear="shared", routing_init="zero")


def test_comirec_dr_shared_eval_is_deterministic_and_seeded():
    user = user_input([5, 2], width=5)
    a, b = make_tower("comirec_dr_shared", seed=3).eval(), make_tower("comirec_dr_shared", seed=3).eval()
    with torch.no_grad():
        assert torch.equal(a(user), a(user)) and torch.equal(a(user), b(user))
        a.train()
        torch.manual_seed(11)
        first = a(user)
        torch.manual_seed(11)
        assert torch.equal(a(user), first)  # training draws reproducible under torch.manual_seed


def test_comirec_sa_is_order_aware_through_positions_only():
    user = user_input([7, 7], width=7)
    perm = torch.tensor([6, 2, 0, 4, 1, 5, 3])
    with torch.no_grad():
        sa = make_tower("comirec_sa").eval()
        assert not same_interest_set(sa(user), sa(permute_history(user, perm)), atol=1e-6)
        torch.manual_seed(0)
        plain = ComiRecSA(item_tower(), PROFILE_CARDS, N_SCENARIOS, max_len=MAX_LEN, use_position=False).eval()
        assert torch.allclose(plain(permute_history(user, perm)), plain(user), atol=1e-6)


def test_comirec_sa_attention_ignores_padding():
    tower = make_tower("comirec_sa")
    user = user_input([3, 0, 5], width=6)
    with torch.no_grad():
        a = tower.attention(tower.history(user), user.mask)  # [B, K, L]
    assert torch.equal(a[~user.mask[:, None].expand_as(a)], torch.zeros(int((~user.mask).sum()) * 4))
    assert torch.allclose(a.sum(-1), torch.tensor([[1.0] * 4, [0.0] * 4, [1.0] * 4]))


@pytest.mark.parametrize("name", ["comirec_dr", "comirec_dr_shared", "comirec_sa"])
def test_training_uses_the_interest_closest_to_the_target(name):
    tower = make_tower(name).train()
    user = user_input([8, 4, 11, 6, 2], width=MAX_LEN)
    out = tower(user)  # [B, K, D]
    out.retain_grad()
    rows = torch.arange(5)
    pos = tower.item_tower(torch.tensor([3, 14, 25, 36, 47])).detach()  # [P, D]
    neg = tower.item_tower(torch.arange(50, 70)).detach()  # [M, D]
    loss = sampled_softmax(out, rows, pos, neg)
    loss.backward()
    closest = torch.einsum("pkd,pd->pk", out.detach(), pos).argmax(dim=1)  # [P]
    u = out.detach()[rows, closest]  # [P, D]
    pos_logit = (u * pos).sum(-1)
    manual = (torch.logsumexp(torch.cat([pos_logit[:, None], u @ neg.T], dim=1), dim=1) - pos_logit).mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    first = out.detach()[:, 0]
    first_pos = (first * pos).sum(-1)
    other = (torch.logsumexp(torch.cat([first_pos[:, None], first @ neg.T], dim=1), dim=1) - first_pos).mean()
    assert other.item() != pytest.approx(manual.item(), rel=1e-5)  # the choice of interest matters here
    # only the chosen interest of each row receives gradient
    touched = out.grad.abs().sum(-1) > 0  # [B, K]
    assert torch.equal(touched, nn.functional.one_hot(closest, tower.n_interests).bool())


@pytest.mark.parametrize("cls", [ComiRecDR, ComiRecSA])
def test_comirec_rejects_histories_wider_than_max_len(cls):
    tower = cls(item_tower(), PROFILE_CARDS, N_SCENARIOS, max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        tower(user_input([5], width=5))


# --------------------------------------------------------------------------- Hydra configs


@pytest.mark.parametrize("model,cls,k", [("youtube_dnn", YouTubeDNN, 1), ("dssm", DSSM, 1), ("comirec_dr", ComiRecDR, 4),
                                         ("comirec_sa", ComiRecSA, 4)])
def test_config_instantiates(model, cls, k):
    cfg = compose_config(f"model={model}")
    torch.manual_seed(0)
    features = torch.stack([torch.arange(N_ITEMS) % 4, torch.arange(N_ITEMS) % 7], dim=1)
    it = ItemTower(features, [4, 7], dim=int(cfg.model.dim), use_side_features=bool(cfg.model.item_side_features),
                   normalize=bool(cfg.model.get("item_normalize", False)))
    tower = instantiate(cfg.model.user_tower)(item_tower=it, profile_cardinalities=PROFILE_CARDS, n_scenarios=15)
    assert isinstance(tower, cls) and tower.item_tower is it and tower.n_interests == k
    width = int(cfg.requests.max_len)
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(width)[None] < torch.tensor([width, 3, 0])[:, None]
    user = UserInput(torch.zeros(3, 2, dtype=torch.long), torch.randint(1, N_ITEMS, (3, width), generator=g) * mask,
                     torch.randint(0, 15, (3, width), generator=g) * mask, mask)
    for training in (True, False):
        out = tower.train(training)(user)
        assert out.shape == (3, k, int(cfg.model.dim)) and torch.isfinite(out).all()


def test_all_items_in_chunks_equals_the_whole_pool_at_once() -> None:
    """Retrieval builds the pool's vectors chunk by chunk (memory on million-item pools): same values."""
    from models.item_tower import ItemTower

    feats = torch.randint(0, 5, (1000, 3))
    tower = ItemTower(feats, [5, 5, 5], dim=8)
    with torch.no_grad():
        assert torch.equal(tower.all_items(), tower.all_items(chunk=64))
    assert tower.all_items(chunk=64).requires_grad  # with autograd: one pass, gradients flow
