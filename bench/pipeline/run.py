"""One experiment, stage by stage: data -> requests -> existing system -> samples -> train -> retrieve -> metrics.

A short orchestration: each stage's work lives in its module (bench.pipeline.prepare, bench.protocol.samples,
bench.pipeline.stages, bench.evaluation.evaluate, bench.pipeline.protocol_record). Base@K, Sup@K and SupR@K come from the
standalone base model, Inc@K, IncR@K and Exposure@K from the variant's serving tower, Seed@K from a
second base and SeedR@K / Seed2R@K (the A/A) from a second and a third (PROTOCOL 5); every model is selected on validation requests and scores the test
requests once.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bench.pipeline.cache import StageCache
from bench.config import int_list, resolve_ks
from bench.pipeline.validate import validate
from bench.errors import DataError
from bench.evaluation.evaluate import EvalSet, Ranker, per_request_arrays, ranking_depth, test_metrics
from bench.engine.machine import machine
from bench.evaluation.metrics import SEED2_OFFSET, SEED_OFFSET, Rankings, curve_ks, popularity_ranking, record_comparisons
from bench.pipeline.stages import Evaluation, standalone_base, trained_variant
from bench.config.schema import Logger, train_settings, typed_section
from bench.engine.build import variant_from_config
from bench.engine.device import start_job
from bench.pipeline.prepare import prepare
from bench.pipeline.protocol_record import protocol_record
from bench.pipeline.record import code_version, package_versions, write_json_atomic, write_npz_atomic
from bench.pipeline.resume import PER_REQUEST, finished_record
from bench.protocol.samples import sample_statistics, split_groups
from bench.config.tuned import check_tuned_data
from bench.tracking import Tracker, make_tracker
from bench.tracking.trackers import config_leaves

log = logging.getLogger("bench")


class StageTimer:
    """Wall seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        log.info("stage %s ...", name)
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        log.info("stage %s done in %.1f s", name, self.seconds[name])


def provenance(cfg: DictConfig, seed: int, overrides: list[str] | None, fingerprint: str, version: dict,
               device: torch.device) -> dict:
    """The fields every record starts with: what ran, on what data, with which code, where."""
    return {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": seed,
        "overrides": list(overrides or []),
        "data_fingerprint": fingerprint,
        "code_version": version,
        "versions": package_versions(),
        "machine": machine(device),  # dropout masks, and so metrics, can differ between CPU vendors (docs/running.md)
        "device": str(device),
    }


@dataclass
class RunResult:
    record: dict
    path: Path
    resumed: bool = False  # True when a finished record of the same config and code was found and kept


def run(cfg: DictConfig, out_dir: Path, overrides: list[str] | None = None) -> RunResult:
    """Run one experiment and write `out_dir/run.json` (and the per-request hit rates beside it).

    A finished record of the same config and code in `out_dir` is kept and returned instead
    (`resume: true`), which is what makes a re-launched sweep skip its finished jobs.
    `overrides`: the command-line overrides of the job (recorded, so a report can print its command).
    """
    validate(cfg)
    if bool(cfg.get("resume", True)) and (done := finished_record(cfg, out_dir)) is not None:
        log.info("finished already (same config, code, packages and data): %s", out_dir / "run.json")
        return RunResult(done, out_dir / "run.json", resumed=True)
    (out_dir / "run.json").unlink(missing_ok=True)  # a stale record must never sit beside new per-request values
    version = code_version()  # taken now: the code this run executes, even if the tree changes while it runs
    tracker = make_tracker(typed_section(cfg, "logger", Logger), out_dir) if cfg.get("logger") else Tracker()
    with closing(tracker):
        tracker.start(out_dir.name, config_leaves(OmegaConf.to_container(cfg, resolve=True)))
        result = _execute(cfg, out_dir, overrides, version, tracker)
        tracker.final(result.record["metrics"])
    return result


def _execute(cfg: DictConfig, out_dir: Path, overrides: list[str] | None, version: dict, tracker: Tracker) -> RunResult:
    """run()'s work once it has decided to compute: the stages, then the record."""
    timer = StageTimer()
    seed, device = start_job(cfg)
    variant = variant_from_config(cfg.increc)
    train_cfg = train_settings(cfg)
    cache = StageCache(cfg.cache.dir if cfg.cache.enabled else None)

    prep = prepare(cfg, cache, timer, bool(cfg.train.progress))
    check_tuned_data(cfg, prep.fingerprint)
    ds, req = prep.ds, prep.req
    ks = resolve_ks(cfg.eval.ks, ds.n_items)
    grid = curve_ks(ks, int(cfg.eval.curve_points))

    with timer("samples"):
        samples = split_groups(req, prep.retrieved, ds.n_items)
        stats = sample_statistics(samples, tabs=np.unique(ds.log["tab"].to_numpy()),
                                  primary_tabs=int_list(cfg.requests.primary_tabs, "requests.primary_tabs"))
        test = EvalSet.build(samples, "test")
        if len(test) == 0:
            raise DataError(f"none of the {int(req.is_test.sum())} test requests has an incremental target (non-empty ITG): "
                            "nothing to evaluate (check requests.test_days, requests.horizon_h and existing.budget)")
        if not samples.train_target_mask().any():
            raise DataError("no training request has a target (a positive within requests.horizon_h): nothing to train on")
        valid = EvalSet.build(samples, "valid", cfg.eval.get("valid_max_requests")) if req.is_valid.any() else None
        if valid is not None and len(valid) == 0:
            if train_cfg.early_stopping:
                raise DataError(f"none of the {int(req.is_valid.sum())} validation requests has an incremental target: "
                                "nothing for early stopping to select on (raise requests.valid_days, or set "
                                "train.early_stopping=false)")
            valid = None
        stats["rtg_by_channel"] = prep.existing_fits.get("rtg_by_channel")  # what each existing channel retrieves
        protocol = protocol_record(cfg, stats)
        # R_u of every request was needed for the RTG / ITG split, the statistics and the evaluation sets only;
        # on million-item pools it is the run's largest array (325k requests x 1000 items on KuaiRand-1K), so
        # it is released before training (reading it later fails loudly)
        samples.retrieved = prep.retrieved = None

    ranker = Ranker(samples, ds.profiles(), int(cfg.requests.max_len), device, int(cfg.eval.batch_size))
    ev = Evaluation(ranker, test, valid, ranking_depth(ks, prep.budget, ds.n_items), min(ks))
    training: dict[str, dict] = {}
    base = standalone_base(cfg, prep, samples, ev, seed, train_cfg, cache, timer, tracker=tracker)
    training["base"] = base.training
    rankings = {"base": base.test_ranked}
    if not variant.is_base:
        if bool(cfg.eval.get("seed_control", True)):  # the diversity control, and its A/A twin (PROTOCOL 5)
            second = standalone_base(cfg, prep, samples, ev, seed + SEED_OFFSET, train_cfg, cache, timer, role="seed_base",
                                     tracker=tracker)
            training["seed_base"], rankings["seed_base"] = second.training, second.test_ranked
            if bool(cfg.eval.get("aa_control", True)):
                third = standalone_base(cfg, prep, samples, ev, seed + SEED2_OFFSET, train_cfg, cache, timer,
                                        role="seed2_base", tracker=tracker)
                training["seed2_base"], rankings["seed2_base"] = third.training, third.test_ranked
        trained = trained_variant(cfg, prep, samples, ev, variant, seed, train_cfg, base, timer, tracker=tracker)
        training["variant"], rankings["variant"] = trained.training, trained.test_ranked

    pos = req.positives
    pop = popularity_ranking(pos.item[pos.time_ms < req.first_valid_ms], ds.n_items,  # training period; PopR skips R_u
                             min(2 * max(ks) + prep.budget, ds.n_items))
    scored = test_metrics(Rankings(popularity=np.broadcast_to(pop, (len(test), len(pop))), retrieved=test.retrieved,
                                   pool_size=ds.n_items, **rankings),
                          test, ks, grid, n_tabs=int(ds.log["tab"].max()) + 1)
    write_npz_atomic(out_dir / PER_REQUEST, per_request_arrays(test.rows, scored.counts, users=req.user[test.rows]),
                     compressed=True)
    record = {
        **provenance(cfg, seed, overrides, prep.fingerprint, version, device),
        "protocol": protocol,
        "stage_seconds": timer.seconds,
        "cache": cache.events,
        "pool_size": ds.n_items,
        "ks": ks,
        "existing_budget": prep.budget,
        "existing_fits": prep.existing_fits,
        "eval_requests": len(test),
        "valid_requests": 0 if valid is None else len(valid),
        "valid_subset": None if valid is None or cfg.eval.get("valid_max_requests") is None
        else {"max_requests": int(cfg.eval.valid_max_requests), "of": int(len(samples.eval_rows("valid")))},
        "dataset_stats": ds.stats,
        "sample_stats": stats,
        "training": training,
        "metrics": scored.metrics,
        "comparisons": record_comparisons(scored.metrics, ks),  # PROTOCOL 5's comparisons this record holds
        "curve": scored.curve,
        "hits_by_tab": scored.by_tab,
        "per_request": PER_REQUEST,
    }
    path = write_json_atomic(record, out_dir / "run.json")
    return RunResult(record, path)
