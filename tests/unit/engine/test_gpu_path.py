"""The GPU path's CPU-side guarantees (issue 44): batches built ahead are the inline batches; the step indexes with
host-built index tensors (no device read-back) and computes what the boolean-mask step computed; the device
resolution errors and the GPU identity in records, cache keys and bf16's choice."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.config.schema import train_settings
from bench.engine import device as engine_device
from bench.engine.device import deterministic_torch
from bench.engine import levers as train_levers
from bench.engine import machine as engine_machine
from bench.engine.batches import train_batch
from bench.engine.build import build_model, variant_from_config
from bench.engine.prefetch import prefetch_depth, prefetched
from bench.engine.train import bucketed_batches, train
from bench.errors import ConfigError
from models import increc as increc_module
from models.increc import IncRec, TrainBatch, Variant
from models.losses import nearest_exposed_alpha, sampled_softmax, score, transform_alpha
from tests.conftest import compose_config

CPU = torch.device("cpu")


# ---------------------------------------------------------------- batches built ahead


def _draws(n: int, depth: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)  # one generator read in sequence by the builder, as training's is
    return list(prefetched(lambda size: rng.integers(0, 1000, size), list(range(1, n + 1)), depth))


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_prefetched_builds_the_inline_sequence_in_order(depth: int) -> None:
    inline, ahead = _draws(12, 0), _draws(12, depth)
    assert [len(a) for a in ahead] == list(range(1, 13))
    assert all(np.array_equal(a, b) for a, b in zip(inline, ahead))


def test_a_builder_error_reaches_the_loop_and_an_early_exit_stops_the_thread() -> None:
    def build(i: int) -> int:
        if i == 3:
            raise KeyError("batch 3")
        return i

    seen = []
    with pytest.raises(KeyError, match="batch 3"):
        for x in prefetched(build, range(6), 2):
            seen.append(x)
    assert seen == [0, 1, 2]
    gen = prefetched(lambda i: i, range(100), 2)
    assert next(gen) == 0
    gen.close()  # leaves the loop early: the generator's cleanup joins the thread
    assert not any(t.name == "batch-prefetch" and t.is_alive() for t in __import__("threading").enumerate())


def test_prefetch_depth_is_on_for_cuda_only_under_auto() -> None:
    assert prefetch_depth("auto", CPU) == 0 and prefetch_depth("auto", torch.device("cuda")) == 2
    assert prefetch_depth(3, CPU) == 3 and prefetch_depth(0, torch.device("cuda")) == 0
    with pytest.raises(ConfigError, match="train.prefetch"):
        train_settings(compose_config("train.prefetch=-1"))


def test_training_with_batches_built_ahead_is_training_inline(tiny_sasrec) -> None:
    """The same seed: the same batches in the same order, so the same losses and the same weights, bit for bit."""
    cfg, ds, ts, _ = tiny_sasrec
    deterministic_torch()  # as every job runs (bench.engine.device.start_job): CPU embedding gradients included
    outcome = []
    for prefetch in (0, 2):
        model = build_model(cfg, ds, variant_from_config(cfg.increc), 0)
        settings = train_settings(compose_config("train.progress=false", "train.early_stopping=false", "train.epochs=2",
                                                 "train.max_batches=4", f"train.prefetch={prefetch}"))
        torch.manual_seed(3)
        history = train(model, ts, settings, 0, CPU, "t")
        outcome.append((history, {k: v.clone() for k, v in model.state_dict().items()}))
    (inline, w_inline), (ahead, w_ahead) = outcome
    assert inline["loss"] == ahead["loss"] and inline["levers"]["prefetch"] == 0 and ahead["levers"]["prefetch"] == 2
    assert all(torch.equal(w_inline[k], w_ahead[k]) for k in w_inline)


def test_pinned_batches_pass_through_pin(tiny_sasrec, monkeypatch) -> None:
    """On CUDA each batch is pinned in the builder thread (no GPU here: a stand-in records the call)."""
    _, _, ts, _ = tiny_sasrec
    pinned = []
    monkeypatch.setattr(TrainBatch, "pin_memory", lambda self: pinned.append(len(self.x_rows)) or self)
    rng = np.random.default_rng(0)
    rows = bucketed_batches(ts, 32, rng)[:3]
    out = list(prefetched(lambda r: train_batch(ts, r, 16, rng), rows, 2, pin=TrainBatch.pin_memory))
    assert pinned == [len(b.x_rows) for b in out] and len(out) == 3


# ---------------------------------------------------------------- the step without host reads


class HostReads(TorchDispatchMode):
    """Records the ops that read a device value back to the host: a scalar read (item, bool, int), nonzero, and
    indexing or selecting with a boolean mask (whose output size is a count on the device)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.name()
        if name.startswith(("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::is_nonzero")):
            self.seen.append(name)
        elif name.startswith("aten::index") and len(args) > 1 and isinstance(args[1], (list, tuple)) and any(
                isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in args[1]):
            self.seen.append(name + "(bool)")
        return func(*args, **(kwargs or {}))


VARIANTS = {
    "off": Variant("off"),
    "na": Variant("na", incremental=True),
    "tb_itg": Variant("tb_itg", basic_targets="itg"),
    "tb_boost": Variant("tb_boost", itg_weight=2.0),
    "ori": Variant("ori", incremental=True, alignment=True, alpha="item"),
    "on": Variant("on", incremental=True, alignment=True, alpha="nearest_exposed"),
    "on_excl": Variant("on_excl", incremental=True, alignment=True, alpha="nearest_exposed", alpha_exclude_self=True),
}


def mask_loss(model: IncRec, batch: TrainBatch) -> dict[str, torch.Tensor]:
    """The step as it was before issue 44: boolean masks for the targets and the ITG, and α's mean over `found`
    read through a mask (kept here as the reference the index-tensor step must match)."""
    v = model.variant
    vec = model._item_vectors(batch)
    neg, x_vec = vec["neg"], vec["x"]
    keep = batch.x_is_itg if v.basic_targets == "itg" else torch.ones_like(batch.x_is_itg)
    weights = None if v.itg_weight == 1.0 else torch.where(batch.x_is_itg, v.itg_weight, 1.0)[keep].to(neg.dtype)
    parts = {"basic": sampled_softmax(model._user_vectors("basic", batch.user), batch.x_rows[keep], x_vec[keep], neg,
                                      batch.x_neg_mask, weights=weights, interests=model.interests)}
    align = None
    if v.alignment:
        align = model._user_vectors("alignment", batch.user)
        parts["align"] = sampled_softmax(align, batch.etg_rows, vec["etg_items"], neg, batch.etg_neg_mask,
                                         interests=model.interests)
    if v.incremental:
        itg = batch.x_is_itg
        rows, itg_vec = batch.x_rows[itg], x_vec[itg]
        alpha = None
        if v.alpha != "one":
            with torch.no_grad():
                if v.alpha == "item":
                    raw, found = score(align[rows], itg_vec), None
                else:
                    exclude = batch.etg[rows] == batch.x_items[itg][:, None] if v.alpha_exclude_self else None
                    raw, found = nearest_exposed_alpha(align, rows, itg_vec, vec["etg"], batch.etg_mask, exclude)
                alpha = transform_alpha(raw, v.alpha_transform)
                aligned = torch.ones_like(alpha, dtype=torch.bool) if found is None else found
                if v.alpha_normalise and aligned.any():
                    alpha = alpha / alpha[aligned].abs().mean().clamp_min(1e-12)
                alpha = torch.where(aligned, alpha, torch.ones_like(alpha))
        parts["incremental"] = sampled_softmax(model._user_vectors("incremental", batch.user), rows, itg_vec, neg,
                                               batch.x_neg_mask, extra_neg=vec["rtg"], extra_mask=batch.rtg_mask,
                                               weights=alpha, interests=model.interests)
    parts["total"] = sum(parts.values())
    return parts


def _loss_and_grads(tiny_sasrec, variant: Variant, loss_fn) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    cfg, ds, _, batch = tiny_sasrec
    model = build_model(cfg, ds, variant, 0).train()
    model.item_vectors_once = False  # the reference path's item vectors, so both losses read the same tensors
    torch.manual_seed(5)  # the same dropout masks for both
    parts = loss_fn(model, batch)
    parts["total"].backward()
    return ({k: v.detach() for k, v in parts.items()},
            {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_index_step_computes_the_mask_step_in_fp32(tiny_sasrec, name: str, monkeypatch) -> None:
    """On the CPU, loss and gradients equal the boolean-mask step's bit for bit (the same values gathered, α's mean
    over the selected values). The device path's α mean, a masked sum over a count, equals it to float rounding."""
    variant = VARIANTS[name]
    (new, new_grads), (old, old_grads) = (_loss_and_grads(tiny_sasrec, variant, f)
                                          for f in (lambda m, b: m.loss(b), mask_loss))
    assert set(new) == set(old) and set(new_grads) == set(old_grads)
    assert all(torch.equal(new[k], old[k]) for k in old), name
    assert all(torch.equal(new_grads[k], old_grads[k]) for k in old_grads), name
    monkeypatch.setattr(increc_module, "EXACT_CPU_ALPHA_MEAN", False)  # the path a CUDA step takes
    device_path, device_grads = _loss_and_grads(tiny_sasrec, variant, lambda m, b: m.loss(b))
    assert all(torch.allclose(device_path[k], old[k], rtol=1e-6, atol=0) for k in old), name
    assert all(torch.allclose(device_grads[k], old_grads[k], rtol=1e-5, atol=1e-8) for k in old_grads), name


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_step_reads_nothing_back_from_the_device(tiny_sasrec, name: str, monkeypatch) -> None:
    """The step as it runs on CUDA (α's mean on the device), on this CPU: no op reads a value back to the host."""
    monkeypatch.setattr(increc_module, "EXACT_CPU_ALPHA_MEAN", False)
    cfg, ds, _, batch = tiny_sasrec
    model = build_model(cfg, ds, VARIANTS[name], 0).train()
    with HostReads() as reads:
        model.loss(batch)["total"].backward()
    assert reads.seen == [], (name, sorted(set(reads.seen)))
    with HostReads() as reads:  # the detector sees what the old step did
        mask_loss(model, batch)
    assert reads.seen, name


def test_kuaiformer_reads_its_layout_from_the_shape() -> None:
    from tests.unit.models.test_backbone_kuaiformer import make_tower, make_user

    tower = make_tower(50, skip_empty_slots=True).eval()
    user = make_user([9, 3, 1], 9)
    with HostReads() as reads, torch.no_grad():
        first = tower(user)
        again = tower(user)  # the layout tensor is made once, then reused
    assert reads.seen == [] and torch.equal(first, again)
    assert len(tower._layouts) == 1


# ---------------------------------------------------------------- devices


def test_cuda_on_a_torch_build_without_cuda_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ConfigError, match=r"built without CUDA.*train.device=cpu") as err:
        engine_device.resolve_device("cuda")
    assert "\n" not in str(err.value)
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="sees no GPU"):
        engine_device.resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="only 1 GPU"):
        engine_device.resolve_device("cuda:1")


def test_auto_logs_its_choice_and_warns_when_a_gpu_is_unused(monkeypatch, caplog) -> None:
    monkeypatch.setattr(engine_device, "_announced", set())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(engine_device, "gpu_present", lambda: True)
    with caplog.at_level(logging.INFO, logger="bench.engine.device"):
        assert engine_device.resolve_device("auto") == CPU
        engine_device.resolve_device("auto")  # logged once per process
    messages = [r.getMessage() for r in caplog.records]
    assert sum("chose cpu" in m for m in messages) == 1
    assert any("GPU is present but torch" in m and "no CUDA" in m for m in messages)


def _fake_gpu(monkeypatch, capability: tuple[int, int]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "Tesla V100" if capability < (8, 0) else "A100")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: capability)
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)


def test_bf16_is_native_from_compute_capability_8(monkeypatch) -> None:
    cuda = torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what torch says of emulated bf16
    _fake_gpu(monkeypatch, (7, 0))
    assert train_levers.resolve_precision("auto", cuda) == "fp32"
    _fake_gpu(monkeypatch, (8, 0))
    assert train_levers.resolve_precision("auto", cuda) == "bf16"


def test_the_record_and_the_cache_key_name_the_gpu(monkeypatch) -> None:
    _fake_gpu(monkeypatch, (9, 0))
    ident = engine_machine.gpu_identity(torch.device("cuda:0"))
    assert ident == {"gpu": "A100", "capability": "9.0", "cuda": "12.6", "cudnn": 90100}
    assert engine_machine.gpu_identity(CPU) is None
    record = engine_machine.machine()
    assert {k: record[k] for k in engine_machine.GPU_FIELDS} == {"gpu": "A100", "gpu_capability": "9.0",
                                                                 "cuda": "12.6", "cudnn": 90100}


def test_cublas_workspace_is_set_when_bench_is_imported() -> None:
    import os

    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") in (":4096:8", ":16:8")  # bench's, or one the user set
