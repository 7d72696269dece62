"""The training loop: AdaGrad (paper 2.2.4) over shuffled request batches, one progress bar per epoch,
optionally to early stopping on a validation metric (PROTOCOL section 3, bench.engine.early_stopping)."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.engine.batches import TrainingSet, train_batch
from bench.engine.early_stopping import EarlyStopping
from bench.engine.prefetch import prefetch_depth, prefetched
from bench.errors import DataError
from bench.config.schema import Train
from bench.engine.levers import apply_levers, compile_report
from models.increc import IncRec, TrainBatch

log = logging.getLogger(__name__)


def training_step(model: IncRec, optimiser: torch.optim.Optimizer, batch) -> dict[str, torch.Tensor]:
    """One AdaGrad step on L (eq. 8) of `batch`; returns the loss parts (not detached)."""
    parts = model.loss(batch)
    optimiser.zero_grad(set_to_none=True)
    parts["total"].backward()
    optimiser.step()
    return parts


def bucketed_batches(ts: TrainingSet, batch_size: int, rng: np.random.Generator, bucket: int = 32) -> list[np.ndarray]:
    """Shuffled batches of requests with similar history lengths, so little compute goes to padding.

    The rows are shuffled, cut into groups of `bucket` batches, sorted by history length inside each
    group and cut into batches; the batch order is then shuffled again.
    """
    order = rng.permutation(ts.rows)
    req = ts.samples.requests
    lengths = np.minimum(req.hist_end - req.hist_start, ts.max_len)
    batches = []
    for lo in range(0, len(order), batch_size * bucket):
        group = order[lo : lo + batch_size * bucket]
        group = group[np.argsort(lengths[group], kind="stable")]
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _rng_kept(device: torch.device):
    """torch's global RNG (CPU, and the model's CUDA device) saved and restored around a block, so an
    evaluation hook leaves the training's dropout stream as it found it."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.random.fork_rng(devices=[index])
    return torch.random.fork_rng(devices=[])


def _validate(model: IncRec, evaluate: Callable[[IncRec], float], device: torch.device) -> tuple[float, float]:
    """evaluate(model) in eval mode, under no_grad, with torch's RNG restored after; (value, seconds)."""
    start = time.perf_counter()
    model.eval()
    try:
        with _rng_kept(device), torch.no_grad():
            value = float(evaluate(model))
    finally:
        model.train()
    return value, round(time.perf_counter() - start, 3)


def epoch_values(history: dict, i: int) -> dict[str, float]:
    """Epoch i's (0-based) entries of a training history, as a tracker logs them (bench.tracking): loss/<part>,
    epoch_seconds, and valid (the selection metric) and valid_seconds when the epoch was validated."""
    values = {f"loss/{name}": value for name, value in history["loss"][i].items()}
    values["epoch_seconds"] = history["epoch_seconds"][i]
    curve, seconds = history.get("valid_curve") or [], history.get("valid_seconds") or []
    if i < len(seconds):
        values["valid_seconds"] = seconds[i]
    if i < len(curve) and curve[i] is not None:
        values["valid"] = curve[i]
    return values


def train(model: IncRec, ts: TrainingSet, cfg: Train, seed: int, device: torch.device, desc: str,
          evaluate: Callable[[IncRec], float] | None = None, negatives: str = "uniform",
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> dict:
    """Train in place; returns per-epoch wall times, mean losses and the validation curve.

    cfg.early_stopping: up to cfg.max_epochs epochs; after each, `evaluate(model)` (required; higher
    is better) goes to an EarlyStopping(cfg.patience, cfg.max_epochs), training stops after
    cfg.patience epochs without a strictly better value, and the best epoch's weights are restored
    at the end (PROTOCOL section 3). Otherwise cfg.epochs epochs, the last one kept; `evaluate`,
    if given, is still called after each epoch to record the curve.
    `evaluate` runs in eval mode under torch.no_grad() and draws nothing from the training's RNG
    (torch's global RNG is restored after it), so the batches and updates are the same with or
    without it. History: epoch_seconds (training only), batches, batches_available, loss,
    valid_seconds (per evaluated epoch), valid_curve, best_epoch (1-based), best_value, epochs_run,
    stopped ("patience" | "max_epochs" with early stopping, "epochs" without), levers (the speed
    settings applied: bench.engine.levers, and prefetch: the batches built ahead). `negatives`: the backbone's sampler (model.negatives): uniform
    from the pool, or in_batch (the batch's positives, logQ-corrected). `on_epoch(epoch, epoch_values(...))`,
    if given, is called after each epoch (1-based) with what the history then holds of it (a tracker).
    """
    if cfg.early_stopping and evaluate is None:
        raise ValueError("train: cfg.early_stopping needs an evaluate hook (the validation metric after each epoch)")
    if len(ts.rows) == 0:
        raise DataError("no training request has a target (or exposure): nothing to train on")
    model.to(device).train()
    applied = apply_levers(model, cfg.levers, device)
    if any(isinstance(m, torch.nn.Embedding) and m.sparse for m in model.modules()):
        # torch builds the sparse embedding gradients itself, valid by construction: opt out of the
        # invariant checks explicitly (torch warns when they are off by default)
        torch.sparse.check_sparse_tensor_invariants.disable()
    optimiser = torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    depth = prefetch_depth(cfg.prefetch, device)  # batches built ahead by a background thread (bench.engine.prefetch)
    pinned = depth > 0 and device.type == "cuda"  # page-locked batches: their copies overlap the step
    log_q = ts.log_q() if negatives == "in_batch" else None
    n_epochs = cfg.max_epochs if cfg.early_stopping else cfg.epochs
    stopper = None
    if evaluate is not None and (cfg.early_stopping or n_epochs > 0):
        # without early stopping the patience never ends the run and nothing is restored: no snapshot
        stopper = EarlyStopping(cfg.patience if cfg.early_stopping else n_epochs + 1, n_epochs,
                                keep_weights=cfg.early_stopping)
    history: dict[str, list] = {"epoch_seconds": [], "batches": [], "batches_available": [], "loss": [],
                                "valid_seconds": [], "valid_curve": []}
    last = ""  # the last validation value, for the progress bar
    for epoch in range(n_epochs):
        start = time.perf_counter()
        available = bucketed_batches(ts, cfg.batch_size, rng)
        batches = available[: cfg.max_batches]
        sums: dict[str, torch.Tensor] = {}  # summed on the device, read once per epoch (no sync per step)
        built = prefetched(lambda rows: train_batch(ts, rows, cfg.n_negatives, rng, negatives, log_q), batches,
                           depth, pin=TrainBatch.pin_memory if pinned else None)  # in order: the same draws from rng
        with contextlib.closing(built):  # a failing step stops the builder thread at once
            bar = tqdm(built, desc=f"{desc} epoch {epoch + 1}/{n_epochs}{last}", leave=False, total=len(batches),
                       disable=None if cfg.progress else True)
            for batch in bar:
                parts = training_step(model, optimiser, batch.to(device, non_blocking=pinned))
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value.detach()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the epoch's queued kernels belong to its seconds (one wait per epoch)
        history["epoch_seconds"].append(round(time.perf_counter() - start, 3))
        history["batches"].append(len(batches))
        history["batches_available"].append(len(available))
        history["loss"].append({k: round(float(v) / len(batches), 5) for k, v in sums.items()})
        stop = False
        if stopper is not None:
            value, seconds = _validate(model, evaluate, device)
            history["valid_seconds"].append(seconds)
            history["valid_curve"].append(value if math.isfinite(value) else None)  # the stopper's curve, so far
            last = f" valid {value:.4f}"
            stop = stopper.update(value, model) and cfg.early_stopping
        if on_epoch is not None:
            on_epoch(epoch + 1, epoch_values(history, epoch))
        if stop:
            break
    if stopper is None:
        summary = {"valid_curve": [], "best_epoch": None, "best_value": None, "epochs_run": n_epochs}
    else:
        if cfg.early_stopping and stopper.has_weights():
            stopper.restore(model)
        elif cfg.early_stopping:  # no finite validation value at all: the last epoch stays
            log.warning("%s: no epoch had a finite validation value; the last epoch's weights are kept", desc)
        summary = stopper.summary()
    history |= summary
    history["stopped"] = summary["stopped"] if cfg.early_stopping else "epochs"
    history["levers"] = applied | compile_report(model) | {"prefetch": depth, "pinned": pinned}
    model.eval()
    return history
