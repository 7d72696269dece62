"""The training-speed levers (bench.engine.levers, models.dropout, IncRec._item_vectors, KuaiFormer's
empty-slot skipping): each computes what the reference path computes, or says how it differs."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.engine import levers as train_levers
from bench.errors import ConfigError
from bench.config.schema import Train, train_settings
from bench.engine.build import build_model, variant_from_config
from bench.engine.train import train
from bench.engine.levers import REFERENCE, Levers, apply_levers, resolve_precision
from bench.pipeline.validate import validate
from models.dropout import Dropout, attention, bits_mask, dropout, set_sampler
from tests.conftest import compose_config
from tests.unit.models.test_backbone_kuaiformer import make_tower, make_user

CPU = torch.device("cpu")


# ---------------------------------------------------------------- dropout masks from 16-bit integers


@pytest.mark.parametrize("p", [0.5, 0.1, 0.25, 0.9])
def test_bits_mask_drops_p_and_keeps_the_expectation(p: float) -> None:
    torch.manual_seed(0)
    mask = bits_mask((1000, 1000), p, torch.float32, CPU)
    dropped = round(p * 65536) / 65536  # the drop probability actually used
    assert abs(dropped - p) <= 2**-17
    values = torch.unique(mask).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - dropped))
    share = float((mask == 0).float().mean())
    assert abs(share - dropped) < 5 * (dropped * (1 - dropped) / 1e6) ** 0.5  # five standard errors
    assert abs(float(mask.mean()) - 1.0) < 5 * ((dropped / (1 - dropped)) / 1e6) ** 0.5


def test_bits_mask_is_reproducible_and_uses_every_16_bit_word() -> None:
    torch.manual_seed(3)
    a = bits_mask((7, 13), 0.5, torch.float32, CPU)
    torch.manual_seed(3)
    b = bits_mask((7, 13), 0.5, torch.float32, CPU)
    assert torch.equal(a, b)
    # every one of the four 16-bit words of a draw is uniform (the top word too): drop share 1/2 each
    torch.manual_seed(0)
    mask = bits_mask((250_000, 4), 0.5, torch.float32, CPU)
    shares = (mask == 0).float().mean(dim=0)
    assert torch.all((shares - 0.5).abs() < 0.005), shares


def test_dropout_edge_cases_and_samplers() -> None:
    x = torch.randn(4, 5)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True, sampler="bits"), torch.zeros_like(x))
    torch.manual_seed(1)
    ref = F.dropout(x, 0.3, training=True)
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.3, training=True, sampler="torch"), ref)  # the reference path is nn.Dropout
    module = Dropout(0.3)
    assert module.sampler == "torch"  # a module's default; the harness's training sets bits
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="dropout sampler"):
        set_sampler(module, "philox")
    x.requires_grad_(True)
    torch.manual_seed(2)
    y = dropout(x, 0.5, training=True, sampler="bits")
    y.sum().backward()
    assert torch.equal(x.grad, (y.detach() != 0).float() * 2.0)  # gradient through the kept elements, scaled


@pytest.mark.parametrize("causal", [True, False])
def test_explicit_attention_equals_sdpa(causal: bool) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8)
    mask = None if causal else torch.rand(3, 1, 6, 6) > 0.3
    if mask is not None:
        mask[..., 0] = True  # every query has a key
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    drop = Dropout(1e-9, sampler="bits").train()  # a drop probability that rounds to 0: the explicit path, no drop
    out = attention(q, k, v, drop, attn_mask=mask, is_causal=causal)
    assert torch.allclose(out, expected, atol=1e-6)
    torch.manual_seed(5)
    dropped = attention(q, k, v, Dropout(0.5, sampler="bits").train(), attn_mask=mask, is_causal=causal)
    assert dropped.shape == expected.shape and torch.isfinite(dropped).all() and not torch.allclose(dropped, expected)
    assert torch.equal(attention(q, k, v, Dropout(0.5, sampler="bits").eval(), attn_mask=mask, is_causal=causal),
                       expected)  # evaluation: no dropout, SDPA itself


# ---------------------------------------------------------------- precision


def test_precision_resolution(monkeypatch) -> None:
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"
    monkeypatch.setattr(train_levers, "native_bf16_cpu", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr(train_levers, "native_bf16_cpu", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"  # emulated bf16 is slower than fp32: auto keeps fp32
    with pytest.raises(ValueError, match="train.precision"):
        resolve_precision("fp16", CPU)


def test_config_refuses_unknown_lever_values() -> None:
    for override, key in [("train.precision=fp16", "train.precision"), ("train.dropout_sampler=mkl", "train.dropout_sampler")]:
        with pytest.raises(ConfigError, match=key):
            validate(compose_config(override))
    reference = compose_config("train.precision=fp32", "train.dropout_sampler=torch", "train.item_vectors_once=false",
                               "train.compile=false")
    assert train_settings(reference).levers == REFERENCE
    assert train_settings(compose_config()).levers == Levers()  # the defaults: auto, bits, once, no compile


# ---------------------------------------------------------------- the loss under each lever


def _loss_and_grads(tiny_sasrec, levers: Levers, seed: int = 0):
    cfg, ds, _, batch = tiny_sasrec
    model = build_model(cfg, ds, variant_from_config(cfg.increc), seed).train()
    applied = apply_levers(model, levers, CPU)
    torch.manual_seed(11)
    parts = model.loss(batch)
    parts["total"].backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    return {k: float(v) for k, v in parts.items()}, grads, applied


def test_item_vectors_once_gives_the_same_loss_in_fp32(tiny_sasrec) -> None:
    """One item-tower call per step (histories for every tower, negatives, targets, RTG, exposures) computes the
    same loss as one call per use, and the same gradients up to summation order."""
    per_use, grads_per_use, _ = _loss_and_grads(tiny_sasrec, REFERENCE)
    once, grads_once, applied = _loss_and_grads(tiny_sasrec, Levers(precision="fp32", dropout_sampler="torch",
                                                                    item_vectors_once=True))
    assert applied["item_vectors_once"] and set(per_use) == {"basic", "align", "incremental", "total"}
    assert once == per_use  # identical values
    assert grads_once.keys() == grads_per_use.keys()
    for name, g in grads_per_use.items():
        assert torch.allclose(grads_once[name], g, atol=1e-5 * float(g.abs().max()), rtol=0), name  # float32 sums


def test_bf16_autocast_runs_the_towers_in_bf16_and_the_loss_in_fp32(tiny_sasrec) -> None:
    cfg, ds, _, batch = tiny_sasrec
    fp32, _, _ = _loss_and_grads(tiny_sasrec, REFERENCE)
    bf16, grads, applied = _loss_and_grads(tiny_sasrec, Levers(precision="bf16", dropout_sampler="torch",
                                                                item_vectors_once=False))
    assert applied["precision"] == "bf16"
    assert all(np.isfinite(v) for v in bf16.values())
    assert abs(bf16["total"] - fp32["total"]) < 0.02 * abs(fp32["total"])  # bf16 matmuls: close, not equal
    assert bf16 != fp32
    assert all(g.dtype == torch.float32 for g in grads.values())  # fp32 master weights and gradients
    model = build_model(cfg, ds, variant_from_config(cfg.increc), 0).eval()
    apply_levers(model, Levers(precision="bf16"), CPU)
    with torch.no_grad():
        assert model.serve(batch.user).dtype == torch.float32  # serving (validation, test) is not autocast


def test_training_records_the_levers_and_reproduces(tiny_sasrec) -> None:
    cfg, ds, ts, _ = tiny_sasrec
    tc = Train(epochs=1, batch_size=64, n_negatives=64, progress=False, max_batches=2, early_stopping=False,
               precision="bf16", dropout_sampler="bits")
    runs = []
    for _ in range(2):
        model = build_model(cfg, ds, variant_from_config(cfg.increc), 0)
        history = train(model, ts, tc, 0, CPU, "t")
        runs.append((history["loss"], {k: v.clone() for k, v in model.state_dict().items()}))
    assert history["levers"] == {"precision": "bf16", "dropout_sampler": "bits", "item_vectors_once": True, "compile": False,
                                 "prefetch": 0, "pinned": False}  # auto on the CPU: built inline
    assert runs[0][0] == runs[1][0]  # same config and seed: same losses and weights
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_compile_failure_falls_back_to_eager(tiny_sasrec, monkeypatch) -> None:
    """A tower whose compiled call fails trains eagerly, the failure in the record, and the weights equal an
    eager run's (the failure happens before the first step changes anything)."""
    cfg, ds, ts, _ = tiny_sasrec

    def broken_compile(module, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("no C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    tc = Train(epochs=1, batch_size=64, n_negatives=64, progress=False, max_batches=2, early_stopping=False,
               **vars(REFERENCE))
    eager = build_model(cfg, ds, variant_from_config(cfg.increc), 0)
    train(eager, ts, tc, 0, CPU, "eager")
    fallback = build_model(cfg, ds, variant_from_config(cfg.increc), 0)
    history = train(fallback, ts, Train(**(vars(tc) | {"compile": True})), 0, CPU, "compiled")
    assert history["levers"]["compile"] and "no C++ compiler found" in history["levers"]["compile_failed"]
    assert history["levers"]["compile_seconds"] == 0.0
    eager_params = dict(eager.named_parameters())
    for name, p in fallback.named_parameters():  # the compiled wrapper nests each tower one level deeper
        assert torch.equal(p, eager_params[name.replace(".tower.", ".", 1)]), name


# ---------------------------------------------------------------- KuaiFormer: empty schedule slots skipped


@pytest.mark.parametrize("lengths", [[0, 0], [3, 1], [9, 2], [10, 4], [24, 0], [26, 25], [50, 3]])
def test_kuaiformer_skipping_empty_slots_changes_no_output(lengths: list[int]) -> None:
    full = make_tower(50, skip_empty_slots=False)
    skip = make_tower(50, skip_empty_slots=True)
    skip.load_state_dict(full.state_dict())
    user = make_user(lengths, max(max(lengths), 1))
    with torch.no_grad():
        a, b = full(user), skip(user)
        _, _, index = skip.history_tokens(user)
    assert torch.allclose(a, b, atol=1e-5)
    assert full.token_count(max(lengths)) <= len(index) <= full.n_history_tokens and index == sorted(index)
    if max(lengths) <= 9:  # only recent slots are filled: as many tokens as the input is wide (UserInput's width is
        assert len(index) == user.items.shape[1]  # the longest history; this helper pads an all-empty batch to 1)


def test_kuaiformer_first_kept_slot_is_a_group_start() -> None:
    tower = make_tower(50)  # 2 groups of 13, 5 groups of 3, 9 recent: group starts 0, 13, 26, 29, ..., 38; recent 41..49
    assert [tower.first_kept_slot(n) for n in (0, 1, 9, 10, 12, 13, 24, 25, 37, 38, 50)] == [50, 49, 41, 38, 38, 35, 26,
                                                                                              13, 13, 0, 0]



# ---------------------------------------------------------------- ranking in order of history length


def test_ranking_in_length_order_keeps_each_requests_ranking(tiny_sasrec) -> None:
    """rank_pool batches requests by history length and puts the rankings back in the caller's order: they
    equal the top 20 of user vectors computed in the caller's order, in one batch."""
    from bench.engine.batches import user_input
    from bench.evaluation.evaluate import rank_pool
    from bench.evaluation.retrieve import top_k

    cfg, ds, ts, _ = tiny_sasrec
    model = build_model(cfg, ds, variant_from_config(cfg.increc), 0).eval()
    rows = np.random.default_rng(0).permutation(ts.rows)[:300]  # an arbitrary order
    max_len = int(cfg.requests.max_len)
    ranked = rank_pool(model, ts.samples, ds.profiles(), rows, 20, max_len, CPU, batch=7)
    with torch.no_grad():
        users = model.serve(user_input(ts.samples, ds.profiles(), rows, max_len)).numpy()
        expected = top_k(users, model.item_tower.all_items().numpy(), 20)
    assert ranked.shape == (300, 20)
    same = (np.sort(ranked, axis=1) == np.sort(expected, axis=1)).all(axis=1)
    assert same.mean() >= 0.99, same.mean()  # float summation order may swap a near-tie at the 20th place
