"""Training-step throughput: one fixed workload of prepared batches, stepped under different training paths.

`step_workload` composes a config (as `python -m bench OVERRIDES` would), runs the model-independent
stages (stage cache on), and cuts `n_batches` training batches of the variant's TrainingSet with a
fixed seed; `steps_per_second` builds a fresh model and times AdaGrad steps over those batches, so
two paths are compared on exactly the same inputs, back to back, in one process.

Figures (`train_step_figures`), IncRec-NA on the Pure-sized synthetic preset:
- `train_step_speedup_<backbone>_increc`: steps per second of the default path over the reference
  path (bench.engine.levers.REFERENCE, and KuaiFormer's `skip_empty_slots=false`), the median of the
  per-round ratios, the two paths alternating within each round (a shared machine's speed drifts).
- `train_step_fraction_of_matmul_peak`: achieved GFLOP/s of SASRec's step over the machine's float32
  matmul rate (bench.perf.retrieval.matmul_gflops, the same tiles retrieval is measured against).
  The FLOPs are counted, not estimated: torch.utils.flop_counter.FlopCounterMode over every timed
  step, forward and backward, which counts 2·m·n·k per matrix product (the towers' linear layers,
  attention's q·kᵀ and weights·v, the sampled-softmax logits, and each product's two backward
  products) and nothing for element-wise work (norms, activations, dropout, the optimiser), so the
  fraction is a lower bound on how busy the cores are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bench.engine.batches import TrainingSet, train_batch
from bench.pipeline.cache import StageCache
from bench.config import CONF_DIR, register_resolvers
from bench.config.schema import train_settings
from bench.engine.build import build_model, variant_from_config
from bench.perf.retrieval import matmul_gflops
from bench.pipeline.prepare import prepare
from bench.pipeline.run import StageTimer
from bench.protocol.samples import split_groups
from bench.engine.train import bucketed_batches, training_step
from bench.engine.levers import REFERENCE, apply_levers, resolve_precision
from models.increc import IncRec
from models.increc import TrainBatch

REFERENCE_OVERRIDES = [f"train.precision={REFERENCE.precision}", f"train.dropout_sampler={REFERENCE.dropout_sampler}",
                       f"train.item_vectors_once={str(REFERENCE.item_vectors_once).lower()}",
                       f"train.compile={str(REFERENCE.compile).lower()}"]
PEAK_ITEMS_FOR_PEAK = 262_144  # items of the float32 matmul the step is compared against (a rate: tiles repeat)
MODEL_REFERENCE = {"kuaiformer": ["model.user_tower.skip_empty_slots=false"]}  # backbone-level levers, off


def compose_app_config(overrides: list[str]) -> DictConfig:
    """The app's config as `python -m bench OVERRIDES` composes it (without the Hydra runtime)."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


@dataclass
class StepWorkload:
    cfg: DictConfig
    prep: object  # bench.pipeline.prepare.Prepared
    batches: list[TrainBatch]  # on the CPU, built once


def step_workload(overrides: list[str], n_batches: int, seed: int = 0) -> StepWorkload:
    """The first `n_batches` shuffled training batches of the configured run (the run's own sampler)."""
    cfg = compose_app_config(overrides)
    prep = prepare(cfg, StageCache(cfg.cache.dir if cfg.cache.enabled else None), StageTimer(), progress=False)
    samples = split_groups(prep.req, prep.retrieved, prep.ds.n_items)
    variant = variant_from_config(cfg.increc)
    ts = TrainingSet.build(samples, prep.ds.profiles(), prep.ds.n_items, int(cfg.requests.max_len),
                           with_exposures=variant.alignment)
    tc = train_settings(cfg)
    negatives = str(cfg.model.negatives)
    rng = np.random.default_rng(seed)
    log_q = ts.log_q() if negatives == "in_batch" else None
    rows = bucketed_batches(ts, tc.batch_size, rng)[:n_batches]
    batches = [train_batch(ts, r, tc.n_negatives, rng, negatives, log_q) for r in rows]
    return StepWorkload(cfg, prep, batches)


def fresh_model(work: StepWorkload, cfg: DictConfig | None = None, seed: int = 0
                ) -> tuple[IncRec, torch.optim.Optimizer, dict]:
    """A new model of `cfg` (default `work.cfg`) in training mode with its levers applied, its AdaGrad
    optimiser, and the levers applied (bench.engine.levers)."""
    cfg = cfg if cfg is not None else work.cfg
    model = build_model(cfg, work.prep.ds, variant_from_config(cfg.increc), seed).train()
    applied = apply_levers(model, train_settings(cfg).levers, torch.device("cpu"))
    return model, torch.optim.Adagrad(model.parameters(), lr=float(cfg.train.lr)), applied


def steps_per_second(work: StepWorkload, cfg: DictConfig | None = None, warmup: int = 3, seed: int = 0,
                     count_flops: bool = False) -> dict:
    """A fresh model of `cfg` (default `work.cfg`) stepped over the workload's batches: steps per
    second after `warmup` untimed steps, and the mean loss of the timed steps; with count_flops, the
    timed steps run once more under FlopCounterMode (untimed) for their matrix-product FLOPs."""
    model, optimiser, _ = fresh_model(work, cfg, seed)
    losses = []

    def step(batch: TrainBatch) -> torch.Tensor:
        return training_step(model, optimiser, batch)["total"].detach()

    for batch in work.batches[:warmup]:
        step(batch)
    start = time.perf_counter()
    for batch in work.batches[warmup:]:
        losses.append(step(batch))
    seconds = time.perf_counter() - start
    n = len(work.batches) - warmup
    out = {"steps_per_second": n / seconds, "steps": n, "seconds": seconds, "mean_loss": float(torch.stack(losses).mean())}
    if count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            for batch in work.batches[warmup:]:
                step(batch)
        out["flops"] = float(counter.get_total_flops())
    return out


def speedup(overrides: list[str], backbone: str, n_batches: int, rounds: int) -> dict:
    """The default path's steps per second over the reference path's, on one workload (module docstring)."""
    work = step_workload(overrides, n_batches)
    reference = compose_app_config(overrides + REFERENCE_OVERRIDES + MODEL_REFERENCE.get(backbone, []))
    ratios, fast, slow = [], [], []
    for _ in range(rounds):
        ref = steps_per_second(work, reference)["steps_per_second"]
        new = steps_per_second(work)["steps_per_second"]
        ratios.append(new / ref)
        fast.append(new)
        slow.append(ref)
    return {"speedup": float(np.median(ratios)), "default": float(np.median(fast)), "reference": float(np.median(slow)),
            "ratios": " ".join(f"{r:.2f}" for r in ratios)}


def train_step_figures(preset: str, n_batches: int, rounds: int, extra: list[str] | None = None,
                       peak_items: int = PEAK_ITEMS_FOR_PEAK) -> dict[str, object]:
    """The `train_step_*` figures (module docstring) on synthetic preset `preset` (`extra`: more overrides;
    `peak_items`: the size of the float32 matmul the step is compared against)."""
    extra = list(extra or [])
    figures: dict[str, object] = {"train_step_preset": preset, "train_step_batches": n_batches, "train_step_rounds": rounds,
                                  "train_step_precision": resolve_precision("auto", torch.device("cpu"))}
    for backbone in ("sasrec", "kuaiformer"):
        s = speedup([f"dataset.preset={preset}", f"model={backbone}", "increc=na", *extra], backbone, n_batches, rounds)
        figures[f"train_step_speedup_{backbone}_increc"] = s["speedup"]
        figures[f"train_step_{backbone}_default_steps_per_s"] = s["default"]
        figures[f"train_step_{backbone}_reference_steps_per_s"] = s["reference"]
        figures[f"train_step_{backbone}_round_ratios"] = s["ratios"]
    work = step_workload([f"dataset.preset={preset}", "model=sasrec", "increc=na", *extra], n_batches)
    peak, _ = matmul_gflops(torch.randn(4096, 64), torch.randn(peak_items, 64), repeats=3)
    for path, cfg in (("default", None), ("reference", compose_app_config(
            [f"dataset.preset={preset}", "model=sasrec", "increc=na", *extra, *REFERENCE_OVERRIDES]))):
        r = steps_per_second(work, cfg, count_flops=True)
        gflops = r["flops"] / r["seconds"] / 1e9
        figures[f"train_step_sasrec_{path}_gflops"] = gflops
        if path == "default":
            figures["train_step_sasrec_flops_per_step"] = r["flops"] / r["steps"]
            figures["train_step_fraction_of_matmul_peak"] = gflops / peak
        else:
            figures["train_step_fraction_of_matmul_peak_reference"] = gflops / peak
    figures["train_step_matmul_peak_gflops"] = peak
    return figures


