"""The shared item tower g_item(I_i) of paper eq. 1: item-id embedding plus side-feature embeddings.

One instance is shared by every user tower of a model (paper Figure 2); it embeds both the
candidates and the history items the user towers read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.embeddings import FieldEmbeddings


class ItemTower(nn.Module):
    """v_i = E_id[i] + sum_f E_f[feature_f(i)]  (PROTOCOL section 3)."""

    def __init__(self, item_features: torch.Tensor, feature_cardinalities: list[int], dim: int = 64,
                 use_side_features: bool = True, init_std: float = 0.02, normalize: bool = False,
                 sparse: bool = False) -> None:
        super().__init__()
        n_items = item_features.shape[0]
        self.dim = dim
        self.normalize = normalize  # return unit-length vectors (a true cosine for DSSM's similarity: cosine)
        self.ids = nn.Embedding(n_items, dim, sparse=sparse)  # sparse: a step touches only the rows it reads
        nn.init.normal_(self.ids.weight, std=init_std)
        self.use_side_features = use_side_features and item_features.shape[1] > 0
        self.register_buffer("features", item_features.long(), persistent=False)  # [n_items, F]
        self.side = FieldEmbeddings(feature_cardinalities, dim, init_std, sparse) if self.use_side_features else None

    @property
    def n_items(self) -> int:
        return self.ids.num_embeddings

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        # items: [...] long -> [..., dim]
        out = self.ids(items)
        if self.side is not None:
            out = out + self.side(self.features[items])
        if self.normalize:
            out = F.normalize(out, dim=-1)
        return out

    def all_items(self, chunk: int = 262_144) -> torch.Tensor:
        """[n_items, dim] the whole pool.

        Without autograd (retrieval) the rows are built `chunk` at a time into one output: summing the
        side-feature embeddings of the whole pool at once holds several [n_items, dim] temporaries, which
        on a 4.4M-item pool is gigabytes. Every row gets the same operations either way, so the values
        are identical.
        """
        device = self.ids.weight.device
        if torch.is_grad_enabled() or self.n_items <= chunk:
            return self(torch.arange(self.n_items, device=device))
        out = torch.empty(self.n_items, self.dim, dtype=self.ids.weight.dtype, device=device)  # [N, D]
        for lo in range(0, self.n_items, chunk):
            out[lo : lo + chunk] = self(torch.arange(lo, min(lo + chunk, self.n_items), device=device))
        return out
