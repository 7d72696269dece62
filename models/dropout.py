"""Dropout whose masks are cut from 16-bit random integers, and attention that uses it.

torch's CPU dropout draws one Bernoulli sample per element through its Mersenne Twister, one
64-bit draw at a time: on a Pure-sized SASRec IncRec step that was 36% of the step (torch.profiler,
docs/train_step_profile.md). Here one 64-bit draw gives four 16-bit integers r, and an element is
kept where r >= t, t = round(p · 2^16) - 2^15, so P(drop) = p' = round(p · 2^16) / 2^16 (p itself
for every p that is a multiple of 2^-16, 0.5 included; within 2^-17 of p otherwise) and kept
elements are scaled by 1 / (1 - p'), which keeps E[output] = input exactly. The masks come from
torch's global generator, so `torch.manual_seed` makes them reproducible; they are a different
random stream from `nn.Dropout`'s.

`sampler` selects the implementation per module: "bits" (the above; the harness's training default,
set by bench.engine.levers), "torch" (nn.Dropout and the attention dropout inside
F.scaled_dot_product_attention: a module's default, and the reference path). On CUDA devices "bits"
falls back to torch's own kernels, which draw masks in parallel already.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch import nn

SAMPLERS = ("bits", "torch")
_LEVELS = 1 << 16


def bits_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A dropout mask of `shape`: 0 with probability p' (module docstring), 1 / (1 - p') otherwise."""
    n = math.prod(shape)
    dropped = round(p * _LEVELS)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)  # [ceil(n/4)]
    r = words.view(torch.int16)[:n].view(shape)  # uniform on [-2^15, 2^15)
    keep = r >= dropped - _LEVELS // 2
    return keep.to(dtype).mul_(_LEVELS / (_LEVELS - dropped))


def dropout(x: torch.Tensor, p: float, training: bool, sampler: str = "bits") -> torch.Tensor:
    """Inverted dropout of x with drop probability p (see the module docstring for `sampler`)."""
    if not training or p == 0.0:
        return x
    if sampler == "torch" or x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    if p >= 1.0:
        return x * 0.0
    return x * bits_mask(x.shape, p, x.dtype, x.device)


class Dropout(nn.Module):
    """nn.Dropout with a selectable mask sampler (`sampler`, set per model by `set_sampler`)."""

    def __init__(self, p: float = 0.5, sampler: str = "torch") -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)
        self.sampler = sampler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.sampler)

    def extra_repr(self) -> str:
        return f"p={self.p}, sampler={self.sampler}"


def set_sampler(model: nn.Module, sampler: str) -> None:
    """Use `sampler` ("bits" | "torch") in every Dropout of `model` (attention dropout included)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"dropout sampler {sampler!r}; choose one of {list(SAMPLERS)}")
    for module in model.modules():
        if isinstance(module, Dropout):
            module.sampler = sampler


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: Dropout,
              attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
    """Scaled dot-product attention softmax(q kᵀ / √d + mask) v with dropout `drop` on the weights.

    q, k, v: [N, H, L, Dh]; attn_mask: [N, 1, L, L] bool, True = may attend (or None); is_causal: a
    position attends to itself and earlier ones. Without training-time dropout, or with the "torch"
    sampler, this is F.scaled_dot_product_attention itself (its dropout then draws torch's masks);
    otherwise the weights are computed explicitly and dropped with `drop`, the softmax in float32
    (CPU autocast would otherwise run it in bf16; torch's fused kernels accumulate in float32 too).
    """
    p = drop.p if drop.training else 0.0
    if p == 0.0 or drop.sampler == "torch" or q.device.type != "cpu":
        if q.device.type == "cuda" and torch.are_deterministic_algorithms_enabled():
            # the memory-efficient CUDA kernel's backward stays nondeterministic under warn_only=True; the math kernel
            # is deterministic (what a deterministic job asks for, at some speed)
            with sdpa_kernel([SDPBackend.MATH]):
                return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=p)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, dropout_p=p)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))  # [N, H, L, L]
    if is_causal:
        length = q.shape[-2]
        attn_mask = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32)  # [N, H, L, L]; float32 also under bf16 autocast
    return drop(weights) @ v  # [N, H, L, Dh]
