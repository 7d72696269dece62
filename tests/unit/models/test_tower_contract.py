"""The user-tower contract (models/backbones/__init__.py: UserTower), checked on every conf/model/*.yaml this
finds, as the harness builds it from its config: output [B, n_interests, D], finite on empty histories,
invariant to padding, a gradient for every parameter. Then the unified tower's own properties."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from bench.config import CONF_DIR
from models.backbones import UserTower
from models.inputs import UserInput
from models.losses import sampled_softmax
from tests.conftest import compose_config
from tests.unit.models.test_backbones_basic import DIM, N_ITEMS, N_SCENARIOS, PROFILE_CARDS, item_tower, user_input

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def build(name: str, *overrides: str, seed: int = 0) -> torch.nn.Module:
    cfg = compose_config(f"model={name}", f"model.dim={DIM}", *overrides)
    torch.manual_seed(seed)
    return instantiate(cfg.model.user_tower)(item_tower=item_tower(bool(cfg.model.get("item_normalize", False))),
                                             profile_cardinalities=PROFILE_CARDS, n_scenarios=N_SCENARIOS)


@pytest.mark.parametrize("name", MODELS)
def test_every_configured_tower_keeps_the_contract(name: str) -> None:
    tower = build(name)
    assert isinstance(tower, UserTower) and tower.n_interests >= 1
    user = user_input([3, 7, 1, 12], width=12)
    out = tower.eval()(user)
    assert out.shape == (4, tower.n_interests, DIM) and out.dtype == torch.float32
    with torch.no_grad():  # padding: more columns, and other items and scenarios where the mask is off
        pad = torch.zeros(4, 5, dtype=torch.long)
        wider = UserInput(user.profile, torch.cat([user.items, pad], 1), torch.cat([user.tabs, pad], 1),
                          torch.cat([user.mask, pad.bool()], 1))
        torch.testing.assert_close(tower(wider), out, atol=1e-5, rtol=1e-5)
        noisy = UserInput(user.profile, torch.where(user.mask, user.items, torch.randint(1, N_ITEMS, user.items.shape)),
                          torch.where(user.mask, user.tabs, torch.randint(0, N_SCENARIOS, user.tabs.shape)), user.mask)
        torch.testing.assert_close(tower(noisy), out, atol=1e-5, rtol=1e-5)
        assert torch.isfinite(tower(user_input([0, 0, 2], width=4))).all()  # empty histories are defined
    tower.train()
    full = 50  # requests.max_len: full rows reach every position (KuaiFormer's oldest groups, position tables)
    user = user_input([full, 5, 1, 0, full, 8], width=full)
    rows = torch.tensor([0, 1, 1, 2, 3, 4, 5])
    pos, neg = tower.item_tower(torch.tensor([5, 9, 11, 13, 17, 19, 23])), tower.item_tower(torch.arange(30, 60))
    sampled_softmax(tower(user), rows, pos, neg).backward()
    for n, p in tower.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {n} has no gradient"


def test_unified_serving_scenario_queries_change_the_output() -> None:
    user = user_input([3, 7, 1, 12], width=12)
    outs = {}
    for scenario in (1, 2):
        tower = build("unified", f"model.user_tower.serving_scenario={scenario}").eval()
        with torch.no_grad():
            outs[scenario] = tower(user)
    assert not torch.allclose(outs[1], outs[2])  # same weights (same seed), other queries
    last = build("unified", "model.user_tower.query_scenario=last").eval()
    newest = user.tabs.gather(1, (user.lengths - 1)[:, None])[:, 0]
    assert torch.equal(last.query_scenarios(user), newest)  # the newest item's scenario queries it


def test_unified_tokens_of_other_scenarios_inform_each_other_and_an_unseen_scenario_is_fine() -> None:
    tower = build("unified").eval()
    user = user_input([6, 6], width=6)
    with torch.no_grad():
        ref = tower(user)
        moved = UserInput(user.profile, user.items, torch.where(torch.arange(6) == 0, (user.tabs + 1) % N_SCENARIOS,
                                                                 user.tabs), user.mask)
        assert not torch.allclose(tower(moved), ref)  # one token's scenario changes every interest
        only = UserInput(user.profile, user.items, torch.zeros_like(user.tabs), user.mask)  # scenario 1 never seen
        assert torch.isfinite(tower(only)).all()
    with pytest.raises(ValueError, match="serving_scenario=7 is not a scenario"):
        build("unified", "model.user_tower.serving_scenario=7")


@pytest.mark.parametrize("input_norm", [True, False])
def test_unified_input_norm_hands_the_mixing_unit_scale_tokens(input_norm: bool) -> None:
    """With input_norm (the default) the first mixing layer reads LayerNorm(tokens), each real token at std 1
    (SASRec eq. 2), so tokens enter as large as any branch; without it they enter at the embeddings' std 0.02,
    which let one attention branch swamp them on synthetic (docs/unified_collapse_synthetic.md)."""
    tower = build("unified", f"model.user_tower.input_norm={str(input_norm).lower()}").eval()
    seen: list[torch.Tensor] = []
    tower.layers[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    user = user_input([3, 7, 1, 12], width=12)
    with torch.no_grad():
        tower(user)
    real = torch.cat([torch.ones(4, 1, dtype=torch.bool), user.mask], dim=1)  # the start token, then the history
    token_std = seen[0][real].std(dim=-1, unbiased=False)  # [real tokens]
    if input_norm:
        torch.testing.assert_close(token_std, torch.ones_like(token_std), atol=0.05, rtol=0.0)  # LayerNorm eps
    else:
        assert token_std.max() < 0.2
