"""Sums of categorical-field embeddings: the building block of the item tower and profile encoders."""

from __future__ import annotations

import torch
from torch import nn

from models.dropout import Dropout
from models.inputs import UserInput


class FieldEmbeddings(nn.Module):
    """One embedding table per categorical field, summed: [..., F] codes -> [..., dim]."""

    def __init__(self, cardinalities: list[int], dim: int, init_std: float = 0.02, sparse: bool = False) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(max(int(n), 1), dim, sparse=sparse) for n in cardinalities)
        for table in self.tables:
            nn.init.normal_(table.weight, std=init_std)

    @property
    def n_fields(self) -> int:
        return len(self.tables)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        # codes: [..., F] long -> [..., dim]
        out = self.tables[0](codes[..., 0])
        for f in range(1, self.n_fields):
            out = out + self.tables[f](codes[..., f])
        return out


def context_embeddings(n_scenarios: int, profile_cardinalities: list[int], dim: int, *, use_scenario: bool,
                       use_profile: bool, init_std: float) -> tuple[nn.Embedding | None, FieldEmbeddings | None]:
    """The scenario table added to history tokens and the profile-field tables of a user tower.

    Created in this order; the scenario table keeps torch's default initialisation here and each
    tower initialises it as its paper does.
    """
    scenarios = nn.Embedding(n_scenarios, dim) if use_scenario else None
    profile = FieldEmbeddings(profile_cardinalities, dim, init_std) if use_profile and profile_cardinalities else None
    return scenarios, profile


def mlp(widths: list[int], init_weight, activation: type[nn.Module], activate_output: bool,
        dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given widths, `init_weight` on each weight and zero biases; after every hidden
    layer the activation (also after the last one when `activate_output`), then dropout if > 0."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        linear = nn.Linear(n_in, n_out)
        init_weight(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        hidden = i < len(widths) - 2
        if hidden or activate_output:
            layers.append(activation())
        if hidden and dropout > 0:
            layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


def history_tokens(item_tower: nn.Module, scenarios: nn.Embedding | None, user: UserInput) -> torch.Tensor:
    """[B, L, D] history item vectors from the shared item tower (or the ones `user` carries, computed once
    per step for every tower), plus their scenario embeddings."""
    tokens = item_tower(user.items) if user.item_vectors is None else user.item_vectors
    return tokens if scenarios is None else tokens + scenarios(user.tabs)


def masked_sum(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over real positions and their count: tokens [B, L, D], mask [B, L] -> ([B, D], [B, 1] >= 1)."""
    m = mask.unsqueeze(-1)  # [B, L, 1]
    return tokens.masked_fill(~m, 0.0).sum(dim=1), m.sum(dim=1).clamp(min=1).to(tokens.dtype)
