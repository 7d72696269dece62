"""DSSM user tower: Huang, He, Gao, Deng, Acero & Heck, "Learning Deep Structured Semantic Models
for Web Search using Clickthrough Data", CIKM 2013, used as a two-tower retriever.

The paper (section 3.1) maps a bag-of-words vector x through a multi-layer non-linear projection
    l_1 = W_1 x,   l_i = f(W_i l_{i-1} + b_i) (i = 2..N-1),   y = f(W_N l_{N-1} + b_N)
with f = tanh, and scores a query-document pair by the cosine of their outputs
    R(Q, D) = y_Q^T y_D / (‖y_Q‖ ‖y_D‖);
it trains (section 3.3) the softmax over one clicked and a few sampled unclicked documents
    P(D | Q) = exp(γ R(Q, D)) / Σ_{D'} exp(γ R(Q, D')),   loss -log Π_{(Q, D+)} P(D+ | Q)
with a smoothing factor γ. Here the "query" is the user:
    x = [bag(B_u) ; p_u]     bag = masked mean (or sum) of the history item vectors,
                             p_u = Σ_f E_f[P_u,f] the profile embedding
    y = f(W_N … f(W_1 x + b_1) … + b_N)         widths 2d → hidden_sizes … → d
    u = y / (τ ‖y‖)   for similarity: cosine  (τ = 1/γ, the `temperature`)
    u = y             for similarity: inner
The history items are embedded by the shared item tower, which plays the role of the paper's
first (linear, bias-free) projection W_1 of the bag of words; the document side of the paper is
that same item tower. For a true cosine the item vectors must have unit length too: build the
ItemTower with `normalize=True` (model YAML key `item_normalize`). Then u · v_i = γ R(u, i),
which is the logit of P(D | Q), and the harness's sampled softmax (models.losses) is the paper's loss.

Weights are initialised uniformly in ±sqrt(6 / (fan_in + fan_out)) as in the paper's experiments
(Xavier uniform), biases at zero. Pooling the history by its mean (default) keeps the MLP's input
scale independent of the history length; `pooling: sum` is the literal bag-of-words count.
An empty history gives bag = 0 and a finite output (F.normalize maps a zero vector to zero).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from models.embeddings import context_embeddings, history_tokens, masked_sum, mlp
from models.inputs import UserInput
from models.item_tower import ItemTower

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class DSSM(nn.Module):
    """User MLP over profile ⊕ bag of history; cosine (with temperature) or inner product: [B, 1, D]."""

    n_interests = 1

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        hidden_sizes: list[int] | tuple[int, ...] = (300, 300),
        activation: str = "tanh",
        activate_output: bool = True,
        pooling: str = "mean",
        similarity: str = "cosine",
        temperature: float = 0.05,
        initializer_range: float = 0.02,
        use_profile: bool = True,
        use_scenario: bool = True,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"DSSM activation={activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if pooling not in ("mean", "sum"):
            raise ValueError(f"DSSM pooling={pooling!r}; choose mean or sum")
        if similarity not in ("cosine", "inner"):
            raise ValueError(f"DSSM similarity={similarity!r}; choose cosine or inner")
        if similarity == "cosine" and not temperature > 0:
            raise ValueError(f"DSSM temperature={temperature}: must be positive")
        if similarity == "cosine" and not getattr(item_tower, "normalize", False):
            warnings.warn("DSSM similarity=cosine with an item tower that does not normalise its vectors: the score "
                          "is <u/‖u‖, v>/τ, not a cosine (set model.item_normalize=true)", stacklevel=2)
        dim = item_tower.dim
        self.item_tower = item_tower
        self.pooling = pooling
        self.similarity = similarity
        self.temperature = float(temperature)
        self.scenarios, self.profile = context_embeddings(n_scenarios, profile_cardinalities, dim, use_scenario=use_scenario,
                                                          use_profile=use_profile, init_std=initializer_range)
        if self.scenarios is not None:
            nn.init.normal_(self.scenarios.weight, std=initializer_range)
        widths = [dim * (2 if self.profile is not None else 1), *[int(h) for h in hidden_sizes], dim]
        # the paper's U(±sqrt(6 / (fan_in + fan_out))) on every weight
        self.mlp = mlp(widths, nn.init.xavier_uniform_, ACTIVATIONS[activation], activate_output)

    def forward(self, user: UserInput) -> torch.Tensor:
        tokens = history_tokens(self.item_tower, self.scenarios, user)  # [B, L, D]
        bag, count = masked_sum(tokens, user.mask)  # [B, D], [B, 1]
        if self.pooling == "mean":
            bag = bag / count  # [B, D], 0 when the history is empty
        x = bag if self.profile is None else torch.cat([bag, self.profile(user.profile)], dim=-1)  # [B, D or 2D]
        y = self.mlp(x)  # [B, D]
        if self.similarity == "cosine":
            y = F.normalize(y, dim=-1) / self.temperature  # [B, D], length 1/τ
        return y[:, None]  # [B, 1, D]
