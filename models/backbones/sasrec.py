"""SASRec user tower: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

The encoder is the post-LayerNorm Transformer of the SASRec paper as RecBole 1.2.1 implements it
(its `TransformerEncoder`): per layer
    h = LayerNorm(x + Dropout(W_o · MultiHead(x)))                  (SASRec eq. 3-4, with residual)
    y = LayerNorm(h + Dropout(W_2 · GELU(W_1 · h)))                 (point-wise feed-forward, eq. 5)
with causal attention (a position sees itself and earlier positions only) and, as input,
    E = Dropout(LayerNorm(item embedding + position embedding))     (eq. 2).
The user vector is the output at the last (newest) position. RecBole's defaults: 2 layers, 2
heads, d = 64, inner size 256, dropout 0.5 on hidden states and attention, LayerNorm eps 1e-12.

Adaptations for f_b(P_u, B_u) of IncRec's eq. 1 (each switchable):
- the history items are embedded by the shared item tower (ids plus side features);
- each history item adds an embedding of the scenario it happened in (`use_scenario`);
- a first token before the history carries the profile P_u (a learnt start vector plus the
  profile-field embeddings, `use_profile`), which also gives an empty history a defined output.
Histories are left-aligned (oldest first, padding after), as in RecBole, so a causal mask alone
keeps every real position from seeing padding, and the user vector is read at each row's last
real position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.dropout import Dropout, attention
from models.embeddings import context_embeddings, history_tokens
from models.inputs import UserInput
from models.item_tower import ItemTower


class TransformerLayer(nn.Module):
    """One post-LN Transformer layer, numerically RecBole's `TransformerLayer` (gelu = erf form)."""

    def __init__(self, dim: int, n_heads: int, inner_size: int, hidden_dropout: float, attn_dropout: float,
                 layer_norm_eps: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hidden size {dim} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.attn_dropout = Dropout(attn_dropout)  # on the attention weights
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn_out = nn.Linear(dim, dim)
        self.ln_attn = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.ff_in = nn.Linear(dim, inner_size)
        self.ff_out = nn.Linear(inner_size, dim)
        self.ln_ff = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, L, D]; attn_mask: None = causal, else [B, 1, L, L] bool with True = may attend
        b, length, dim = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.n_heads, dim // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x [B, H, L, Dh]
        a = attention(q, k, v, self.attn_dropout, attn_mask=attn_mask, is_causal=attn_mask is None)  # [B, H, L, Dh]
        a = a.transpose(1, 2).reshape(b, length, dim)  # [B, L, D]
        h = self.ln_attn(x + self.dropout(self.attn_out(a)))
        return self.ln_ff(h + self.dropout(self.ff_out(F.gelu(self.ff_in(h)))))


class SASRec(nn.Module):
    """Causal self-attention over B_u; output at the newest position: [B, 1, D]."""

    n_interests = 1

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        n_layers: int = 2,
        n_heads: int = 2,
        inner_size: int = 256,
        hidden_dropout: float = 0.5,
        attn_dropout: float = 0.5,
        max_len: int = 50,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        use_profile: bool = True,
        use_scenario: bool = True,
    ) -> None:
        super().__init__()
        dim = item_tower.dim
        self.item_tower = item_tower
        self.max_len = max_len
        self.positions = nn.Embedding(max_len + 1, dim)  # +1: the profile token
        self.scenarios, self.profile = context_embeddings(n_scenarios, profile_cardinalities, dim, use_scenario=use_scenario,
                                                          use_profile=use_profile, init_std=initializer_range)
        self.start = nn.Parameter(torch.randn(dim) * initializer_range)  # [D], the first token
        self.ln_in = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.dropout = Dropout(hidden_dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(dim, n_heads, inner_size, hidden_dropout, attn_dropout, layer_norm_eps) for _ in range(n_layers)
        )
        for module in [self.positions, self.scenarios, *self.layers]:
            if module is None:
                continue
            for sub in module.modules():  # RecBole's init: N(0, 0.02) weights, zero biases
                if isinstance(sub, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(sub.weight, std=initializer_range)
                if isinstance(sub, nn.Linear) and sub.bias is not None:
                    nn.init.zeros_(sub.bias)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the causal Transformer over left-aligned tokens [B, L, D]; returns [B, L, D]."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)  # [L], 0 = oldest
        x = self.dropout(self.ln_in(tokens + self.positions(pos)[None]))
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, user: UserInput) -> torch.Tensor:
        if user.items.shape[1] > self.max_len:
            raise ValueError(f"history width {user.items.shape[1]} exceeds SASRec max_len {self.max_len}")
        tokens = history_tokens(self.item_tower, self.scenarios, user)  # [B, L, D]
        first = self.start.expand(tokens.shape[0], -1)  # [B, D]
        if self.profile is not None:
            first = first + self.profile(user.profile)
        tokens = torch.cat([first[:, None], tokens], dim=1)  # [B, L+1, D]
        out = self.encode(tokens)  # [B, L+1, D]
        last = user.lengths  # [B], index of the newest real token (the first token shifts by one)
        return out[torch.arange(out.shape[0], device=out.device), last][:, None]  # [B, 1, D]
