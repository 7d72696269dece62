"""Tests of models.recbole_compat and of our SASRec encoder against RecBole's TransformerEncoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models import recbole_compat as rc
from models.backbones.sasrec import TransformerLayer

ROOT = Path(__file__).resolve().parents[3]  # tests/unit/models/ -> the repository


# ---------------------------------------------------------------- numpy aliases


def test_patch_numpy_restores_aliases():
    rc.patch_numpy()
    assert np.bool8 is np.bool_
    assert np.float_ is np.float64
    assert np.array([1.5], dtype=np.float_).dtype == np.float64
    assert rc.patch_numpy() == []  # idempotent: nothing left to add


# ---------------------------------------------------------------- anomaly detection (fresh interpreters)

_PROBE = """
import json, sys
import numpy as np, torch
from models import recbole_compat as rc
state = {"float_before": "float_" in np.__dict__}
if sys.argv[1] == "direct":
    state["added"] = rc.patch_numpy()
    import recbole.model.sequential_recommender  # noqa: F401
else:
    rc.recbole_sasrec()
state["anomaly"] = torch.is_anomaly_enabled()
print(json.dumps(state))
"""


@pytest.fixture(scope="module")
def probes() -> dict[str, dict]:
    """Import RecBole's sequential models directly and through the compat layer, each in a fresh process."""
    procs = {
        how: subprocess.Popen([sys.executable, "-W", "ignore", "-c", _PROBE, how], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for how in ("direct", "compat")
    }
    out = {}
    for how, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        out[how] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_direct_import_turns_anomaly_detection_on(probes):
    # the control: without the compat layer RecBole leaves anomaly detection on
    assert probes["direct"]["anomaly"] is True


def test_compat_import_leaves_anomaly_detection_off(probes):
    assert probes["compat"]["anomaly"] is False


@pytest.mark.parametrize("before", [False, True])
def test_import_puts_anomaly_detection_back(tmp_path, monkeypatch, before):
    """A module that switches anomaly detection on at import (as sine.py does) leaves it as it was."""
    (tmp_path / "_switches_anomaly_on.py").write_text("import torch\ntorch.autograd.set_detect_anomaly(True)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "_switches_anomaly_on", raising=False)
    torch.autograd.set_detect_anomaly(before)
    try:
        rc._import("_switches_anomaly_on")
        assert "_switches_anomaly_on" in sys.modules
        assert torch.is_anomaly_enabled() is before
    finally:
        torch.autograd.set_detect_anomaly(False)


def test_fresh_numpy_lacks_aliases_until_patched(probes):
    assert probes["direct"]["float_before"] is False
    assert {"bool8", "float_"} <= set(probes["direct"]["added"])


def test_in_process_sasrec_import():
    sasrec = rc.recbole_sasrec()
    assert sasrec.__name__ == "SASRec" and sasrec.__module__ == "recbole.model.sequential_recommender.sasrec"
    assert not torch.is_anomaly_enabled()


# ---------------------------------------------------------------- checkpoints

UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Trap:
    """Unpickling this calls _record: evidence that a file was unpickled with weights_only=False."""

    def __reduce__(self):
        return (_record, ("trap",))


class Thing:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thing) and other.value == self.value


@pytest.fixture
def clean_trap():
    UNPICKLED.clear()
    yield UNPICKLED
    UNPICKLED.clear()


def test_state_dict_round_trip(tmp_path):
    state = torch.nn.Linear(4, 3).state_dict()
    path = rc.save_checkpoint(state, tmp_path / "model.pt")
    assert Path(f"{path}.sha256").read_text().strip() == rc._digest(path)
    loaded = rc.load_checkpoint(path)
    assert loaded.keys() == state.keys()
    for key in state:
        assert torch.equal(loaded[key], state[key])


def test_pure_tensor_file_needs_no_sidecar(tmp_path):
    # weights_only loading cannot run code, so a foreign tensor file is fine
    torch.save({"w": torch.arange(3.0)}, tmp_path / "foreign.pt")
    assert torch.equal(rc.load_checkpoint(tmp_path / "foreign.pt")["w"], torch.arange(3.0))


def test_object_round_trip(tmp_path):
    obj = {"state": {"w": torch.ones(2, 2)}, "thing": Thing(7), "seen": {3, 1, 2}, "config": {"lr": 1e-3}}
    path = rc.save_checkpoint(obj, tmp_path / "full.pth")
    with pytest.raises(Exception):  # really needs the pickle path
        torch.load(path, weights_only=True)
    loaded = rc.load_checkpoint(path)
    assert loaded["thing"] == Thing(7) and loaded["seen"] == {1, 2, 3} and loaded["config"] == {"lr": 1e-3}
    assert torch.equal(loaded["state"]["w"], torch.ones(2, 2))


def test_trap_works_as_evidence(tmp_path, clean_trap):
    torch.save({"t": Trap()}, tmp_path / "x.pt")
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert clean_trap == ["trap"]


def test_refuses_file_without_sidecar(tmp_path, clean_trap):
    torch.save({"t": Trap()}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="refusing"):
        rc.load_checkpoint(tmp_path / "foreign.pt")
    assert clean_trap == []


def test_refuses_replaced_file(tmp_path, clean_trap):
    path = rc.save_checkpoint({"thing": Thing(1)}, tmp_path / "ckpt.pt")
    torch.save({"t": Trap()}, path)  # replaced after saving; the sidecar is stale
    with pytest.raises(ValueError, match="refusing"):
        rc.load_checkpoint(path)
    assert clean_trap == []


def test_refuses_modified_bytes(tmp_path):
    path = rc.save_checkpoint({"thing": Thing(1)}, tmp_path / "ckpt.pt")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="refusing"):
        rc.load_checkpoint(path)


def test_refuses_sidecar_of_another_file(tmp_path, clean_trap):
    good = rc.save_checkpoint({"thing": Thing(1)}, tmp_path / "good.pt")
    torch.save({"t": Trap()}, tmp_path / "bad.pt")
    Path(f"{tmp_path / 'bad.pt'}.sha256").write_text(Path(f"{good}.sha256").read_text())
    with pytest.raises(ValueError, match="refusing"):
        rc.load_checkpoint(tmp_path / "bad.pt")
    assert clean_trap == []


# ---------------------------------------------------------------- our Transformer == RecBole's

N_LAYERS, N_HEADS, DIM, INNER, EPS = 2, 2, 64, 256, 1e-12


def _recbole_encoder() -> torch.nn.Module:
    enc = rc.recbole_layers().TransformerEncoder(
        n_layers=N_LAYERS, n_heads=N_HEADS, hidden_size=DIM, inner_size=INNER, hidden_dropout_prob=0.5,
        attn_dropout_prob=0.5, hidden_act="gelu", layer_norm_eps=EPS)
    with torch.no_grad():  # non-trivial LayerNorm parameters and biases, so every copy matters
        for p in enc.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return enc.eval()


def _copy_into_ours(enc: torch.nn.Module) -> torch.nn.ModuleList:
    ours = torch.nn.ModuleList(TransformerLayer(DIM, N_HEADS, INNER, 0.5, 0.5, EPS) for _ in range(N_LAYERS))
    with torch.no_grad():
        for mine, theirs in zip(ours, enc.layer):
            att, ff = theirs.multi_head_attention, theirs.feed_forward
            mine.qkv.weight.copy_(torch.cat([att.query.weight, att.key.weight, att.value.weight], dim=0))
            mine.qkv.bias.copy_(torch.cat([att.query.bias, att.key.bias, att.value.bias], dim=0))
            pairs = [(mine.attn_out, att.dense), (mine.ln_attn, att.LayerNorm), (mine.ff_in, ff.dense_1),
                     (mine.ff_out, ff.dense_2), (mine.ln_ff, ff.LayerNorm)]
            for a, b in pairs:
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in enc.parameters())
    return ours.eval()


def _run_ours(layers: torch.nn.ModuleList, x: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
    outs = []
    for layer in layers:
        x = layer(x, mask)
        outs.append(x)
    return outs


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    enc = _recbole_encoder()
    return enc, _copy_into_ours(enc)


def _masks(lengths: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal mask over left-aligned histories, padding keys blocked: (ours bool, RecBole additive)."""
    real = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # [B, L]
    allowed = torch.tril(real[:, None, None, :].expand(-1, 1, length, -1))  # [B, 1, L, L]
    return allowed, torch.where(allowed, 0.0, -10000.0)


@pytest.mark.parametrize("lengths", [[9, 9, 9], [9, 4, 1]])
def test_encoder_matches_recbole(pair, lengths):
    enc, ours = pair
    torch.manual_seed(1)
    x = torch.randn(len(lengths), 9, DIM)
    ours_mask, their_mask = _masks(lengths, 9)
    with torch.no_grad():
        theirs = enc(x, their_mask, output_all_encoded_layers=True)
        mine = _run_ours(ours, x, ours_mask)
    assert len(theirs) == len(mine) == N_LAYERS
    for a, b in zip(mine, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (theirs[-1] - x).abs().max() > 0.1  # the layers did something


def test_implicit_causal_mask_matches_recbole(pair):
    enc, ours = pair
    torch.manual_seed(2)
    x = torch.randn(2, 6, DIM)
    _, their_mask = _masks([6, 6], 6)
    with torch.no_grad():
        torch.testing.assert_close(_run_ours(ours, x, None)[-1], enc(x, their_mask)[-1], atol=1e-5, rtol=1e-5)


def test_comparison_is_sensitive(pair):
    """Guard: a wrong mask or swapped q/k gives a visibly different result, so 1e-5 is a real check."""
    enc, ours = pair
    torch.manual_seed(3)
    x = torch.randn(2, 6, DIM)
    allowed, their_mask = _masks([6, 6], 6)
    with torch.no_grad():
        theirs = enc(x, their_mask)[-1]
        full = torch.ones_like(allowed)
        assert (_run_ours(ours, x, full)[-1] - theirs).abs().max() > 1e-3
        swapped = _copy_into_ours(enc)
        w = swapped[0].qkv.weight
        w.copy_(torch.cat([w[DIM:2 * DIM], w[:DIM], w[2 * DIM:]]))
        assert (_run_ours(swapped, x, allowed)[-1] - theirs).abs().max() > 1e-3
