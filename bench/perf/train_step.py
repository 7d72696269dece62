"""Training-step throughput: one fixed workload of prepared batches, stepped under different training paths.

`step_workload` composes a config (as `python -m bench OVERRIDES` would), runs the model-independent
stages (stage cache on), and cuts `n_batches` training batches of the variant's TrainingSet with a
fixed seed; `steps_per_second` builds a fresh model and times AdaGrad steps over those batches, so
two paths are compared on exactly the same inputs, back to back, in one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bench.batches import TrainingSet, train_batch
from bench.config import CONF_DIR, register_resolvers
from bench.model_stages import build_model, levers_config, train_config, variant_from_config
from bench.train_levers import apply_levers
from bench.prepare import prepare
from bench.samples import split_groups
from bench.train import bucketed_batches
from models.increc import TrainBatch


def compose_app_config(overrides: list[str]) -> DictConfig:
    """The app's config as `python -m bench OVERRIDES` composes it (without the Hydra runtime)."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


@dataclass
class StepWorkload:
    cfg: DictConfig
    prep: object  # bench.prepare.Prepared
    batches: list[TrainBatch]  # on the CPU, built once


def step_workload(overrides: list[str], n_batches: int, seed: int = 0) -> StepWorkload:
    """The first `n_batches` shuffled training batches of the configured run (the run's own sampler)."""
    from bench.run import StageTimer

    cfg = compose_app_config(overrides)
    from bench.cache import StageCache

    prep = prepare(cfg, StageCache(cfg.cache.dir if cfg.cache.enabled else None), StageTimer(), progress=False)
    samples = split_groups(prep.req, prep.retrieved, prep.ds.n_items)
    variant = variant_from_config(cfg.increc)
    ts = TrainingSet.build(samples, prep.ds.profiles(), prep.ds.n_items, int(cfg.requests.max_len),
                           with_exposures=variant.alignment)
    tc = train_config(cfg)
    rng = np.random.default_rng(seed)
    log_q = ts.log_q() if tc.negatives == "in_batch" else None
    rows = bucketed_batches(ts, tc.batch_size, rng)[:n_batches]
    batches = [train_batch(ts, r, tc.n_negatives, rng, tc.negatives, log_q) for r in rows]
    return StepWorkload(cfg, prep, batches)


def steps_per_second(work: StepWorkload, cfg: DictConfig | None = None, warmup: int = 3, seed: int = 0) -> dict:
    """A fresh model of `cfg` (default `work.cfg`) stepped over the workload's batches: steps per
    second after `warmup` untimed steps, and the mean loss of the timed steps."""
    cfg = cfg if cfg is not None else work.cfg
    model = build_model(cfg, work.prep.ds, variant_from_config(cfg.increc), seed).train()
    apply_levers(model, levers_config(cfg), torch.device("cpu"))
    optimiser = torch.optim.Adagrad(model.parameters(), lr=float(cfg.train.lr))
    losses = []

    def step(batch: TrainBatch) -> torch.Tensor:
        parts = model.loss(batch)
        optimiser.zero_grad(set_to_none=True)
        parts["total"].backward()
        optimiser.step()
        return parts["total"].detach()

    for batch in work.batches[:warmup]:
        step(batch)
    start = time.perf_counter()
    for batch in work.batches[warmup:]:
        losses.append(step(batch))
    seconds = time.perf_counter() - start
    n = len(work.batches) - warmup
    return {"steps_per_second": n / seconds, "steps": n, "mean_loss": float(torch.stack(losses).mean())}

