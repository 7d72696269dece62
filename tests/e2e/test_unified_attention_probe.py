"""docs/unified_attention_probe.py, the diagnostic behind docs/unified_collapse_synthetic.md: the weights it
recomputes are the ones `unified`'s attention uses, and what it records says where they go."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from bench.config import PROJECT_ROOT
from models.backbones.unified import ScenarioBiasedAttention

B, L, D, H, S = 3, 5, 8, 2, 3  # requests, tokens (the start token first), width, heads, scenarios


def _probe():
    spec = importlib.util.spec_from_file_location("unified_attention_probe",
                                                  PROJECT_ROOT / "docs" / "unified_attention_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the run itself sits under `if __name__ == "__main__"`
    return module


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(B, L, D)  # [B, L, D]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)  # [B, L]
    scen = torch.randint(0, S, (B, L))  # [B, L]
    scen[:, 0] = S  # the start token's own row of the bias
    return x, mask, scen


def _attention() -> ScenarioBiasedAttention:
    torch.manual_seed(1)
    att = ScenarioBiasedAttention(D, H, S + 1, dropout=0.0, scenario_bias=True).eval()
    with torch.no_grad():
        att.bias.normal_()  # a non-zero bias, so that its path counts in the comparison
    return att


def test_recomputed_weights_give_the_modules_own_output() -> None:
    probe, att = _probe(), _attention()
    x, mask, scen = _inputs()
    w = probe.attention_weights(att, x, x, mask, scen, scen)  # [B, H, L, L]
    assert torch.allclose(w.sum(-1), torch.ones(B, H, L))
    assert float(w.detach().masked_select(~mask[:, None, None, :].expand_as(w)).abs().max()) == 0.0  # padding gets none
    _, v = att.kv(x).view(B, L, 2, H, D // H).permute(2, 0, 3, 1, 4)  # [B, H, L, Dh]
    expected = att.out((w @ v).transpose(1, 2).reshape(B, L, D))  # [B, L, D]
    assert torch.allclose(att(x, x, mask, scen, scen), expected, atol=1e-6)


@pytest.mark.parametrize("bias_to_start, sink", [(0.0, False), (30.0, True)])
def test_a_bias_toward_the_start_column_shows_as_a_sink(bias_to_start: float, sink: bool, tmp_path: Path) -> None:
    probe, att = _probe(), _attention()
    with torch.no_grad():
        att.bias.zero_()
        att.bias[:, :, -1] = bias_to_start  # every query scenario toward the start token's column
    x, mask, scen = _inputs()
    probe.CALLS.clear()
    out = probe.recording_forward(att, x, x, mask, scen, scen)
    assert torch.equal(out, att(x, x, mask, scen, scen))  # recording changes nothing
    rec = probe.CALLS[-1]
    assert rec["kind"] == "attention" and not rec["read_out"] and rec["rows"] == B
    assert (rec["on_start"] > 0.99) is sink and (rec["start_on_start"] > 0.99) is sink
    assert rec["bias_to_start"] == pytest.approx(bias_to_start)
    assert rec["uniform"] == pytest.approx((1 / 5 + 1 / 3 + 1 / 1) / 3)
    att.train()
    probe.recording_forward(att, x, x, mask, scen, scen)
    assert len(probe.CALLS) == 1  # training steps are not recorded


def test_summary_reads_epoch_one_and_the_selected_pass(tmp_path: Path) -> None:
    def one_pass(on_start: float) -> list[dict]:
        return [{"kind": "attention", "read_out": False, "uniform": 0.1, "on_start": on_start, "start_on_start": 0.5,
                 "branch_over_stream": 2.0},
                {"kind": "attention", "read_out": True, "uniform": 0.1, "on_start": 0.1, "max_weight": 0.2},
                {"kind": "output", "rows": 4, "spread": 0.3, "interest_cosine": 0.9}]
    calls = one_pass(0.25) + one_pass(0.5) + one_pass(0.75) + one_pass(0.95)  # 2 epochs, selected valid, test
    path = tmp_path / "calls.json"
    path.write_text(json.dumps(calls))
    text = _probe().summary(str(path))
    assert "2 epochs validated" in text
    assert "epoch 1, mixing layer 0: on the start token 0.250" in text
    assert "selected, mixing layer 0: on the start token 0.750" in text and "0.950" not in text
