"""KuaiFormer user tower: Liu et al., "KuaiFormer: Transformer-Based Retrieval at Kuaishou", arXiv 2411.10057.

KuaiFormer reads a user's watch history as a token sequence and runs a causal (GPT/Llama-style)
Transformer over it; the paper's three ingredients, as this module realises them:

1. Adaptive item compression of long histories. The history is cut, oldest to newest, into
   segments of fixed-size groups plus a recent tail. In the paper, for 256 items: the earliest
   128 form 2 groups of 64, the next 80 form 5 groups of 16, the latest 48 stay one token per
   item. Each group is squeezed into ONE token: a 1-layer bidirectional Transformer over the
   group's items, then a mean over the group's real items. The causal Transformer therefore
   reads 2 + 5 + 48 = 55 history tokens instead of 256.
2. Multi-interest query tokens. k learnable tokens q_1..q_k are appended after the history; the
   causal Transformer's outputs at those k positions are the k interests u_1..u_k (k = 6 in the
   paper). Causality lets q_j see the whole history and q_1..q_{j-1}.
3. Next-item prediction with s(u, i) = max_k <u_k, v_i> for the positive AND every negative,
   trained by an in-batch softmax with logQ correction (`negatives: in_batch`,
   `interest_scoring: max` in conf/model/kuaiformer.yaml). The paper adds label smoothing; the
   harness leaves it out so every backbone trains on the same loss. The loss is not part of
   this module (models/losses.py owns it); this file only produces the interests [B, k, D].

The Transformer block is a pre-norm, Llama-like layer (the paper builds on the Llama block):
    h = x + Dropout(W_o · MultiHead(RMSNorm(x)))
    y = h + Dropout(W_2 · (SiLU(W_1 · RMSNorm(h)) ⊙ W_3 · RMSNorm(h)))     (SwiGLU feed-forward)
with a final RMSNorm on the outputs, no biases. Positions are learnt absolute embeddings of the
token slots (the paper's Llama block uses rotary embeddings; with the fixed, right-aligned token
layout below a learnt table per slot is the simpler equivalent, and it also encodes "how recent").
SASRec's post-LN `TransformerLayer` is not reused: KuaiFormer is not SASRec, and pre-norm is what
the Llama family (and so the paper) uses.

Schedule scaling (the harness's histories are max_len = 50 long by default, the paper's 256):
the configured schedule `compress_groups` = [[count, size], ...] (oldest segment first) and
`keep_recent` describe a reference span S0 = Σ count·size + keep_recent (256 for the paper's
values). A tower reading `max_len` items uses r = max_len / S0 and
    size' = max(1, round_half_up(size · r))      (group counts are kept)
    keep' = max_len - Σ count · size'            (the recent tail takes the rest, so the
                                                  schedule covers exactly max_len items)
so keep' is keep_recent · r up to the groups' rounding. Should the groups alone leave no room
for one recent item (tiny max_len, sizes clamped at 1), whole groups are dropped from the oldest
end until they do. For max_len = 256 this is the paper's schedule (2x64, 5x16, 48 recent: 55
history tokens); for max_len = 50 it is 2 groups of 13, 5 groups of 3 and 9 recent items (16
history tokens); for 100: 2x25, 5x6, 20 recent (27 tokens).

Layout of a request. Histories arrive left-aligned (oldest first, padding after, `user.mask`) and
of any width 0..max_len. They are right-aligned to the END of the schedule, so the newest item is
always the last recent slot; slots before the first real item are padding. A group with no real
item and an empty recent slot are masked out of the causal Transformer's attention (keys), so
padding never changes an output. The causal sequence is
    [start/profile token] [group tokens, oldest first] [recent item tokens] [q_1 .. q_k]
The first token is a learnt start vector plus the profile-field embeddings (`use_profile`); it is
always real, so even an empty history gives finite interests. History items are embedded by the
SHARED item tower plus an embedding of the scenario they happened in (`use_scenario`).

Choices where the paper leaves room:
- one compressor (its own 1-layer bidirectional block, same width as the main layers, and an
  RMSNorm before the pooling) per segment, with a learnt within-group position embedding, since
  the segments have different granularities;
- no token MLP over concatenated features: the shared item tower already sums id and side-feature
  embeddings into one vector;
- harness-scale sizes (2 layers, 2 heads, d = 64, inner 256, dropout 0.1) by default; the paper's
  production sizes do not fit a benchmark of this scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.dropout import Dropout, attention
from models.embeddings import context_embeddings
from models.inputs import UserInput
from models.item_tower import ItemTower


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def scale_schedule(groups: list[tuple[int, int]], keep_recent: int, max_len: int) -> tuple[list[tuple[int, int]], int]:
    """Fit a compression schedule written for S0 = Σ count·size + keep_recent items to `max_len` items.

    groups: [(count, size), ...] oldest segment first. Returns (groups', keep') with
    Σ count·size' + keep' == max_len exactly; see the module docstring for the rule.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    if keep_recent < 1 or any(c < 1 or s < 1 for c, s in groups):
        raise ValueError(f"compression schedule needs keep_recent >= 1 and positive [count, size] pairs, got "
                         f"{groups}, {keep_recent}")
    r = max_len / (sum(c * s for c, s in groups) + keep_recent)
    scaled = [[c, max(1, _round_half_up(s * r))] for c, s in groups]
    while scaled and sum(c * s for c, s in scaled) > max_len - 1:  # groups alone overfill: drop the oldest group
        scaled[0][0] -= 1
        if scaled[0][0] == 0:
            scaled.pop(0)
    return [(c, s) for c, s in scaled], max_len - sum(c * s for c, s in scaled)


class PreNormLayer(nn.Module):
    """One pre-norm Llama-like Transformer layer (RMSNorm, multi-head attention, SwiGLU, no biases)."""

    def __init__(self, dim: int, n_heads: int, inner_size: int, hidden_dropout: float, attn_dropout: float,
                 norm_eps: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hidden size {dim} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.attn_dropout = Dropout(attn_dropout)  # on the attention weights
        self.norm_attn = nn.RMSNorm(dim, eps=norm_eps)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.norm_ff = nn.RMSNorm(dim, eps=norm_eps)
        self.ff_gate = nn.Linear(dim, inner_size, bias=False)
        self.ff_up = nn.Linear(dim, inner_size, bias=False)
        self.ff_down = nn.Linear(inner_size, dim, bias=False)
        self.dropout = Dropout(hidden_dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        # x: [N, L, D]; attn_mask: [N, 1, L, L] bool, True = may attend (every row needs one True)
        n, length, dim = x.shape
        q, k, v = self.qkv(self.norm_attn(x)).view(n, length, 3, self.n_heads, dim // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x [N, H, L, Dh]
        a = attention(q, k, v, self.attn_dropout, attn_mask=attn_mask)  # [N, H, L, Dh]
        h = x + self.dropout(self.attn_out(a.transpose(1, 2).reshape(n, length, dim)))  # [N, L, D]
        f = self.norm_ff(h)
        return h + self.dropout(self.ff_down(F.silu(self.ff_gate(f)) * self.ff_up(f)))


class GroupCompressor(nn.Module):
    """Squeeze groups of `size` item tokens into one token each: 1-layer bidirectional block + mean over real items."""

    def __init__(self, size: int, dim: int, n_heads: int, inner_size: int, hidden_dropout: float, attn_dropout: float,
                 norm_eps: float) -> None:
        super().__init__()
        self.size = size
        self.positions = nn.Embedding(size, dim)  # order within a group, oldest first
        self.layer = PreNormLayer(dim, n_heads, inner_size, hidden_dropout, attn_dropout, norm_eps)
        self.norm = nn.RMSNorm(dim, eps=norm_eps)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, C*S, D] item tokens of C consecutive groups; real: [B, C*S] bool
        b, width, dim = x.shape
        c = width // self.size
        x = x.reshape(b * c, self.size, dim) + self.positions.weight[None]  # [B*C, S, D]
        m = real.reshape(b * c, self.size)  # [B*C, S]
        eye = torch.eye(self.size, dtype=torch.bool, device=x.device)
        # keys: the group's real items; a group with none attends to itself only (finite, then masked out)
        empty = ~m.any(dim=1)  # [B*C]
        attn = m[:, None, :] | (empty[:, None, None] & eye)  # [B*C, S, S]
        h = self.norm(self.layer(x, attn[:, None]))  # [B*C, S, D]
        w = m.to(h.dtype)[..., None]  # [B*C, S, 1]
        pooled = (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)  # [B*C, D]; 0 for an empty group
        return pooled.view(b, c, dim), (~empty).view(b, c)


class KuaiFormer(nn.Module):
    """Causal Transformer over [profile, compressed groups, recent items, k query tokens]: [B, k, D]."""

    def __init__(
        self,
        item_tower: ItemTower,
        profile_cardinalities: list[int],
        n_scenarios: int,
        n_interests: int = 6,
        n_layers: int = 2,
        n_heads: int = 2,
        inner_size: int = 256,
        hidden_dropout: float = 0.1,
        attn_dropout: float = 0.1,
        max_len: int = 50,
        compress_groups: list[list[int]] | None = None,
        keep_recent: int = 48,
        norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        use_profile: bool = True,
        use_scenario: bool = True,
        skip_empty_slots: bool = True,
    ) -> None:
        super().__init__()
        if n_interests < 1:
            raise ValueError(f"n_interests must be at least 1, got {n_interests}")
        dim = item_tower.dim
        groups = [(int(c), int(s)) for c, s in (compress_groups if compress_groups is not None else [[2, 64], [5, 16]])]
        self.item_tower = item_tower
        self.n_interests = int(n_interests)
        self.max_len = int(max_len)
        self.groups, self.keep_recent = scale_schedule(groups, int(keep_recent), self.max_len)
        self.span = sum(c * s for c, s in self.groups) + self.keep_recent  # history slots of the schedule
        self.n_group_tokens = sum(c for c, _ in self.groups)
        self.n_history_tokens = self.n_group_tokens + self.keep_recent
        self.n_tokens = 1 + self.n_history_tokens + self.n_interests  # start/profile + history + queries
        # leave out the schedule slots that no request of the batch fills (identical outputs, less work)
        self.skip_empty_slots = bool(skip_empty_slots)
        self._layouts: dict[tuple[tuple[int, ...], str], torch.Tensor] = {}  # token layouts already on a device

        self.scenarios, self.profile = context_embeddings(n_scenarios, profile_cardinalities, dim, use_scenario=use_scenario,
                                                          use_profile=use_profile, init_std=initializer_range)
        self.start = nn.Parameter(torch.randn(dim) * initializer_range)  # [D], the first token
        self.queries = nn.Parameter(torch.randn(self.n_interests, dim) * initializer_range)  # [k, D]
        self.positions = nn.Embedding(self.n_tokens, dim)  # one per token slot of the fixed layout
        self.compressors = nn.ModuleList(
            GroupCompressor(s, dim, n_heads, inner_size, hidden_dropout, attn_dropout, norm_eps) for _, s in self.groups
        )
        self.dropout = Dropout(hidden_dropout)
        self.layers = nn.ModuleList(
            PreNormLayer(dim, n_heads, inner_size, hidden_dropout, attn_dropout, norm_eps) for _ in range(n_layers)
        )
        self.norm_out = nn.RMSNorm(dim, eps=norm_eps)
        for module in [self.positions, self.scenarios, *self.compressors, *self.layers]:
            if module is None:
                continue
            for sub in module.modules():  # N(0, initializer_range) weights (RMSNorm scales stay 1)
                if isinstance(sub, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(sub.weight, std=initializer_range)

    # ------------------------------------------------------------------ schedule

    def token_count(self, length: int) -> int:
        """History tokens that hold a real item for a history of `length` items (groups + recent)."""
        length = min(max(int(length), 0), self.max_len)
        first = self.span - length  # slot of the oldest real item (right-aligned)
        count, end = min(length, self.keep_recent), 0
        for c, s in self.groups:
            for _ in range(c):
                end += s
                count += int(end > first)  # the group [end - s, end) holds a real item
        return count

    # ------------------------------------------------------------------ encoder

    def first_kept_slot(self, longest: int) -> int:
        """The first schedule slot a batch whose longest history has `longest` items needs: the start of
        the group holding its oldest real item, or that item's recent slot. Every slot before it is
        padding in every row, and its tokens are masked-out keys, so leaving them out of the sequence
        changes no output (up to float summation order)."""
        oldest = self.span - min(max(int(longest), 0), self.max_len)  # slot of the oldest real item
        end = 0
        for c, s in self.groups:
            for _ in range(c):
                if end + s > oldest:
                    return end
                end += s
        return oldest

    def history_tokens(self, user: UserInput) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """History tokens (compressed groups, oldest first, then recent items): [B, H, D], real [B, H], and
        each token's index in the full layout (H = n_history_tokens unless empty slots are skipped)."""
        b, width = user.items.shape
        if width > self.max_len:
            raise ValueError(f"history width {width} exceeds KuaiFormer max_len {self.max_len}")
        device = user.items.device
        lengths = user.mask.sum(dim=1)  # [B]
        # the batch's longest history is its width (UserInput's layout), read from the shape: no device sync; a
        # wider padded input only keeps more (empty, masked) slots
        first = self.first_kept_slot(width if b else 0) if self.skip_empty_slots else 0
        # right-align the left-aligned history to the schedule's end; one padding column keeps width >= 1
        tabs = F.pad(user.tabs, (0, 1))  # [B, W+1]
        mask = F.pad(user.mask, (0, 1))
        slots = torch.arange(first, self.span, device=device)  # [S] the slots kept
        src = slots[None] - (self.span - lengths)[:, None]  # [B, S] source column
        real = (src >= 0) & (src < lengths[:, None])
        src = torch.where(real, src, width).clamp(0, width)  # padding slots read the padding column
        real = real & mask.gather(1, src)
        if user.item_vectors is None:
            items = F.pad(user.items, (0, 1)).gather(1, src)  # [B, S]
            x = self.item_tower(items)  # [B, S, D]
        else:  # vectors computed once per step for every tower; padding slots read a zero vector (masked anyway)
            vectors = F.pad(user.item_vectors, (0, 0, 0, 1))  # [B, W+1, D]
            x = vectors.gather(1, src[..., None].expand(-1, -1, vectors.shape[-1]))  # [B, S, D]
        if self.scenarios is not None:
            x = x + self.scenarios(tabs.gather(1, src))

        tokens, valid, index = [], [], []
        slot, token = 0, 1  # schedule slot where the segment starts; layout index of its first token
        for (c, s), compressor in zip(self.groups, self.compressors):
            end = slot + c * s
            if end > first:  # some group of this segment is kept (`first` is a group boundary here)
                skipped = max(0, first - slot) // s  # its leading groups that are padding in every row
                lo, hi = slot + skipped * s - first, end - first
                t, v = compressor(x[:, lo:hi], real[:, lo:hi])  # [B, c', D], [B, c']
                tokens.append(t)
                valid.append(v)
                index.extend(range(token + skipped, token + c))
            slot, token = end, token + c
        lo = max(slot, first) - first
        tokens.append(x[:, lo:])  # [B, keep', D] recent items as they are
        valid.append(real[:, lo:])
        index.extend(range(token + max(0, first - slot), token + self.keep_recent))
        return torch.cat(tokens, dim=1), torch.cat(valid, dim=1), index  # [B, H, D], [B, H], H

    def encode(self, user: UserInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal Transformer outputs at every token [B, T, D] and which tokens are real [B, T] (T = n_tokens,
        or fewer when the batch leaves schedule slots empty and skip_empty_slots is on)."""
        hist, hist_valid, index = self.history_tokens(user)  # [B, H, D], [B, H]
        b = hist.shape[0]
        first = self.start.expand(b, -1)  # [B, D]
        if self.profile is not None:
            first = first + self.profile(user.profile)
        queries = self.queries.expand(b, -1, -1)  # [B, k, D]
        x = torch.cat([first[:, None], hist, queries], dim=1)  # [B, T, D]
        valid = torch.cat([hist_valid.new_ones(b, 1), hist_valid, hist_valid.new_ones(b, self.n_interests)], dim=1)  # [B, T]
        n_tokens = x.shape[1]
        if n_tokens == self.n_tokens:
            x = self.dropout(x + self.positions.weight[None])
        else:
            x = self.dropout(x + self.positions(self._layout(index, x.device))[None])
        causal = torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=x.device).tril()  # [T, T]
        attn = (causal[None] & valid[:, None, :])[:, None]  # [B, 1, T, T]; token 0 is always a real key
        for layer in self.layers:
            x = layer(x, attn)
        return self.norm_out(x), valid

    def _layout(self, index: list[int], device: torch.device) -> torch.Tensor:
        """[T] long: each token's slot in the full layout (the first token, the kept history tokens `index`, the
        queries), made once per distinct layout and device and then reused, so a step copies nothing to the device."""
        layout = (0, *index, *range(self.n_tokens - self.n_interests, self.n_tokens))
        key = (layout, str(device))
        if key not in self._layouts:
            self._layouts[key] = torch.tensor(layout, device=device)
        return self._layouts[key]

    def forward(self, user: UserInput) -> torch.Tensor:
        out, _ = self.encode(user)  # [B, T, D]
        return out[:, -self.n_interests :]  # [B, k, D], the interests u_1..u_k
