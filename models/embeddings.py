"""Sums of categorical-field embeddings: the building block of the item tower and profile encoders."""

from __future__ import annotations

import torch
from torch import nn


class FieldEmbeddings(nn.Module):
    """One embedding table per categorical field, summed: [..., F] codes -> [..., dim]."""

    def __init__(self, cardinalities: list[int], dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(max(int(n), 1), dim) for n in cardinalities)
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
