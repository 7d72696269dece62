"""Training-step throughput: one fixed workload of prepared batches, stepped under different training paths.

`step_workload` composes a config (as `python -m bench OVERRIDES` would, `train.device` included), runs
the model-independent stages (stage cache on), and cuts `n_batches` training batches of the variant's
TrainingSet with a fixed seed, kept on the CPU; `steps_per_second` builds a fresh model on the config's
device and times AdaGrad steps over those batches, each moved to the device inside the timed loop
(as the pipeline's training loop moves them), the clock read after the device's queued work
(bench.perf.timing), so two paths are compared on exactly the same inputs, back to back, in one process.

Figures (`train_step_figures`), IncRec-NA on the Pure-sized synthetic preset, on `device`
(`python -m bench.perf --only train_step --device D`; the CPU by default):
- `train_step_device`, `train_step_device_name`: where the steps ran (the GPU's name on CUDA).
- `train_step_speedup_<backbone>_increc`: steps per second of the default path over the reference
  path (bench.engine.levers.REFERENCE, and KuaiFormer's `skip_empty_slots=false`), the median of the
  per-round ratios, the two paths alternating within each round (a shared machine's speed drifts).
- `train_step_fraction_of_matmul_peak`: achieved GFLOP/s of SASRec's step over the device's matmul
  rate (bench.perf.retrieval.matmul_gflops, the same tiles retrieval is measured against, on the same
  device): float32 on the CPU, and on CUDA the precision the default path trains in (bf16 or fp32;
  `train_step_matmul_peak_dtype`). The FLOPs are counted, not estimated:
  torch.utils.flop_counter.FlopCounterMode over every timed step, forward and backward, which counts
  2·m·n·k per matrix product (the towers' linear layers, attention's q·kᵀ and weights·v, the
  sampled-softmax logits, and each product's two backward products) and nothing for element-wise
  work (norms, activations, dropout, the optimiser), so the fraction is a lower bound on how busy the
  cores are.
- With `baseline_device` (`--baseline-device cpu`): SASRec's default path on `device` against the
  same path on the baseline device, over the same batches, alternating within each round:
  `train_step_sasrec_speedup_over_baseline_device` (the median of the per-round ratios),
  `train_step_sasrec_baseline_steps_per_s`, `train_step_sasrec_baseline_round_ratios`, and
  `train_step_baseline_device`, `train_step_baseline_device_name`.
"""

from __future__ import annotations

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
from bench.engine.device import resolve_device
from bench.perf.device import device_figures
from bench.perf.retrieval import matmul_gflops
from bench.perf.timing import now
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
    optimiser, and the levers applied (bench.engine.levers); on `cfg.train.device`."""
    cfg = cfg if cfg is not None else work.cfg
    device = resolve_device(str(cfg.train.device))
    model = build_model(cfg, work.prep.ds, variant_from_config(cfg.increc), seed).to(device).train()
    applied = apply_levers(model, train_settings(cfg).levers, device)
    return model, torch.optim.Adagrad(model.parameters(), lr=float(cfg.train.lr)), applied


def timed_steps(model: IncRec, optimiser: torch.optim.Optimizer, batches: list[TrainBatch]
                ) -> tuple[float, list[torch.Tensor]]:
    """Seconds of one training step per batch, each batch moved to the model's device inside the timed
    region, the clock read once the device's work is done; and each step's loss (detached, on the device)."""
    device = next(model.parameters()).device
    losses = []
    start = now(device)
    for batch in batches:
        losses.append(training_step(model, optimiser, batch.to(device))["total"].detach())
    return now(device) - start, losses


def steps_per_second(work: StepWorkload, cfg: DictConfig | None = None, warmup: int = 3, seed: int = 0,
                     count_flops: bool = False) -> dict:
    """A fresh model of `cfg` (default `work.cfg`) stepped over the workload's batches on its
    `train.device`: steps per second after `warmup` untimed steps, and the mean loss of the timed steps;
    with count_flops, the timed steps run once more under FlopCounterMode (untimed) for their
    matrix-product FLOPs."""
    model, optimiser, _ = fresh_model(work, cfg, seed)
    timed_steps(model, optimiser, work.batches[:warmup])
    seconds, losses = timed_steps(model, optimiser, work.batches[warmup:])
    n = len(work.batches) - warmup
    out = {"steps_per_second": n / seconds, "steps": n, "seconds": seconds, "mean_loss": float(torch.stack(losses).mean())}
    if count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            timed_steps(model, optimiser, work.batches[warmup:])
        out["flops"] = float(counter.get_total_flops())
    return out


def paired_rounds(work: StepWorkload, fast: DictConfig | None, slow: DictConfig, rounds: int) -> dict:
    """Steps per second of config `fast` (None: `work.cfg`) over config `slow` on one workload: the median
    of the per-round ratios, the two alternating within each round (a shared machine's speed drifts)."""
    ratios, fasts, slows = [], [], []
    for _ in range(rounds):
        ref = steps_per_second(work, slow)["steps_per_second"]
        new = steps_per_second(work, fast)["steps_per_second"]
        ratios.append(new / ref)
        fasts.append(new)
        slows.append(ref)
    return {"speedup": float(np.median(ratios)), "default": float(np.median(fasts)),
            "reference": float(np.median(slows)), "ratios": " ".join(f"{r:.2f}" for r in ratios)}


def matmul_peak(device: torch.device, precision: str, items: int) -> tuple[float, str]:
    """GFLOP/s of the matmul the step is compared against on `device` (module docstring), and its dtype:
    float32 on the CPU, the path's precision on CUDA."""
    dtype = torch.bfloat16 if device.type == "cuda" and precision == "bf16" else torch.float32
    q = torch.randn(4096, 64, device=device, dtype=dtype)
    peak, _ = matmul_gflops(q, torch.randn(items, 64, device=device, dtype=dtype), repeats=3)
    return peak, str(dtype).removeprefix("torch.")


def train_step_figures(preset: str, n_batches: int, rounds: int, extra: list[str] | None = None,
                       peak_items: int = PEAK_ITEMS_FOR_PEAK, device: torch.device | str = "cpu",
                       baseline_device: torch.device | str | None = None) -> dict[str, object]:
    """The `train_step_*` figures (module docstring) on synthetic preset `preset` (`extra`: more overrides;
    `peak_items`: the size of the matmul the step is compared against), stepped on `device`, and with
    `baseline_device` SASRec's default path there too."""
    device = resolve_device(str(device))
    overrides = {b: [f"dataset.preset={preset}", f"model={b}", "increc=na", *(extra or []), f"train.device={device}"]
                 for b in ("sasrec", "kuaiformer")}
    work = step_workload(overrides["sasrec"], n_batches)
    precision = resolve_precision(train_settings(work.cfg).levers.precision, device)
    figures: dict[str, object] = {"train_step_preset": preset, "train_step_batches": n_batches, "train_step_rounds": rounds,
                                  **device_figures("train_step", device), "train_step_precision": precision}
    for backbone, ov in overrides.items():
        w = work if backbone == "sasrec" else step_workload(ov, n_batches)
        reference = compose_app_config(ov + REFERENCE_OVERRIDES + MODEL_REFERENCE.get(backbone, []))
        s = paired_rounds(w, None, reference, rounds)
        figures[f"train_step_speedup_{backbone}_increc"] = s["speedup"]
        figures[f"train_step_{backbone}_default_steps_per_s"] = s["default"]
        figures[f"train_step_{backbone}_reference_steps_per_s"] = s["reference"]
        figures[f"train_step_{backbone}_round_ratios"] = s["ratios"]
    peak, dtype = matmul_peak(device, precision, peak_items)
    for path, cfg in (("default", None), ("reference", compose_app_config(overrides["sasrec"] + REFERENCE_OVERRIDES))):
        r = steps_per_second(work, cfg, count_flops=True)
        gflops = r["flops"] / r["seconds"] / 1e9
        figures[f"train_step_sasrec_{path}_gflops"] = gflops
        if path == "default":
            figures["train_step_sasrec_flops_per_step"] = r["flops"] / r["steps"]
            figures["train_step_fraction_of_matmul_peak"] = gflops / peak
        else:
            figures["train_step_fraction_of_matmul_peak_reference"] = gflops / peak
    figures["train_step_matmul_peak_gflops"] = peak
    figures["train_step_matmul_peak_dtype"] = dtype
    if baseline_device is not None:
        figures |= over_baseline(work, overrides["sasrec"], resolve_device(str(baseline_device)), rounds)
    return figures


def over_baseline(work: StepWorkload, overrides: list[str], baseline: torch.device, rounds: int) -> dict[str, object]:
    """SASRec's default path on the workload's device against the same path on `baseline` (module docstring)."""
    on_baseline = [o for o in overrides if not o.startswith("train.device=")] + [f"train.device={baseline}"]
    s = paired_rounds(work, None, compose_app_config(on_baseline), rounds)
    return {**device_figures("train_step_baseline", baseline),
            "train_step_sasrec_speedup_over_baseline_device": s["speedup"],
            "train_step_sasrec_baseline_steps_per_s": s["reference"],
            "train_step_sasrec_baseline_round_ratios": s["ratios"]}
