"""The training loop: AdaGrad (paper 2.2.4) over shuffled request batches, one progress bar per epoch."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.batches import TrainingSet, train_batch
from bench.errors import DataError
from models.increc import IncRec


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4  # passes over the training requests
    batch_size: int = 256  # requests per step
    lr: float = 0.01  # AdaGrad learning rate
    n_negatives: int = 1024  # items sampled uniformly from the pool per batch (N of eq. 2, 4, 6)
    negatives: str = "uniform"  # uniform (from the pool) | in_batch (the batch's positives, logQ-corrected)
    progress: bool = True  # show a progress bar per epoch
    max_batches: int | None = None  # stop each epoch after this many batches (smoke tests, memory probes)


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


def train(model: IncRec, ts: TrainingSet, cfg: TrainConfig, seed: int, device: torch.device, desc: str) -> dict:
    """Train in place; returns per-epoch wall times and mean losses."""
    if len(ts.rows) == 0:
        raise DataError("no training request has a target (or exposure): nothing to train on")
    model.to(device).train()
    if any(isinstance(m, torch.nn.Embedding) and m.sparse for m in model.modules()):
        # torch builds the sparse embedding gradients itself, valid by construction: opt out of the
        # invariant checks explicitly (torch warns when they are off by default)
        torch.sparse.check_sparse_tensor_invariants.disable()
    optimiser = torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    log_q = ts.log_q() if cfg.negatives == "in_batch" else None
    history: dict[str, list] = {"epoch_seconds": [], "batches": [], "batches_available": [], "loss": []}
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        available = bucketed_batches(ts, cfg.batch_size, rng)
        batches = available[: cfg.max_batches]
        sums: dict[str, torch.Tensor] = {}  # summed on the device, read once per epoch (no sync per step)
        bar = tqdm(batches, desc=f"{desc} epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=None if cfg.progress else True)
        for rows in bar:
            batch = train_batch(ts, rows, cfg.n_negatives, rng, cfg.negatives, log_q).to(device)
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
