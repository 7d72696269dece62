"""bench.engine.early_stopping and train()'s evaluate hook: best epoch restored, patience and max_epochs respected,
ties and NaN never improve, and a hook that changes nothing about the training itself (PROTOCOL 3)."""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import pytest
import torch
from torch import nn
from tqdm.auto import tqdm

from bench.engine.batches import TrainingSet, train_batch
from bench.pipeline.cache import StageCache
from bench.engine.early_stopping import EarlyStopping
from bench.errors import DataError
from bench.pipeline.prepare import prepare
from bench.protocol.samples import split_groups
from bench.config.schema import Train
from bench.engine.train import bucketed_batches, train
from bench.engine.levers import REFERENCE
from models.increc import IncRec, Variant
from tests.conftest import compose_config

CPU = torch.device("cpu")
NAN = float("nan")


# ---------------------------------------------------------------- EarlyStopping on a tiny module


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("steps", torch.zeros(()))

    def set_epoch(self, epoch: int) -> None:  # weights that say which epoch they come from
        with torch.no_grad():
            self.lin.weight.fill_(float(epoch))
            self.lin.bias.fill_(-float(epoch))
            self.steps.fill_(float(epoch))


def _script(curve: list[float], patience: int, max_epochs: int) -> tuple[EarlyStopping, Tiny]:
    """Feed `curve` epoch by epoch (the model's weights = the epoch number) until update says stop."""
    stopper, model = EarlyStopping(patience, max_epochs), Tiny()
    for epoch, value in enumerate(curve, start=1):
        model.set_epoch(epoch)
        if stopper.update(value, model):
            break
    return stopper, model


def test_best_epoch_is_restored_and_patience_counts_from_it() -> None:
    stopper, model = _script([0.1, 0.5, 0.3, 0.4, 0.2, 0.9, 0.9], patience=3, max_epochs=10)
    assert stopper.summary() == {"valid_curve": [0.1, 0.5, 0.3, 0.4, 0.2], "best_epoch": 2, "best_value": 0.5,
                                 "epochs_run": 5, "stopped": "patience"}  # exactly 3 epochs after the best
    assert model.lin.weight.eq(5).all()  # the last epoch's weights until restored
    stopper.restore(model)
    assert model.lin.weight.eq(2).all() and model.lin.bias.eq(-2).all() and model.steps.item() == 2  # buffers too


def test_ties_do_not_improve() -> None:
    stopper, model = _script([0.3, 0.3, 0.3, 0.3], patience=2, max_epochs=10)
    assert stopper.summary()["best_epoch"] == 1 and stopper.epoch == 3 and stopper.stopped == "patience"
    stopper.restore(model)
    assert model.lin.weight.eq(1).all()


def test_nan_never_improves() -> None:
    stopper, _ = _script([0.2, NAN, 0.1, NAN], patience=3, max_epochs=10)
    assert stopper.best_epoch == 1 and stopper.epoch == 4 and stopper.stopped == "patience"
    stopper, _ = _script([0.2, NAN, 0.3], patience=3, max_epochs=3)  # NaN neither improves nor poisons the best
    assert stopper.best_epoch == 3 and stopper.best_value == 0.3
    stopper, model = _script([NAN, NAN, NAN], patience=2, max_epochs=10)
    assert stopper.summary() == {"valid_curve": [None, None], "best_epoch": None, "best_value": None,
                                 "epochs_run": 2, "stopped": "patience"}  # JSON-safe: the record refuses NaN
    assert not stopper.has_weights()
    with pytest.raises(RuntimeError, match="no weights"):
        stopper.restore(model)
    stopper, _ = _script([float("inf"), 0.1], patience=5, max_epochs=2)  # non-finite, not only NaN
    assert stopper.best_epoch == 2


def test_max_epochs_is_respected() -> None:
    stopper, model = _script([0.1, 0.2, 0.3, 0.4, 0.5], patience=2, max_epochs=3)
    assert stopper.summary() == {"valid_curve": [0.1, 0.2, 0.3], "best_epoch": 3, "best_value": 0.3,
                                 "epochs_run": 3, "stopped": "max_epochs"}
    with pytest.raises(RuntimeError, match="already stopped"):
        stopper.update(0.6, model)
    stopper, _ = _script([0.5, 0.1, 0.1], patience=2, max_epochs=3)  # both at once: patience is the reason
    assert stopper.stopped == "patience" and stopper.epoch == 3


def test_snapshot_is_a_reused_cpu_copy() -> None:
    stopper, model = EarlyStopping(5, 10), Tiny()
    model.set_epoch(1)
    stopper.update(0.1, model)
    buffers = {k: v for k, v in stopper._best_state.items()}
    pointers = {k: v.data_ptr() for k, v in buffers.items()}
    model.set_epoch(2)
    stopper.update(0.2, model)  # an improvement: copied into the same buffers
    assert all(stopper._best_state[k] is buffers[k] and buffers[k].data_ptr() == pointers[k] for k in buffers)
    assert all(v.device.type == "cpu" for v in buffers.values())
    model.set_epoch(3)
    stopper.update(0.1, model)  # no improvement: the snapshot keeps epoch 2, independent of the live weights
    assert buffers["lin.weight"].eq(2).all()
    assert all(v.data_ptr() != p.data_ptr() for v, p in zip(buffers.values(), model.state_dict().values()))


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        EarlyStopping(0, 10)
    with pytest.raises(ValueError):
        EarlyStopping(1, 0)
    curve_only = EarlyStopping(2, 4, keep_weights=False)
    curve_only.update(0.5)  # no model needed
    assert curve_only.best_epoch == 1 and not curve_only.has_weights()


# ---------------------------------------------------------------- train() on the synthetic tiny preset


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these tiny models gain nothing from more, and lose much on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(synthetic_cache):
    """(config, dataset, TrainingSet) of the `tiny` preset with YouTube-DNN and dropout on (training draws from torch RNG)."""
    cfg = compose_config("dataset.preset=tiny", "train.progress=false", f"dataset.cache_dir={synthetic_cache}",
                         "model=youtube_dnn", "model.user_tower.dropout=0.5")
    prep = prepare(cfg, StageCache(None), lambda name: contextlib.nullcontext(), False)
    samples = split_groups(prep.req, prep.retrieved, prep.ds.n_items)
    ts = TrainingSet.build(samples, prep.ds.profiles(), prep.ds.n_items, int(cfg.requests.max_len), with_exposures=False)
    return cfg, prep.ds, ts


def _model(tiny, seed: int = 0) -> IncRec:
    try:
        from bench.engine.build import build_model
    except ImportError:  # before bench.pipeline.run's model stages moved out
        from bench.engine.build import build_model

    cfg, ds, _ = tiny
    return build_model(cfg, ds, Variant(name="off"), seed)


def _cfg(**kw) -> Train:
    return Train(**({"batch_size": 64, "n_negatives": 64, "progress": False, "max_batches": 2, "epochs": 3,
                     "early_stopping": False} | kw))


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _old_train(model: IncRec, ts: TrainingSet, cfg: Train, seed: int, device: torch.device, desc: str) -> dict:
    """bench.engine.train.train as it was before the evaluate hook (fixed epochs), kept verbatim as the reference."""
    if len(ts.rows) == 0:
        raise DataError("no training request has a target (or exposure): nothing to train on")
    model.to(device).train()
    if any(isinstance(m, torch.nn.Embedding) and m.sparse for m in model.modules()):
        torch.sparse.check_sparse_tensor_invariants.disable()
    optimiser = torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    log_q = None  # uniform negatives
    history: dict[str, list] = {"epoch_seconds": [], "batches": [], "batches_available": [], "loss": []}
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        available = bucketed_batches(ts, cfg.batch_size, rng)
        batches = available[: cfg.max_batches]
        sums: dict[str, torch.Tensor] = {}
        bar = tqdm(batches, desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=None if cfg.progress else True)
        for rows in bar:
            batch = train_batch(ts, rows, cfg.n_negatives, rng, "uniform", log_q).to(device)
            parts = model.loss(batch)
            optimiser.zero_grad(set_to_none=True)
            parts["total"].backward()
            optimiser.step()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
        history["epoch_seconds"].append(round(time.perf_counter() - start, 3))
        history["batches"].append(len(batches))
        history["batches_available"].append(len(available))
        history["loss"].append({k: round(float(v) / len(batches), 5) for k, v in sums.items()})
    model.eval()
    return history


def _noisy_hook(values: list[float], snapshots: list | None = None, modes: list | None = None):
    """An evaluate hook returning `values` in turn; it draws from torch's and numpy's global RNGs (as a
    careless metric might), records the weights it saw and the mode and grad state it ran under."""
    it = iter(values)

    def evaluate(model: IncRec) -> float:
        torch.rand(1000)
        np.random.random(1000)
        if snapshots is not None:
            snapshots.append(_params(model))
        if modes is not None:
            modes.append((model.training, torch.is_grad_enabled()))
        return next(it)

    return evaluate


def test_fixed_epochs_are_bit_identical_to_the_old_loop(tiny) -> None:
    ts = tiny[2]
    torch.manual_seed(7)
    old_model = _model(tiny)
    old = _old_train(old_model, ts, _cfg(), 0, CPU, "old")
    torch.manual_seed(7)
    new_model = _model(tiny)
    new = train(new_model, ts, _cfg(**vars(REFERENCE)), 0, CPU, "new")  # the speed levers off: the old arithmetic
    assert new["loss"] == old["loss"] and new["batches"] == old["batches"] == [2, 2, 2]
    assert new["batches_available"] == old["batches_available"]
    assert _same(_params(new_model), _params(old_model))
    assert {k: new[k] for k in ("valid_seconds", "valid_curve", "best_epoch", "best_value", "epochs_run", "stopped")} == {
        "valid_seconds": [], "valid_curve": [], "best_epoch": None, "best_value": None, "epochs_run": 3, "stopped": "epochs"}
    assert not new_model.training


def test_a_hook_without_early_stopping_records_the_curve_and_changes_nothing(tiny) -> None:
    ts = tiny[2]
    torch.manual_seed(7)
    plain_model = _model(tiny)
    plain = train(plain_model, ts, _cfg(), 0, CPU, "plain")
    torch.manual_seed(7)
    hooked_model, modes = _model(tiny), []
    hooked = train(hooked_model, ts, _cfg(), 0, CPU, "hooked", evaluate=_noisy_hook([0.5, 0.1, 0.2], modes=modes))
    assert hooked["loss"] == plain["loss"]  # same batches, negatives and dropout masks
    assert _same(_params(hooked_model), _params(plain_model))  # the last epoch is kept, nothing restored
    assert hooked["valid_curve"] == [0.5, 0.1, 0.2] and hooked["best_epoch"] == 1 and hooked["best_value"] == 0.5
    assert hooked["epochs_run"] == 3 and hooked["stopped"] == "epochs" and len(hooked["valid_seconds"]) == 3
    assert modes == [(False, False)] * 3  # eval mode, no grad


def test_early_stopping_restores_the_best_epoch(tiny) -> None:
    ts = tiny[2]
    snapshots, modes = [], []
    model = _model(tiny)
    loss_modes = []
    loss = model.loss
    model.loss = lambda batch: (loss_modes.append(model.training), loss(batch))[1]
    cfg = _cfg(early_stopping=True, max_epochs=10, patience=2)
    curve = [0.1, 0.4, 0.4, 0.3, 0.9, 0.9]  # best at 2; the tie at 3 and 0.3 at 4 exhaust the patience
    history = train(model, ts, cfg, 0, CPU, "es", evaluate=_noisy_hook(curve, snapshots, modes))
    assert history["epochs_run"] == 4 and history["stopped"] == "patience"
    assert history["valid_curve"] == [0.1, 0.4, 0.4, 0.3] and history["best_epoch"] == 2 and history["best_value"] == 0.4
    assert all(len(history[k]) == 4 for k in ("epoch_seconds", "batches", "batches_available", "loss", "valid_seconds"))
    assert len(snapshots) == 4 and not _same(snapshots[1], snapshots[3])
    assert _same(_params(model), snapshots[1])  # the weights right after epoch 2
    assert modes == [(False, False)] * 4 and all(loss_modes) and len(loss_modes) == 8  # trained in train mode
    assert not model.training

    torch.manual_seed(0)  # the early-stopped run's epochs are the fixed run's epochs: the hook draws nothing
    fixed = train(_model(tiny), ts, _cfg(epochs=4), 0, CPU, "fixed")
    assert fixed["loss"] == history["loss"]


def test_early_stopping_respects_max_epochs(tiny) -> None:
    snapshots = []
    model = _model(tiny)
    cfg = _cfg(early_stopping=True, max_epochs=3, patience=2, epochs=1)  # `epochs` is ignored with early stopping
    history = train(model, tiny[2], cfg, 0, CPU, "es", evaluate=_noisy_hook([0.1, 0.2, 0.3, 0.4], snapshots))
    assert history["epochs_run"] == 3 and history["stopped"] == "max_epochs" and history["best_epoch"] == 3
    assert _same(_params(model), snapshots[2])


def test_early_stopping_with_no_finite_value_keeps_the_last_epoch(tiny) -> None:
    snapshots = []
    model = _model(tiny)
    history = train(model, tiny[2], _cfg(early_stopping=True, max_epochs=5, patience=2), 0, CPU, "es",
                    evaluate=_noisy_hook([NAN, NAN, NAN], snapshots))
    assert history["epochs_run"] == 2 and history["best_epoch"] is None and history["valid_curve"] == [None, None]
    assert not any(math.isnan(v) for v in history["valid_seconds"])
    assert _same(_params(model), snapshots[-1])


def test_early_stopping_needs_an_evaluate_hook(tiny) -> None:
    with pytest.raises(ValueError, match="evaluate"):
        train(_model(tiny), tiny[2], _cfg(early_stopping=True), 0, CPU, "es")


# ---------------------------------------------------------------- the SASRec-vs-RecBole run to early stopping


def test_sasrec_all_positions_stops_on_patience_and_tests_the_best_epoch(monkeypatch) -> None:
    """bench.perf.sasrec_recbole.train_all_positions through the same EarlyStopping (RecBole's data faked)."""
    from types import SimpleNamespace

    from bench.perf import sasrec_recbole as sr

    gen = torch.Generator().manual_seed(0)
    sequences = [torch.randint(1, 30, (int(n),), generator=gen) for n in torch.randint(2, 70, (12,), generator=gen)]
    monkeypatch.setattr(sr, "_user_sequences", lambda data: (list(range(len(sequences))), sequences))
    valid = iter([0.1, 0.3, 0.2, 0.3, 0.5])  # best at 2, then 2 epochs without a strictly better value
    seen: dict[str, list] = {"valid": [], "test": []}

    def fake_evaluate(scorer, data, which: str) -> float:
        seen[which].append(_params(scorer))
        return next(valid) if which == "valid" else 0.25

    monkeypatch.setattr(sr, "evaluate", fake_evaluate)
    torch.manual_seed(0)
    out = sr.train_all_positions(sr.Scorer(31), SimpleNamespace(config={"device": "cpu"}), 10, 0, patience=2)
    assert [score for _, score in out["seconds_valid"]] == [0.1, 0.3, 0.2, 0.3]
    assert all(len(entry) == 2 and entry[0] > 0 for entry in out["seconds_valid"]) and out["test_ndcg10"] == 0.25
    assert len(seen["test"]) == 1 and _same(seen["test"][0], seen["valid"][1])  # tested with epoch 2's weights
    assert not _same(seen["valid"][1], seen["valid"][3])


def test_snapshot_holds_a_shared_tensor_once() -> None:
    """The item tower every user tower holds is copied once, not once per holder (state_dict repeats it)."""
    shared = nn.Linear(64, 64)
    model = nn.ModuleDict({"item": shared, "a": nn.ModuleDict({"item": shared}), "b": nn.ModuleDict({"item": shared})})
    stopper = EarlyStopping(patience=1, max_epochs=3)
    stopper.update(1.0, model)
    snapshot_bytes = sum(t.numel() * t.element_size() for t in stopper._best_state.values())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())  # parameters() dedups too
    assert snapshot_bytes == param_bytes
    assert len(model.state_dict()) == 3 * len(stopper._best_state)
    before = shared.weight.detach().clone()
    with torch.no_grad():
        shared.weight.add_(1.0)
    stopper.restore(model)
    assert torch.equal(shared.weight, before)
