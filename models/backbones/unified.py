"""A scenario-aware unified user tower (`model=unified`): one user representation from behaviour in every
scenario, mixed across scenarios, read by queries specific to the serving scenario.

From the seed (the RED-Rec listing, "Cross-Scenario Unified Modeling of User Interests at Billion
Scale"; only its abstract is available): (a) one user representation built from the user's behaviour
in every scenario; (b) a "scenario-aware dense mixing" of those signals; (c) a "querying policy" that
expresses context-specific intents at serving time. Everything below that is more specific than those
three sentences is this harness's choice:

1. Tokens: a first token (a learnt start vector plus the profile P_u, so an empty history is defined),
   then each history item's shared item-tower vector plus an embedding of the scenario it happened in
   and of its recency (0 = newest). Histories are left-aligned with padding after them; recency is
   counted from each row's newest item, so padding changes nothing. With `input_norm` the tokens enter
   the mixing as Dropout(LayerNorm(tokens)), as SASRec's eq. 2 does for item + position.
2. Mixing (the choice for (b)): `n_layers` pre-LayerNorm Transformer layers with full (not causal)
   attention over the tokens, so tokens of different scenarios inform each other, and a learnt
   scenario-pair bias b[h, s_query, s_key] added to every head's attention logits, so how much a token
   of scenario s reads a token of scenario s' is itself learnt (the start token has its own scenario
   row). Causality does not apply: the whole history precedes the request.
3. Querying (the choice for (c)): `n_interests` query vectors, a shared set plus a set specific to
   the query scenario, cross-attend over the mixed tokens (one attention layer, `n_heads` heads), each
   giving one interest vector [B, n_interests, D] (served like ComiRec's and KuaiFormer's interests).
   The query scenario is the serving scenario (`query_scenario: serving`, the request's primary tab,
   `serving_scenario`) or the scenario of the newest history item (`last`), known at training and at
   serving alike. The target's scenario is not used: a request's targets span several scenarios and
   the harness computes one user representation per request.
No language model is used (none can be downloaded here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.dropout import Dropout
from models.embeddings import context_embeddings, history_tokens
from models.inputs import UserInput
from models.item_tower import ItemTower

QUERY_SCENARIOS = ("serving", "last")


class ScenarioBiasedAttention(nn.Module):
    """Multi-head attention softmax(q kᵀ / √d_h + b[h, s_q, s_k] + mask) v, then an output projection."""

    def __init__(self, dim: int, n_heads: int, n_token_scenarios: int, dropout: float, scenario_bias: bool) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"width {dim} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(n_heads, n_token_scenarios, n_token_scenarios)) if scenario_bias else None

    def forward(self, x: torch.Tensor, memory: torch.Tensor, key_mask: torch.Tensor,
                q_scen: torch.Tensor | None = None, k_scen: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, Q, D] queries; memory: [B, L, D]; key_mask: [B, L] bool (True = real); q_scen [B, Q], k_scen [B, L]
        b, nq, dim = x.shape
        h, dh = self.n_heads, dim // self.n_heads
        q = self.q(x).view(b, nq, h, dh).transpose(1, 2)  # [B, H, Q, Dh]
        k, v = self.kv(memory).view(b, -1, 2, h, dh).permute(2, 0, 3, 1, 4)  # 2 x [B, H, L, Dh]
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))  # [B, H, Q, L]
        if self.bias is not None and q_scen is not None and k_scen is not None:
            pair = self.bias[:, q_scen[:, :, None], k_scen[:, None, :]]  # [H, B, Q, L]
            scores = scores + pair.permute(1, 0, 2, 3)
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype)  # [B, H, Q, L]
        a = (self.drop(weights) @ v).transpose(1, 2).reshape(b, nq, dim)  # [B, Q, D]
        return self.out(a)


class MixingLayer(nn.Module):
    """Pre-LN Transformer layer over the tokens with scenario-biased full attention."""

    def __init__(self, dim: int, n_heads: int, inner_size: int, n_token_scenarios: int, dropout: float,
                 scenario_bias: bool) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = ScenarioBiasedAttention(dim, n_heads, n_token_scenarios, dropout, scenario_bias)
        self.ln_ff = nn.LayerNorm(dim)
        self.ff_in = nn.Linear(dim, inner_size)
        self.ff_out = nn.Linear(inner_size, dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, scen: torch.Tensor) -> torch.Tensor:
        # x: [B, L, D]; mask: [B, L] bool; scen: [B, L] long
        y = self.ln_attn(x)
        x = x + self.dropout(self.attn(y, y, mask, scen, scen))
        return x + self.dropout(self.ff_out(F.gelu(self.ff_in(self.ln_ff(x)))))


class UnifiedTower(nn.Module):
    """Start + history tokens -> scenario-aware mixing -> serving-scenario queries: [B, n_interests, D]."""

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        n_interests: int = 4,
        n_layers: int = 2,
        n_heads: int = 2,
        inner_size: int = 256,
        dropout: float = 0.1,
        max_len: int = 50,
        serving_scenario: int = 1,
        query_scenario: str = "serving",
        scenario_bias: bool = True,
        use_profile: bool = True,
        input_norm: bool = True,
        initializer_range: float = 0.02,
    ) -> None:
        super().__init__()
        if query_scenario not in QUERY_SCENARIOS:
            raise ValueError(f"query_scenario={query_scenario!r}; choose one of {list(QUERY_SCENARIOS)}")
        if not 0 <= serving_scenario < n_scenarios:
            raise ValueError(f"serving_scenario={serving_scenario} is not a scenario of the data (0..{n_scenarios - 1})")
        dim = item_tower.dim
        self.item_tower = item_tower
        self.n_interests = n_interests
        self.max_len = max_len
        self.serving_scenario = serving_scenario
        self.query_scenario = query_scenario
        self.scenarios, self.profile = context_embeddings(n_scenarios, profile_cardinalities, dim, use_scenario=True,
                                                          use_profile=use_profile, init_std=initializer_range)
        self.recency = nn.Embedding(max_len, dim)  # 0 = the newest history item
        self.start = nn.Parameter(torch.randn(dim) * initializer_range)  # [D]
        self.start_scenario = n_scenarios  # the start token's own row in the scenario-pair bias
        self.ln_in = nn.LayerNorm(dim) if input_norm else None  # SASRec eq. 2's LayerNorm on the input tokens
        self.drop_in = Dropout(dropout)
        self.layers = nn.ModuleList(MixingLayer(dim, n_heads, inner_size, n_scenarios + 1, dropout, scenario_bias)
                                    for _ in range(n_layers))
        self.ln_mixed = nn.LayerNorm(dim)
        self.shared_queries = nn.Parameter(torch.randn(n_interests, dim) * initializer_range)  # [K, D]
        self.scenario_queries = nn.Embedding(n_scenarios, n_interests * dim)  # [S, K * D]
        self.read = ScenarioBiasedAttention(dim, n_heads, n_scenarios + 1, 0.0, scenario_bias)
        self.ln_out = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)
        for module in [self.scenarios, self.recency, self.scenario_queries, *self.layers, self.read, self.proj]:
            for sub in module.modules():
                if isinstance(sub, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(sub.weight, std=initializer_range)
                if isinstance(sub, nn.Linear) and sub.bias is not None:
                    nn.init.zeros_(sub.bias)

    def query_scenarios(self, user: UserInput) -> torch.Tensor:
        """[B] the scenario whose queries read the history: the serving scenario, or the newest item's."""
        b = user.batch_size
        serving = torch.full((b,), self.serving_scenario, dtype=torch.long, device=user.items.device)
        if self.query_scenario == "serving" or user.items.shape[1] == 0:
            return serving
        last = (user.lengths - 1).clamp(min=0)  # [B]
        newest = user.tabs.gather(1, last[:, None])[:, 0]  # [B]
        return torch.where(user.lengths > 0, newest, serving)

    def forward(self, user: UserInput) -> torch.Tensor:
        b = user.batch_size
        tokens = history_tokens(self.item_tower, self.scenarios, user)[:, : self.max_len]  # [B, L, D]
        mask = user.mask[:, : self.max_len]  # [B, L]
        scen = user.tabs[:, : self.max_len]  # [B, L]
        col = torch.arange(tokens.shape[1], device=tokens.device)  # [L]
        recency = (user.lengths.clamp(max=self.max_len)[:, None] - 1 - col[None]).clamp(min=0)  # [B, L], 0 = newest
        tokens = tokens + self.recency(recency)
        start = self.start.expand(b, -1)  # [B, D]
        if self.profile is not None:
            start = start + self.profile(user.profile)
        x = torch.cat([start[:, None], tokens], dim=1)  # [B, 1 + L, D]
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)  # [B, 1 + L]
        scen = torch.cat([torch.full((b, 1), self.start_scenario, dtype=torch.long, device=scen.device), scen], dim=1)
        if self.ln_in is not None:
            x = self.drop_in(self.ln_in(x))  # [B, 1 + L, D]
        for layer in self.layers:
            x = layer(x, mask, scen)
        mixed = self.ln_mixed(x)  # [B, 1 + L, D]
        qs = self.query_scenarios(user)  # [B]
        dim = mixed.shape[-1]
        queries = self.shared_queries[None] + self.scenario_queries(qs).view(b, self.n_interests, dim)  # [B, K, D]
        q_scen = qs[:, None].expand(b, self.n_interests)  # [B, K]
        interests = queries + self.read(queries, mixed, mask, q_scen, scen)  # [B, K, D]
        return self.proj(self.ln_out(interests))  # [B, K, D]
