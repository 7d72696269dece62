"""ComiRec user towers: Cen, Zhang, Zou, Zhou, Yang & Tang, "Controllable Multi-Interest Framework
for Recommendation", KDD 2020. Both multi-interest extraction modules of the paper's section 3
("Multi-Interest Extraction"), checked against the authors' TensorFlow code (github.com/THUDM/ComiRec,
src/model.py, `CapsuleNetwork` with bilinear_type 2 and `Model_ComiRec_SA`).

ComiRec-DR, dynamic routing as in CapsNet: the history items e_i are the primary capsules, the K
interests the interest capsules.
    ê_{j|i} = W_ij e_i                        prediction vectors, W_ij ∈ R^{d×d}
    c_ij    = exp(b_ij) / Σ_k exp(b_ik)        routing softmax over the interests k
    s_j     = Σ_i c_ij ê_{j|i}                 total input of interest capsule j
    v_j     = squash(s_j) = ‖s_j‖² / (1 + ‖s_j‖²) · s_j / ‖s_j‖
    b_ij   ← b_ij + v_j^T ê_{j|i}              agreement update; `routing_iterations` (3) passes
The paper's W_ij is one matrix per (history position i, interest j) (`bilinear: per_position`, the
authors' "bilinear_type 2", N(0, 1) initialised) and the routing logits start at b_ij = 0. The
MIND-style alternative (Li et al., CIKM 2019, "behaviour-to-interest" routing) shares one bilinear
map S by every position and interest (`bilinear: shared`); from b = 0 all interests would then stay
identical, so its logits start random, b_ij ~ N(0, routing_init_std²) (`routing_init: random`).
As in the authors' code the routing passes before the last read ê through a stop-gradient, so the
coupling coefficients c carry no gradient and the parameters learn through the last pass's
s_j = Σ_i c_ij ê_{j|i} only (`stop_routing_grad`).

ComiRec-SA, the self-attentive method. With H ∈ R^{d×n} the history embeddings:
    A   = softmax(W_2^T tanh(W_1 H))^T         W_1 ∈ R^{d_a×d}, W_2 ∈ R^{d_a×K}, softmax over the n items
    V_u = H A                                  the K interests, [d × K]
with trainable position embeddings added to H where the attention is computed (the paper adds them
so that the extractor sees the order of the sequence); as in the authors' code, the read-out V_u = H A sums the
item embeddings without them, and d_a = 4d. As in the paper's equation the two maps have no bias.

Training uses, for each target, the interest closest to it, v_u = V_u[:, argmax(V_u^T e_i)] (the
paper's hard read-out, section "Model Training"; models.losses.pick_interest); serving retrieves
the top-N with every interest and merges the lists by score, f(u, i) = max_k e_i^T v_u^(k)
(bench.evaluation.retrieve.top_k), the paper's aggregation module with its diversity factor λ = 0.

Adaptations for f_b(P_u, B_u) of IncRec's eq. 1 (each switchable):
- the history items are embedded by the shared item tower (ids plus side features);
- each history item adds an embedding of the scenario it happened in (`use_scenario`);
- the profile embedding p_u = Σ_f E_f[P_u,f] is added to every interest (`use_profile`); the score
  becomes max_k (v_k + p_u)^T e_i = p_u^T e_i + max_k v_k^T e_i, so the profile acts as a
  user-specific item prior and leaves the choice of the closest interest unchanged.
Padding (left-aligned histories, padding after the items) gets zero routing weight and zero
attention; an empty history gives v_k = 0 (plus p_u), so the output stays finite.

Permutation properties (tests/unit/models/test_backbones_basic.py): ComiRec-SA without position embeddings is
invariant to permuting the history; with them it is not. ComiRec-DR with per-position W_ij is
position-aware (the map depends on i). With a shared map, routing is permutation-equivariant: the
interests depend only on the multiset of (item, initial logits b_i·) pairs, so permuting the
history together with the initial logits leaves them unchanged. In eval mode those initial logits
are fixed per position (drawn once at construction from torch's global RNG, so serving is
deterministic and reproducible under torch.manual_seed); in training they are drawn afresh per row
and call from the global RNG, as in MIND.
"""

from __future__ import annotations

import torch
from torch import nn

from models.embeddings import context_embeddings, history_tokens
from models.inputs import UserInput
from models.item_tower import ItemTower


def squash(s: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Capsule squash over the last axis: ‖s‖² / (1 + ‖s‖²) · s / ‖s‖ (0 at s = 0)."""
    norm2 = s.pow(2).sum(dim=-1, keepdim=True)  # [..., 1]
    return s * (norm2 / (1.0 + norm2) / torch.sqrt(norm2 + eps))


class _ComiRecBase(nn.Module):
    """What both extractors share: history tokens (item tower + scenario) and the profile term."""

    def __init__(self, item_tower: ItemTower, profile_cardinalities: list[int], n_scenarios: int, n_interests: int,
                 max_len: int, initializer_range: float, use_profile: bool, use_scenario: bool) -> None:
        super().__init__()
        if n_interests < 1:
            raise ValueError(f"n_interests={n_interests}: must be at least 1")
        dim = item_tower.dim
        self.item_tower = item_tower
        self.n_interests = int(n_interests)
        self.max_len = int(max_len)
        self.scenarios, self.profile = context_embeddings(n_scenarios, profile_cardinalities, dim, use_scenario=use_scenario,
                                                          use_profile=use_profile, init_std=initializer_range)
        if self.scenarios is not None:
            nn.init.normal_(self.scenarios.weight, std=initializer_range)

    def history(self, user: UserInput) -> torch.Tensor:
        """[B, L, D] history item vectors (plus scenario), zero at padding."""
        if user.items.shape[1] > self.max_len:
            raise ValueError(f"history width {user.items.shape[1]} exceeds {type(self).__name__} max_len {self.max_len}")
        tokens = history_tokens(self.item_tower, self.scenarios, user)  # [B, L, D]
        return tokens.masked_fill(~user.mask.unsqueeze(-1), 0.0)

    def with_profile(self, interests: torch.Tensor, user: UserInput) -> torch.Tensor:
        """Add p_u to every interest: [B, K, D] -> [B, K, D]."""
        if self.profile is None:
            return interests
        return interests + self.profile(user.profile)[:, None]


class ComiRecDR(_ComiRecBase):
    """Dynamic-routing multi-interest extractor: [B, K, D]."""

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        n_interests: int = 4,
        routing_iterations: int = 3,
        bilinear: str = "per_position",
        routing_init: str = "zero",
        routing_init_std: float = 1.0,
        bilinear_init_std: float = 1.0,
        stop_routing_grad: bool = True,
        max_len: int = 50,
        initializer_range: float = 0.02,
        use_profile: bool = True,
        use_scenario: bool = True,
    ) -> None:
        super().__init__(item_tower, profile_cardinalities, n_scenarios, n_interests, max_len, initializer_range,
                         use_profile, use_scenario)
        if bilinear not in ("per_position", "shared"):
            raise ValueError(f"ComiRecDR bilinear={bilinear!r}; choose per_position or shared")
        if routing_init not in ("zero", "random"):
            raise ValueError(f"ComiRecDR routing_init={routing_init!r}; choose zero or random")
        if bilinear == "shared" and routing_init == "zero" and n_interests > 1:
            raise ValueError("ComiRecDR bilinear=shared with routing_init=zero gives K identical interests; "
                             "use routing_init=random (MIND) or bilinear=per_position (ComiRec)")
        if routing_iterations < 1:
            raise ValueError(f"routing_iterations={routing_iterations}: must be at least 1")
        dim = item_tower.dim
        self.routing_iterations = int(routing_iterations)
        self.bilinear = bilinear
        self.routing_init = routing_init
        self.routing_init_std = float(routing_init_std)
        self.stop_routing_grad = stop_routing_grad
        if bilinear == "per_position":  # W_ij for every history position i and interest j
            shape = (self.max_len, self.n_interests, dim, dim)  # [L_max, K, D_out, D_in]
            self.weight = nn.Parameter(torch.randn(shape) * bilinear_init_std)
        else:  # MIND's shared S
            self.weight = nn.Parameter(torch.randn(dim, dim) * bilinear_init_std)  # [D_out, D_in]
        if routing_init == "random":  # eval-time initial logits, fixed per (interest, position)
            self.register_buffer("eval_logits", torch.randn(self.n_interests, self.max_len) * self.routing_init_std,
                                 persistent=False)  # [K, L_max]
        else:
            self.register_buffer("eval_logits", None, persistent=False)

    def predictions(self, history: torch.Tensor) -> torch.Tensor:
        """Prediction vectors ê_{j|i} = W_ij e_i: history [B, L, D] -> [B, K, L, D]."""
        if self.bilinear == "per_position":
            return torch.einsum("lkoi,bli->bklo", self.weight[: history.shape[1]], history)
        shared = history @ self.weight.T  # [B, L, D]
        return shared[:, None].expand(-1, self.n_interests, -1, -1)

    def initial_logits(self, batch: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """b_ij before the first routing pass: [B, K, L]."""
        if self.routing_init == "zero":
            return torch.zeros(batch, self.n_interests, width, device=device, dtype=dtype)
        if self.training:  # fresh per row and call, from torch's global RNG (MIND)
            return torch.randn(batch, self.n_interests, width, device=device, dtype=dtype) * self.routing_init_std
        return self.eval_logits[:, :width].to(dtype)[None].expand(batch, -1, -1)

    def route(self, hat: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Dynamic routing. hat [B, K, L, D]; mask [B, L] True = item; logits [B, K, L] -> [B, K, D]."""
        hat_iter = hat.detach() if self.stop_routing_grad else hat
        keep = mask[:, None].to(hat.dtype)  # [B, 1, L]
        b = logits.detach() if self.stop_routing_grad else logits
        for r in range(self.routing_iterations):
            c = torch.softmax(b, dim=1) * keep  # [B, K, L], each item's coupling over interests; 0 at padding
            last = r == self.routing_iterations - 1
            s = torch.einsum("bkl,bkld->bkd", c, hat if last else hat_iter)  # [B, K, D], s_j
            v = squash(s)  # [B, K, D], v_j
            if not last:
                b = b + torch.einsum("bkld,bkd->bkl", hat_iter, v)  # agreement update of b_ij
        return v

    def forward(self, user: UserInput) -> torch.Tensor:
        history = self.history(user)  # [B, L, D]
        hat = self.predictions(history)  # [B, K, L, D]
        logits = self.initial_logits(history.shape[0], history.shape[1], history.device, history.dtype)  # [B, K, L]
        return self.with_profile(self.route(hat, user.mask, logits), user)  # [B, K, D]


class ComiRecSA(_ComiRecBase):
    """Self-attentive multi-interest extractor: [B, K, D]."""

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        n_interests: int = 4,
        attention_size: int | None = None,
        use_position: bool = True,
        max_len: int = 50,
        initializer_range: float = 0.02,
        use_profile: bool = True,
        use_scenario: bool = True,
    ) -> None:
        super().__init__(item_tower, profile_cardinalities, n_scenarios, n_interests, max_len, initializer_range,
                         use_profile, use_scenario)
        dim = item_tower.dim
        d_a = int(attention_size) if attention_size else 4 * dim
        self.positions = nn.Embedding(self.max_len, dim) if use_position else None
        self.w1 = nn.Linear(dim, d_a, bias=False)  # W_1
        self.w2 = nn.Linear(d_a, self.n_interests, bias=False)  # W_2
        nn.init.xavier_uniform_(self.w1.weight)  # the authors' dense-layer default (Glorot uniform)
        nn.init.xavier_uniform_(self.w2.weight)
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=initializer_range)  # on the item embeddings' scale

    def attention(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A^T as [B, K, L]: each interest's weights over the history, 0 at padding."""
        keys = history
        if self.positions is not None:
            keys = keys + self.positions(torch.arange(history.shape[1], device=history.device))[None]  # [B, L, D]
        logits = self.w2(torch.tanh(self.w1(keys))).transpose(1, 2)  # [B, K, L]
        logits = logits.masked_fill(~mask[:, None], torch.finfo(logits.dtype).min)
        # a row without history has a uniform softmax over its padding: the mask zeroes it
        return torch.softmax(logits, dim=-1) * mask[:, None].to(logits.dtype)

    def forward(self, user: UserInput) -> torch.Tensor:
        history = self.history(user)  # [B, L, D]
        a = self.attention(history, user.mask)  # [B, K, L]
        return self.with_profile(a @ history, user)  # [B, K, D], V_u^T
