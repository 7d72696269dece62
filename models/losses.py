"""Sampled softmax losses of paper eq. 2, 4 and 6, and the adaptive weight α of eq. 7.

All three losses share one form: for a positive (u, i) with score s(u, i) = max_k <u_k, v_i>,
    l(u, i) = -log( exp s(u,i) / (exp s(u,i) + Σ_{j ∈ negatives} exp s_k*(u, j)) )
where k* is the interest closest to the positive (the ComiRec training rule; single-interest
towers have k* = 0), or, with interests='max' (KuaiFormer's rule), every negative j is scored
by max_k <u_k, v_j> too. Negatives are items sampled from the pool (shared by the batch), masked
where they equal a positive of the row ("accidental hits"), plus optional per-row extra
negatives (the request's RTG items in eq. 4). The loss is the weighted mean over positives.
"""

from __future__ import annotations

import torch


INTEREST_SCORING = ("closest", "max")


def pick_interest(user: torch.Tensor, rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """The interest of user row `rows[p]` closest to item vector `items[p]`: [P, D]."""
    # user: [B, K, D]; rows: [P]; items: [P, D]
    per_row = user[rows]  # [P, K, D]
    if per_row.shape[1] == 1:
        return per_row[:, 0]
    k = torch.einsum("pkd,pd->pk", per_row, items).argmax(dim=1)  # [P]
    return per_row[torch.arange(len(rows), device=user.device), k]


def score(user: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """s(u, i) = max_k <u_k, v_i> for aligned rows: user [P, K, D], items [P, D] -> [P]."""
    return torch.einsum("pkd,pd->pk", user, items).amax(dim=1)


def sampled_softmax(
    user: torch.Tensor,
    rows: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor,
    neg_mask: torch.Tensor | None = None,
    extra_neg: torch.Tensor | None = None,
    extra_mask: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    pos_logq: torch.Tensor | None = None,
    neg_logq: torch.Tensor | None = None,
    interests: str = "closest",
) -> torch.Tensor:
    """Weighted mean of l(u, i) over positives (eq. 2, 4, 6).

    user [B, K, D]; rows [P] (batch row of each positive); pos [P, D] positive item vectors;
    neg [M, D] shared sampled negatives; neg_mask [B, M] True = drop (equals a positive of the row);
    extra_neg [B, E, D] per-row extra negatives with extra_mask [B, E] True = real entry;
    weights [P] (α_i of eq. 4), default 1.
    pos_logq [P], neg_logq [M]: log sampling probabilities subtracted from the logits (the logQ
    correction of Yi et al. 2019, for in-batch negatives); None when negatives are uniform.
    interests: how a multi-interest user [B, K>1, D] scores items in the loss.
      'closest' (ComiRec's hard read-out): the interest nearest the positive scores the positive
        and every negative of that positive;
      'max' (KuaiFormer): every item, positive or negative, gets s(u, i) = max_k <u_k, v_i>, the
        score serving ranks by, so no interest is left free to retrieve negatives.
    Both are the same for K = 1.
    """
    if interests not in INTEREST_SCORING:
        raise ValueError(f"interests={interests!r}; choose one of {list(INTEREST_SCORING)}")
    if rows.numel() == 0:
        return user.sum() * 0.0
    if interests == "max" and user.shape[1] > 1:
        pos_logit = score(user[rows], pos)[:, None]  # [P, 1]
        neg_logit = torch.einsum("bkd,md->bkm", user, neg).amax(dim=1)[rows]  # [P, M]
        extra = None
        if extra_neg is not None and extra_neg.shape[1] > 0:
            extra = torch.einsum("bkd,bed->bke", user, extra_neg).amax(dim=1)[rows]  # [P, E]
    else:
        u = pick_interest(user, rows, pos)  # [P, D]
        pos_logit = (u * pos).sum(-1, keepdim=True)  # [P, 1]
        neg_logit = u @ neg.T  # [P, M]
        extra = None
        if extra_neg is not None and extra_neg.shape[1] > 0:
            extra = torch.einsum("pd,ped->pe", u, extra_neg[rows])  # [P, E]
    if neg_logq is not None:
        pos_logit = pos_logit - pos_logq[:, None]
        neg_logit = neg_logit - neg_logq[None, :]
    if neg_mask is not None:
        neg_logit = neg_logit.masked_fill(neg_mask[rows], float("-inf"))
    logits = [pos_logit, neg_logit]
    if extra is not None:
        logits.append(extra.masked_fill(~extra_mask[rows], float("-inf")))
    loss = torch.logsumexp(torch.cat(logits, dim=1), dim=1) - pos_logit[:, 0]  # [P]
    if weights is None:
        return loss.mean()
    return (weights * loss).sum() / len(loss)


def transform_alpha(raw: torch.Tensor, how: str) -> torch.Tensor:
    """Map the raw inner product of eq. 7 to a loss weight: 'raw' (as the paper writes it, may be
    negative), 'sigmoid' or 'softplus' (positive), each then optionally renormalised by the caller."""
    if how == "raw":
        return raw
    if how == "sigmoid":
        return torch.sigmoid(raw)
    if how == "softplus":
        return torch.nn.functional.softplus(raw)
    raise ValueError(f"increc.alpha_transform={how!r}; choose raw, sigmoid or softplus")


def nearest_exposed_alpha(
    align_user: torch.Tensor,
    rows: torch.Tensor,
    itg: torch.Tensor,
    etg: torch.Tensor,
    etg_mask: torch.Tensor,
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw α_i of eq. 7: j = argmax_{j ∈ ETG} <v_i, v_j>, α_i = s_align(u, j). No gradient.

    align_user [B, K, D]; rows [P]; itg [P, D] vectors of the ITG positives; etg [B, E, D] the
    request's exposed items with etg_mask [B, E] (True = real). exclude [P, E] bool: exposed entries
    that may not be j (increc.alpha_exclude_self: the ITG item itself). Returns (α [P], found [P] bool:
    some exposed item was left to be j; where not, α is meaningless and the caller falls back).
    """
    with torch.no_grad():
        allowed = etg_mask[rows] if exclude is None else etg_mask[rows] & ~exclude  # [P, E]
        sim = torch.einsum("pd,ped->pe", itg, etg[rows]).masked_fill(~allowed, float("-inf"))  # [P, E]
        j = sim.argmax(dim=1)  # [P]
        v_j = etg[rows, j]  # [P, D]
        return score(align_user[rows], v_j), allowed.any(dim=1)
