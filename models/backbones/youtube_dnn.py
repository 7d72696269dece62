"""YouTube-DNN user tower: Covington, Adams & Sargin, "Deep Neural Networks for YouTube
Recommendations", RecSys 2016 (the candidate-generation network, section 3 and Figure 3).

The paper treats retrieval as extreme multi-class classification,
    P(w_t = i | U, C) = exp(v_i · u) / Σ_j exp(v_j · u)                       (paper eq. 1)
where u is the output of a tower of fully connected ReLU layers fed with the concatenation of
the averaged embeddings of the watched videos ("watch vector") and the user's other features
(geography, age, gender, ...); the softmax over the pool is trained with sampled negatives and
served by nearest-neighbour search on the same inner product. Here:
    h_watch = Σ_t m_t e_t / max(1, Σ_t m_t)             masked mean over the history B_u
    x       = [h_watch ; p_u]                             p_u = Σ_f E_f[P_u,f]  (profile)
    h       = ReLU(W_{n-1} … ReLU(W_1 x + b_1) …)          the ReLU tower, `hidden_sizes` wide
    u       = W_n h + b_n                                  output layer of width d
with e_t = g_item(item_t) (+ a scenario embedding of item_t's tab when `use_scenario`) and m_t the
history mask. The output layer has width d so that u lives in the item tower's space. In the
paper's Figure 3 the user vector is read at the top of the ReLU stack; `output_relu: true` does
that (a ReLU after the output layer too). The default leaves the output layer linear: a ReLU
output keeps u in the non-negative orthant (and its dead units at 0), and on the synthetic `tiny`
preset (8 epochs, 3 seeds) the ReLU output trained to Base@10 0.063-0.076, at or below
popularity's 0.073, against 0.081-0.098 with the linear output. The loss is the harness's sampled
softmax (models.losses), the paper's eq. 1.

Adaptations for f_b(P_u, B_u) of IncRec's eq. 1:
- the history items are embedded by the shared item tower (ids plus side features);
- the profile is one d-vector, the sum of its field embeddings (`FieldEmbeddings`), instead of
  one embedding per feature concatenated; it is left out when `use_profile` is false;
- the paper's "example age" and search-token features have no counterpart in the benchmark.
An empty history gives h_watch = 0, so the output stays finite.
"""

from __future__ import annotations

import torch
from torch import nn

from models.embeddings import context_embeddings, history_tokens, masked_sum, mlp
from models.inputs import UserInput
from models.item_tower import ItemTower


class YouTubeDNN(nn.Module):
    """Mean-pooled history ⊕ profile → ReLU MLP → d-wide output layer: [B, 1, D]."""

    n_interests = 1

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        hidden_sizes: list[int] | tuple[int, ...] = (256, 128),
        output_relu: bool = False,
        dropout: float = 0.0,
        initializer_range: float = 0.02,
        use_profile: bool = True,
        use_scenario: bool = True,
    ) -> None:
        super().__init__()
        dim = item_tower.dim
        self.item_tower = item_tower
        self.scenarios, self.profile = context_embeddings(n_scenarios, profile_cardinalities, dim, use_scenario=use_scenario,
                                                          use_profile=use_profile, init_std=initializer_range)
        if self.scenarios is not None:
            nn.init.normal_(self.scenarios.weight, std=initializer_range)
        widths = [dim * (2 if self.profile is not None else 1), *[int(h) for h in hidden_sizes], dim]
        he_relu = lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu")  # noqa: E731  (He init for ReLU layers)
        self.mlp = mlp(widths, he_relu, nn.ReLU, output_relu, dropout)

    def forward(self, user: UserInput) -> torch.Tensor:
        tokens = history_tokens(self.item_tower, self.scenarios, user)  # [B, L, D]
        total, count = masked_sum(tokens, user.mask)  # [B, D], [B, 1]
        watch = total / count  # [B, D], masked mean (0 when empty)
        x = watch if self.profile is None else torch.cat([watch, self.profile(user.profile)], dim=-1)  # [B, D or 2D]
        return self.mlp(x)[:, None]  # [B, 1, D]
