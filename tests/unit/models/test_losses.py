"""models.losses (sampled softmax, interest choice, α of eq. 7) and IncRec.loss (PROTOCOL section 4).

Loss values are worked out by hand on 2-d vectors; IncRec.loss is checked against an explicit
per-positive loop written here (logits listed one by one, logsumexp, minus the positive's logit).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.increc import IncRec, TrainBatch, Variant
from models.inputs import UserInput
from models.item_tower import ItemTower
from models.losses import nearest_exposed_alpha, pick_interest, sampled_softmax, transform_alpha

T = torch.tensor


# --------------------------------------------------------------------------- sampled softmax


def test_sampled_softmax_one_positive_two_negatives():
    user = T([[[1.0, 0.0]]])  # B = 1, K = 1
    pos, neg = T([[2.0, 0.0]]), T([[0.0, 5.0], [1.0, 3.0]])
    rows = T([0])
    # logits: positive <(1,0),(2,0)> = 2; negatives 0 and 1 -> log(e^2 + e^0 + e^1) - 2
    assert sampled_softmax(user, rows, pos, neg).item() == pytest.approx(0.40760596444438013, rel=1e-6)
    # the second negative masked (equals a positive of the row): log(e^2 + e^0) - 2
    got = sampled_softmax(user, rows, pos, neg, neg_mask=T([[False, True]]))
    assert got.item() == pytest.approx(0.1269280110429727, rel=1e-6)
    # extra negatives (1,1) -> 1 (real) and (3,0) -> 3 (masked out): log(e^2 + e^0 + e^1 + e^1) - 2
    got = sampled_softmax(user, rows, pos, neg, extra_neg=T([[[1.0, 1.0], [3.0, 0.0]]]), extra_mask=T([[True, False]]))
    assert got.item() == pytest.approx(0.6265233750364456, rel=1e-6)


def test_sampled_softmax_weights():
    user = T([[[1.0, 0.0]]])
    neg = T([[0.0, 5.0], [1.0, 3.0]])
    pos = T([[2.0, 0.0], [0.0, 1.0]])  # logits 2 and 0
    rows = T([0, 0])
    # l1 = log(e^2 + 1 + e) - 2 = 0.407606; l2 = log(1 + 1 + e) - 0 = 1.551445
    # weighted: (3 * l1 + 1 * l2) / 2 = 1.387131; unweighted mean (l1 + l2) / 2 = 0.979525
    assert sampled_softmax(user, rows, pos, neg, weights=T([3.0, 1.0])).item() == pytest.approx(1.3871313036325956, rel=1e-6)
    assert sampled_softmax(user, rows, pos, neg).item() == pytest.approx((0.40760596444438013 + 1.5514447139320509) / 2,
                                                                          rel=1e-6)


def test_sampled_softmax_mask_is_per_row():
    user = T([[[1.0, 0.0]], [[0.0, 1.0]]])
    pos, neg = T([[2.0, 0.0], [0.0, 2.0]]), T([[0.0, 5.0], [1.0, 3.0]])
    # row 0 (u = (1,0)) drops negative 0: log(e^2 + e^1) - 2 = 0.313262
    # row 1 (u = (0,1)) keeps both, logits 5 and 3: log(e^2 + e^5 + e^3) - 2 = 3.169846
    got = sampled_softmax(user, T([0, 1]), pos, neg, neg_mask=T([[True, False], [False, False]]))
    assert got.item() == pytest.approx((0.3132616875182226 + 3.169846019556285) / 2, rel=1e-6)


def test_sampled_softmax_multi_interest_uses_closest():
    user = T([[[1.0, 0.0], [0.0, 1.0]]])  # interests a, b
    pos = T([[0.0, 2.0]])  # <a, v> = 0, <b, v> = 2 -> b
    neg = T([[1.0, 0.0], [0.0, -1.0]])  # with b: 0 and -1 (with a it would be 1 and 0)
    # log(e^2 + e^0 + e^-1) - 2
    assert sampled_softmax(user, T([0]), pos, neg).item() == pytest.approx(0.16984601955628564, rel=1e-6)


def test_sampled_softmax_multi_interest_max_scores_every_item_by_its_best_interest():
    user = T([[[1.0, 0.0], [0.0, 1.0]]])  # interests a, b
    pos = T([[0.0, 2.0]])  # max(<a, v>, <b, v>) = max(0, 2) = 2
    neg = T([[1.0, 0.0], [0.0, -1.0]])  # max over interests: 1 (a) and 0 (a)
    # log(e^2 + e^1 + e^0) - 2; 'closest' gives 0.169846 on the same input (test above)
    got = sampled_softmax(user, T([0]), pos, neg, interests="max")
    assert got.item() == pytest.approx(0.40760596444438013, rel=1e-6)
    # extra negatives per row: (3,0) -> 3 (a), masked one ignored: log(e^2 + e^1 + e^0 + e^3) - 2
    got = sampled_softmax(user, T([0]), pos, neg, extra_neg=T([[[3.0, 0.0], [9.0, 9.0]]]),
                          extra_mask=T([[True, False]]), interests="max")
    assert got.item() == pytest.approx(math.log(math.e ** 2 + math.e + 1 + math.e ** 3) - 2, rel=1e-6)


def test_sampled_softmax_interest_rules_agree_for_one_interest():
    g = torch.Generator().manual_seed(0)
    user, pos, neg = torch.randn(3, 1, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(7, 4, generator=g)
    rows = T([0, 2, 2, 1, 0])
    closest = sampled_softmax(user, rows, pos, neg, interests="closest")
    assert sampled_softmax(user, rows, pos, neg, interests="max").item() == pytest.approx(closest.item(), rel=1e-6)
    with pytest.raises(ValueError, match="closest"):
        sampled_softmax(user, rows, pos, neg, interests="mean")


def test_sampled_softmax_no_positive():
    user = torch.ones(2, 1, 3, requires_grad=True)
    out = sampled_softmax(user, torch.zeros(0, dtype=torch.long), torch.zeros(0, 3), torch.ones(4, 3))
    assert out.item() == 0.0 and out.requires_grad


def test_pick_interest():
    user = T([[[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]],
              [[2.0, 2.0], [0.0, 0.0], [3.0, -3.0]]])  # [B = 2, K = 3, D = 2]
    rows = T([1, 0, 1, 0])
    items = T([[1.0, 0.0], [0.0, -1.0], [0.0, 1.0], [0.2, 0.1]])
    # p0 row 1, v (1,0): 2, 0, 3 -> k 2; p1 row 0, v (0,-1): 0, -1, 1 -> k 2
    # p2 row 1, v (0,1): 2, 0, -3 -> k 0; p3 row 0, v (.2,.1): .2, .1, -.3 -> k 0
    got = pick_interest(user, rows, items)
    assert got.tolist() == [[3.0, -3.0], [-1.0, -1.0], [2.0, 2.0], [1.0, 0.0]]


def test_transform_alpha():
    raw = T([-1.0, 0.0, 2.0])
    assert transform_alpha(raw, "raw").tolist() == [-1.0, 0.0, 2.0]
    # sigmoid: 1/(1+e), 1/2, 1/(1+e^-2); softplus: log(1+e^-1), log 2, log(1+e^2)
    assert transform_alpha(raw, "sigmoid").tolist() == pytest.approx([0.2689414, 0.5, 0.8807971], rel=1e-6)
    assert transform_alpha(raw, "softplus").tolist() == pytest.approx([0.3132617, 0.6931472, 2.1269281], rel=1e-6)
    with pytest.raises(ValueError):
        transform_alpha(raw, "exp")


def test_nearest_exposed_alpha_eq7():
    align = T([[[1.0, 0.0], [0.0, 2.0]],      # row 0: interests a = (1,0), b = (0,2)
               [[-1.0, 0.0], [0.0, -1.0]]]).requires_grad_()  # row 1
    etg = T([[[2.0, 0.0], [0.0, 3.0], [10.0, 10.0]],
             [[1.0, 1.0], [10.0, 10.0], [10.0, 10.0]]]).requires_grad_()
    etg_mask = T([[True, True, False], [True, False, False]])  # the (10, 10) entries are padding
    rows = T([0, 0, 1])
    itg = T([[1.0, 0.1], [0.0, 1.0], [5.0, 5.0]]).requires_grad_()
    # i0 (row 0): <i0, e> = 2, .3 -> j = (2,0); α = max(<a,j>, <b,j>) = max(2, 0) = 2
    # i1 (row 0): 0, 3 -> j = (0,3); α = max(0, 6) = 6
    # i2 (row 1): only (1,1) is real -> α = max(-1, -1) = -1
    # (IncRec-ori's α = s_align(u, i) would be 1, 2, -5 instead; padding (10,10) would win every argmax)
    alpha, found = nearest_exposed_alpha(align, rows, itg, etg, etg_mask)
    assert alpha.tolist() == [2.0, 6.0, -1.0]
    assert found.tolist() == [True, True, True]
    assert not alpha.requires_grad


def test_nearest_exposed_alpha_excluding_the_item_itself():
    """increc.alpha_exclude_self (PROTOCOL 4): j is the nearest *other* exposed item."""
    align = T([[[1.0, 0.0], [0.0, 2.0]]])  # one row, interests a = (1,0), b = (0,2)
    etg = T([[[2.0, 0.0], [0.0, 3.0]]])  # exposed items e0 = (2,0), e1 = (0,3)
    etg_mask = T([[True, True]])
    rows = T([0, 0])
    itg = T([[2.0, 0.0], [0.0, 3.0]])  # the ITG items are e0 and e1 themselves
    same, _ = nearest_exposed_alpha(align, rows, itg, etg, etg_mask)
    assert same.tolist() == [2.0, 6.0]  # each finds itself: eq. 7 equals IncRec-ori here
    exclude = T([[True, False], [False, True]])
    other, found = nearest_exposed_alpha(align, rows, itg, etg, etg_mask, exclude)
    assert other.tolist() == [6.0, 2.0]  # i0 aligns with e1: max(0, 6); i1 with e0: max(2, 0)
    assert found.tolist() == [True, True]
    _, none_left = nearest_exposed_alpha(align, T([0]), itg[:1], T([[[2.0, 0.0], [0.0, 0.0]]]),
                                         T([[True, False]]), T([[True, False]]))
    assert none_left.tolist() == [False]  # the only exposure is the item itself: the caller uses α = 1


# --------------------------------------------------------------------------------- IncRec


class TableTower(nn.Module):
    """A user tower that looks its K vectors up by the first profile code."""

    def __init__(self, n_users: int, k: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(n_users, k, dim))

    def forward(self, user: UserInput) -> torch.Tensor:
        return self.table[user.profile[:, 0]]


N_ITEMS, DIM, K = 8, 4, 2


def make_model(variant: Variant, seed: int = 0) -> IncRec:
    torch.manual_seed(seed)
    items = ItemTower(torch.zeros(N_ITEMS, 0, dtype=torch.long), [], dim=DIM, use_side_features=False)
    with torch.no_grad():
        items.ids.weight.copy_(torch.randn(N_ITEMS, DIM))
    return IncRec(items, lambda: TableTower(2, K, DIM), variant)


def hand_batch() -> TrainBatch:
    """Row 0: targets 1 (RTG), 2 (ITG), exposed 4, 5. Row 1: target 3 (ITG), exposed 3. Negatives 6, 4, 1."""
    return TrainBatch(
        user=UserInput(profile=T([[0], [1]]), items=torch.zeros(2, 1, dtype=torch.long),
                       tabs=torch.zeros(2, 1, dtype=torch.long), mask=torch.zeros(2, 1, dtype=torch.bool)),
        negatives=T([6, 4, 1]),
        x_rows=T([0, 0, 1]),
        x_items=T([1, 2, 3]),
        x_is_itg=T([False, True, True]),
        x_neg_mask=T([[False, False, True], [False, False, False]]),  # negative 1 is row 0's target
        rtg=T([[1], [0]]),
        rtg_mask=T([[True], [False]]),
        etg_rows=T([0, 0, 1]),
        etg_items=T([4, 5, 3]),
        etg=T([[4, 5], [3, 0]]),
        etg_mask=T([[True, True], [True, False]]),
        etg_neg_mask=T([[False, True, False], [False, False, False]]),  # negative 4 is exposed in row 0
    )


def explicit_loss(u_all, v_all, rows, items, negatives, neg_mask, extra=None, extra_mask=None, weights=None):
    """Weighted mean over positives of logsumexp(listed logits) - positive logit, one positive at a time."""
    total = torch.zeros(())
    for p, (r, i) in enumerate(zip(rows, items)):
        v = v_all[i]
        u = u_all[r][torch.argmax(u_all[r] @ v)]  # the closest interest
        logits = [u @ v]
        logits += [u @ v_all[n] for m, n in enumerate(negatives) if not neg_mask[r][m]]
        if extra is not None:
            logits += [u @ v_all[e] for e, ok in zip(extra[r], extra_mask[r]) if ok]
        loss = torch.logsumexp(torch.stack(logits), 0) - u @ v
        total = total + (1.0 if weights is None else weights[p]) * loss
    return total / len(rows)


def eq7_alpha(a_all, v_all, rows, items, etg, etg_mask):
    out = []
    for r, i in zip(rows, items):
        exposed = [j for j, ok in zip(etg[r], etg_mask[r]) if ok]
        j = max(exposed, key=lambda j: float(v_all[i] @ v_all[j]))
        out.append(float((a_all[r] @ v_all[j]).max()))
    return torch.tensor(out)


NEG, MASK = [6, 4, 1], [[False, False, True], [False, False, False]]


def test_variant_off_has_basic_only():
    model = make_model(Variant(name="off"))
    parts = model.loss(hand_batch())
    assert set(parts) == {"basic", "total"}
    with torch.no_grad():
        v, b = model.item_tower.all_items(), model.towers["basic"].table
        # L_b over all three targets (row 0: 1, 2; row 1: 3), negatives 6, 4, 1 with 1 masked in row 0
        want = explicit_loss(b, v, [0, 0, 1], [1, 2, 3], NEG, MASK)
    assert parts["basic"].item() == pytest.approx(want.item(), rel=1e-5)
    assert parts["total"].item() == pytest.approx(want.item(), rel=1e-5)
    assert model.serving_tower == "basic" and list(model.towers) == ["basic"]


def test_variant_na_adds_incremental_with_alpha_one():
    model = make_model(Variant(name="na", incremental=True))
    batch = hand_batch()
    parts = model.loss(batch)
    assert set(parts) == {"basic", "incremental", "total"}
    with torch.no_grad():
        v, inc = model.item_tower.all_items(), model.towers["incremental"].table
        # L_inc: ITG positives 2 (row 0) and 3 (row 1); negatives N (1 masked in row 0) plus row 0's RTG item 1
        want = explicit_loss(inc, v, [0, 1], [2, 3], NEG, MASK, extra=[[1], [0]], extra_mask=[[True], [False]])
        same = sampled_softmax(inc, T([0, 1]), v[T([2, 3])], v[T(NEG)], batch.x_neg_mask,
                               extra_neg=v[batch.rtg], extra_mask=batch.rtg_mask, weights=None)
    assert parts["incremental"].item() == pytest.approx(want.item(), rel=1e-5)
    assert parts["incremental"].item() == pytest.approx(same.item(), rel=1e-6)
    assert parts["total"].item() == pytest.approx(parts["basic"].item() + parts["incremental"].item(), rel=1e-6)
    assert model.serving_tower == "incremental"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variant_on_alpha_is_eq7_transformed_and_normalised(seed):
    model = make_model(Variant(name="on", incremental=True, alignment=True, alpha="nearest_exposed"), seed)
    batch = hand_batch()
    parts = model.loss(batch)
    assert set(parts) == {"basic", "align", "incremental", "total"}
    with torch.no_grad():
        v = model.item_tower.all_items()
        a, inc = model.towers["alignment"].table, model.towers["incremental"].table
        etg, etg_mask = [[4, 5], [3, 0]], [[True, True], [True, False]]
        raw = eq7_alpha(a, v, [0, 1], [2, 3], etg, etg_mask)
        alpha = torch.sigmoid(raw)
        alpha = alpha / alpha.mean()
        want_inc = explicit_loss(inc, v, [0, 1], [2, 3], NEG, MASK, extra=[[1], [0]], extra_mask=[[True], [False]],
                                 weights=alpha)
        # L_align: exposed 4, 5 (row 0) and 3 (row 1) against negatives 6, 4, 1 with 4 masked in row 0
        want_align = explicit_loss(a, v, [0, 0, 1], [4, 5, 3], NEG, [[False, True, False], [False, False, False]])
    assert parts["incremental"].item() == pytest.approx(want_inc.item(), rel=1e-5)
    assert parts["align"].item() == pytest.approx(want_align.item(), rel=1e-5)
    total = parts["basic"] + parts["align"] + parts["incremental"]
    assert parts["total"].item() == pytest.approx(total.item(), rel=1e-6)
    # normalised α averages 1, and α differs from 1 (so the check above is not IncRec-NA's loss in disguise)
    assert alpha.mean().item() == pytest.approx(1.0)
    assert not torch.allclose(alpha, torch.ones(2))


def test_variant_ori_alpha_is_the_item_itself():
    model = make_model(Variant(name="ori", incremental=True, alignment=True, alpha="item", alpha_transform="softplus",
                               alpha_normalise=False), 3)
    parts = model.loss(hand_batch())
    with torch.no_grad():
        v = model.item_tower.all_items()
        a, inc = model.towers["alignment"].table, model.towers["incremental"].table
        alpha = torch.nn.functional.softplus(torch.stack([(a[0] @ v[2]).max(), (a[1] @ v[3]).max()]))
        want = explicit_loss(inc, v, [0, 1], [2, 3], NEG, MASK, extra=[[1], [0]], extra_mask=[[True], [False]],
                             weights=alpha)
    assert parts["incremental"].item() == pytest.approx(want.item(), rel=1e-5)


def test_tb_itg_and_tb_boost_basic_loss():
    batch = hand_batch()
    model = make_model(Variant(name="tb_itg", basic_targets="itg"))
    parts = model.loss(batch)
    with torch.no_grad():
        v, b = model.item_tower.all_items(), model.towers["basic"].table
        want = explicit_loss(b, v, [0, 1], [2, 3], NEG, MASK)  # the RTG target 1 is left out
    assert parts["basic"].item() == pytest.approx(want.item(), rel=1e-5)
    model = make_model(Variant(name="tb_boost", itg_weight=3.0))
    parts = model.loss(batch)
    with torch.no_grad():
        v, b = model.item_tower.all_items(), model.towers["basic"].table
        want = explicit_loss(b, v, [0, 0, 1], [1, 2, 3], NEG, MASK, weights=[1.0, 3.0, 3.0])
    assert parts["basic"].item() == pytest.approx(want.item(), rel=1e-5)


def test_variant_validation():
    with pytest.raises(ValueError, match="alignment"):
        Variant(name="x", alpha="item", alignment=False)
    with pytest.raises(ValueError, match="alignment"):
        Variant(name="x", incremental=True, alpha="nearest_exposed")
    with pytest.raises(ValueError):
        Variant(name="x", alpha="bogus")
    with pytest.raises(ValueError):
        Variant(name="x", basic_targets="rtg")
    assert Variant(name="off").is_base
    assert not Variant(name="na", incremental=True).is_base


@pytest.mark.parametrize("alpha", ["nearest_exposed", "item"])
def test_incremental_loss_does_not_reach_alignment_tower(alpha):
    model = make_model(Variant(name="on", incremental=True, alignment=True, alpha=alpha))
    parts = model.loss(hand_batch())
    parts["incremental"].backward(retain_graph=True)
    a_grad = model.towers["alignment"].table.grad
    assert a_grad is None or torch.count_nonzero(a_grad) == 0
    assert model.towers["basic"].table.grad is None
    assert torch.count_nonzero(model.towers["incremental"].table.grad) > 0
    # L_align does train the alignment tower (so the check above can fail)
    parts["align"].backward()
    assert torch.count_nonzero(model.towers["alignment"].table.grad) > 0


def test_logq_correction_subtracts_log_probabilities_from_every_logit():
    from models.losses import sampled_softmax

    user = torch.tensor([[[1.0, 0.0]]])  # [1, 1, 2]
    pos = torch.tensor([[2.0, 0.0]])  # logit 2
    neg = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # logits 1, 0
    pos_logq, neg_logq = torch.tensor([-1.0]), torch.tensor([-2.0, -0.5])
    got = sampled_softmax(user, torch.tensor([0]), pos, neg, pos_logq=pos_logq, neg_logq=neg_logq)
    # corrected logits: 2 - (-1) = 3; 1 - (-2) = 3; 0 - (-0.5) = 0.5
    expect = torch.logsumexp(torch.tensor([3.0, 3.0, 0.5]), 0) - 3.0
    assert torch.isclose(got, expect)


def test_alpha_exclude_self_needs_eq7():
    with pytest.raises(ValueError, match="alpha_exclude_self"):
        Variant(name="x", incremental=True, alignment=True, alpha="item", alpha_exclude_self=True)
    assert Variant(name="x", incremental=True, alignment=True, alpha="nearest_exposed", alpha_exclude_self=True)
