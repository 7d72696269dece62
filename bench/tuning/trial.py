"""One tuning trial: the standalone base trained to early stopping on the validation requests; its objective.

The objective is the base's protocol-v2 selection metric, Base@K₀ on the validation requests
(PROTOCOL 3), at its best epoch. A trial never scores a test request, and cannot: the test
requests' targets and exposures are dropped from the requests before anything else reads them
(`without_test_truth`), no test `EvalSet` is built, and the only ranker the trial holds refuses any
request outside the validation set (`ValidationOnlyRanker`). The trial's record,
`trial.json` in its job directory, holds the config, the seed, the data fingerprint, the code
version, the machine, the training log and the objective. A trial whose selected tower has collapsed
(the same top K₀ for half the validation requests or more, bench.evaluation.collapse) is rejected: its record
says why, it returns the worst objective (so it counts in the budget and steers the sampler away)
and the search never picks it (bench.tuning.outputs).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from bench.engine.batches import TrainingSet
from bench.pipeline.cache import StageCache
from bench.evaluation.collapse import collapse_message, ranking_spread
from bench.config import resolve_ks
from bench.pipeline.validate import validate
from bench.errors import ConfigError, DataError
from bench.evaluation.evaluate import EvalSet, Ranker, selection_metric
from bench.config.schema import train_settings
from bench.engine.build import build_model
from bench.pipeline.prepare import prepare
from bench.pipeline.record import code_version, write_json_atomic
from bench.protocol.requests import Requests
from bench.protocol.samples import split_groups
from bench.engine.train import train
from models.increc import Variant

log = logging.getLogger("bench")

TRIAL_RECORD = "trial.json"
REJECTED_OBJECTIVE = 0.0  # what a rejected trial returns: the worst hit rate, so the sampler steers away from its region


class TestRowsRefused(RuntimeError):
    """A tuning trial was asked to rank a request that is not a validation request."""


@dataclass
class ValidationOnlyRanker(Ranker):
    """A Ranker that ranks validation requests only (a tuning trial's only ranker)."""

    allowed: np.ndarray | None = None  # [R_valid] the validation request ids, ascending

    def __call__(self, model, rows: np.ndarray, depth: int) -> np.ndarray:
        if self.allowed is None or not np.isin(rows, self.allowed).all():
            raise TestRowsRefused("a tuning trial ranks validation requests only")
        return super().__call__(model, rows, depth)


def without_test_truth(req: Requests) -> Requests:
    """The requests with every test request's targets X_u and exposures emptied (their histories stay:
    a history holds only positives before its request)."""
    keep_targets = ~req.is_test[req.targets.row_ids()]  # [T]
    keep_exposures = ~req.is_test[req.exposures.row_ids()]  # [E]
    return replace(req, targets=req.targets.mask(keep_targets), target_tabs=req.target_tabs[keep_targets],
                   target_times=req.target_times[keep_targets], exposures=req.exposures.mask(keep_exposures),
                   exposure_times=req.exposure_times[keep_exposures])


def run_trial(cfg: DictConfig, out_dir: Path, overrides: list[str] | None = None) -> float:
    """Train the standalone base of `cfg` to early stopping on the validation requests; write
    `out_dir/trial.json` and return the selection metric at the best epoch (the objective)."""
    validate(cfg)
    if not bool(cfg.train.early_stopping):
        raise ConfigError("experiment=tune selects on the validation metric at the best epoch: "
                          "train.early_stopping must stay true")
    from bench.pipeline.run import StageTimer, provenance
    from bench.engine.device import start_job

    start = time.perf_counter()
    version = code_version()
    seed, device = start_job(cfg)
    timer = StageTimer()
    prep = prepare(cfg, StageCache(cfg.cache.dir if cfg.cache.enabled else None), timer, bool(cfg.train.progress))
    ks = resolve_ks(cfg.eval.ks, prep.ds.n_items)
    with timer("samples"):
        samples = split_groups(without_test_truth(prep.req), prep.retrieved, prep.ds.n_items)
        if not prep.req.is_valid.any():
            raise ConfigError("experiment=tune needs validation requests: requests.valid_days must be at least 1")
        valid = EvalSet.build(samples, "valid", cfg.eval.get("valid_max_requests"))
        if len(valid) == 0:
            raise DataError(f"none of the {int(prep.req.is_valid.sum())} validation requests has an incremental "
                            "target: nothing to tune on")
        samples.retrieved = prep.retrieved = None  # R_u was needed for the groups and the validation set only
    ranker = ValidationOnlyRanker(samples, prep.ds.profiles(), int(cfg.requests.max_len), device,
                                  int(cfg.eval.batch_size), allowed=valid.rows)
    name, evaluate = selection_metric(ranker, valid, min(ks))
    with timer("train_base"):
        model = build_model(cfg, prep.ds, Variant(name="off"), seed)
        ts = TrainingSet.build(samples, ranker.profiles, prep.ds.n_items, ranker.max_len, with_exposures=False)
        training = train(model, ts, train_settings(cfg), seed, device, desc="tune", evaluate=evaluate,
                         negatives=str(cfg.model.negatives))
    value = training["best_value"]
    if value is None or not np.isfinite(value):
        raise DataError(f"the trial's validation {name} is not finite at any epoch")
    training["ranking"] = spread = ranking_spread(ranker(model, valid.rows, min(ks)))  # the selected epoch's tower
    record = {
        **provenance(cfg, seed, overrides, prep.fingerprint, version, device),
        "objective": {"metric": name, "split": "valid", "value": float(value), "best_epoch": training["best_epoch"],
                      "epochs_run": training["epochs_run"]},
        "valid_requests": len(valid),
        "stage_seconds": timer.seconds,
        "seconds": round(time.perf_counter() - start, 3),
        "training": {"base": training},
    }
    rejected = spread["collapsed"] and bool(cfg.tune.get("reject_collapsed", True))
    if rejected:  # a global ranking is no personalised tower: its record says why, and the search cannot pick it
        record["rejected"] = collapse_message(spread)
    write_json_atomic(record, out_dir / TRIAL_RECORD)
    if rejected:
        log.warning("trial rejected: %s (validation %s %.4f); the sampler is told %s", record["rejected"], name,
                    value, REJECTED_OBJECTIVE)
        return REJECTED_OBJECTIVE
    log.info("trial: validation %s = %.4f at epoch %s", name, value, training["best_epoch"])
    return float(value)
