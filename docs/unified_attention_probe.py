"""Diagnostic for docs/unified_collapse_synthetic.md: where `unified`'s attention goes.

    python docs/unified_attention_probe.py OUT.json BENCH_OVERRIDES...   # one run, weights recorded
    python docs/unified_attention_probe.py --summary OUT.json            # one line per layer

Runs `python -m bench BENCH_OVERRIDES...` in this process with every ScenarioBiasedAttention call made
in eval mode (the validation ranking after each epoch, then the selected model's validation and test
rankings) recorded: how much attention lands on the start token (key 0), against the uniform share
1 / (number of real keys), and the learnt scenario-pair bias toward the start token's column. Nothing
in bench/ or models/ changes; the weights are recomputed from the module's own parameters.
"""

from __future__ import annotations

import atexit
import json
import math
import sys

import torch
import torch.nn.functional as F

import models.backbones.unified as unified

CALLS: list[dict] = []
_forward = unified.ScenarioBiasedAttention.forward
_tower_forward = unified.UnifiedTower.forward
_mixing_forward = unified.MixingLayer.forward
_STREAM: list[torch.Tensor] = []  # the residual stream [B, L, D] of the mixing layer running now


def attention_weights(module: unified.ScenarioBiasedAttention, x: torch.Tensor, memory: torch.Tensor,
                      key_mask: torch.Tensor, q_scen: torch.Tensor | None, k_scen: torch.Tensor | None) -> torch.Tensor:
    """softmax(q kᵀ / √d_h + b[h, s_q, s_k] + mask), as the module computes it: [B, H, Q, L]."""
    b, nq, dim = x.shape
    h, dh = module.n_heads, dim // module.n_heads
    q = module.q(x).view(b, nq, h, dh).transpose(1, 2)  # [B, H, Q, Dh]
    k, _ = module.kv(memory).view(b, -1, 2, h, dh).permute(2, 0, 3, 1, 4)  # [B, H, L, Dh]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(dh)  # [B, H, Q, L]
    if module.bias is not None and q_scen is not None and k_scen is not None:
        scores = scores + module.bias[:, q_scen[:, :, None], k_scen[:, None, :]].permute(1, 0, 2, 3)
    scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1, dtype=torch.float32)


def recording_forward(self, x, memory, key_mask, q_scen=None, k_scen=None):
    out = _forward(self, x, memory, key_mask, q_scen, k_scen)
    if self.training:
        return out
    with torch.no_grad():
        w = attention_weights(self, x, memory, key_mask, q_scen, k_scen)  # [B, H, Q, L]
        rec: dict = {"kind": "attention", "rows": int(x.shape[0]), "read_out": x is not memory,
                     "uniform": float((1.0 / key_mask.sum(1).float()).mean())}
        if x is not memory:  # the read-out: the interest queries over the mixed tokens
            rec["on_start"] = float(w[..., 0].mean())
            rec["max_weight"] = float(w.max(-1).values.mean())
        else:  # a mixing layer: the start token's row and the history tokens' rows
            history = key_mask[:, 1:].float()  # [B, L]
            rec["start_on_start"] = float(w[:, :, 0, 0].mean())
            rec["on_start"] = float((w[:, :, 1:, 0].mean(1) * history).sum() / history.sum().clamp(min=1))
            if _STREAM:  # how large the attention branch is against the stream it is added to (mean norms)
                rec["branch_over_stream"] = float(out.norm(dim=-1)[key_mask].mean()
                                                  / _STREAM[-1].norm(dim=-1)[key_mask].mean())
        if self.bias is not None:  # [H, S + 1, S + 1]; the last column is the start token's
            bias = self.bias.detach().float()
            rec["bias_to_start"] = float(bias[:, :-1, -1].mean())
            rec["bias_to_history"] = float(bias[:, :-1, :-1].mean())
        CALLS.append(rec)
    return out


def recording_mixing_forward(self, x, mask, scen):
    """MixingLayer.forward itself, with its input (the residual stream) kept for the attention call inside it."""
    if not self.training:
        _STREAM.append(x)
    try:
        return _mixing_forward(self, x, mask, scen)
    finally:
        if not self.training:
            _STREAM.pop()


def recording_tower_forward(self, user):
    """UnifiedTower.forward, recording how much its interests [B, K, D] differ between the batch's requests:
    the mean distance to the batch's mean interest, over the mean norm (0 = the same vectors for everyone), and how
    alike one request's interests are (mean cosine between its K interests; 1 = one interest K times)."""
    out = _tower_forward(self, user)
    if not self.training:
        with torch.no_grad():
            spread = (out - out.mean(0, keepdim=True)).norm(dim=-1).mean() / out.norm(dim=-1).mean()
            unit = F.normalize(out.float(), dim=-1)  # [B, K, D]
            k = out.shape[1]
            cosine = ((unit @ unit.transpose(1, 2)).sum(dim=(1, 2)) - k) / max(k * (k - 1), 1)  # [B]
            CALLS.append({"kind": "output", "rows": int(out.shape[0]), "spread": float(spread),
                          "interest_cosine": float(cosine.mean())})
    return out


def summary(path: str) -> str:
    """Epoch 1's validation pass and the selected model's (the second-last pass), one line per module; assumes
    the ranker scores each pass in one batch, as it does for the synthetic validation and test requests."""
    calls = json.load(open(path))
    passes, current = [], []
    for c in calls:  # a tower call ends with its output record
        current.append(c)
        if c["kind"] == "output":
            passes.append(current)
            current = []
    lines = [f"{path}: {len(passes) - 2} epochs validated, then the selected model's validation and test passes"]
    for name, records in (("epoch 1", passes[0]), ("selected", passes[-2])):
        attention = [c for c in records if c["kind"] == "attention"]
        for j, c in enumerate(attention):
            what = "read-out" if c["read_out"] else f"mixing layer {j}"
            text = f"  {name}, {what}: on the start token {c['on_start']:.3f} (uniform {c['uniform']:.3f})"
            if "start_on_start" in c:
                text += (f", the start token on itself {c['start_on_start']:.3f}"
                         f", branch / stream {c['branch_over_stream']:.2f}")
            if "max_weight" in c:
                text += f", mean largest weight {c['max_weight']:.3f}"
            if "bias_to_start" in c:
                text += f", bias toward start {c['bias_to_start']:+.2f} (toward history {c['bias_to_history']:+.2f})"
            lines.append(text)
        out = records[-1]
        lines.append(f"  {name}, interests: spread between requests {out['spread']:.3f}, "
                     f"mean cosine between a request's interests {out['interest_cosine']:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        print(summary(sys.argv[2]))
        sys.exit(0)
    out_path = sys.argv[1]
    unified.ScenarioBiasedAttention.forward = recording_forward
    unified.MixingLayer.forward = recording_mixing_forward
    unified.UnifiedTower.forward = recording_tower_forward
    atexit.register(lambda: json.dump(CALLS, open(out_path, "w")))
    from bench.__main__ import main

    sys.argv = ["bench", *sys.argv[2:]]
    main()
