"""The model stages of a run: build a model, train it to its selected epoch, rank the evaluated requests.

- `standalone_base`: the basic tower trained alone with L_b (Base@K, Sup@K, SupR@K come from it; the
  Seed@K control trains a second one at seed + 1000). Cached per dataset, backbone config, training
  config and seed, and shared by every variant of a sweep.
  Its training log keeps how far its validation top K₀ still differs between requests (bench.evaluation.collapse).
- `trained_variant`: the variant's towers (IncRec-NA, IncRec, TB-ITG, ...), selected on validation
  requests by its own metric (PROTOCOL 3: Inc@K₀ against the selected base's validation ranking for
  an IncRec variant, the serving tower's Base@K₀ otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.engine.batches import TrainingSet
from bench.engine.build import build_model
from bench.pipeline.cache import StageCache, from_json_array, json_array
from bench.evaluation.collapse import collapse_message, ranking_spread
from bench.evaluation.evaluate import EvalSet, Ranker, selection_metric
from bench.engine.machine import cpu_vendor, gpu_identity
from bench.pipeline.prepare import Prepared, cache_parts
from bench.protocol.samples import Samples
from bench.config.schema import RESULT_NEUTRAL_TRAIN_KEYS, Train
from bench.engine.train import epoch_values, train
from bench.engine.levers import resolve_precision
from bench.tracking import Tracker
from models.increc import IncRec, Variant

log = logging.getLogger("bench")
NO_TRACKER = Tracker()  # logger=none: stateless, so one instance serves every call

BASE_STAGE = "base"


@dataclass
class Evaluation:
    """What the model stages rank: the test requests (scored once) and the validation requests (selection)."""

    ranker: Ranker
    test: EvalSet
    valid: EvalSet | None  # None without a validation split
    depth: int  # test rankings are this deep (2·max K + budget, at most the pool)
    k0: int  # the selection metric's K (the smallest of eval.ks)


@dataclass
class TrainedModel:
    test_ranked: np.ndarray  # [R_test, depth] the selected model's ranking of the test requests
    valid_ranked: np.ndarray | None  # [R_valid, K₀] a base's top K₀ of the validation requests (None: variants, no split)
    training: dict  # the training log: losses, epoch seconds, validation curve, best epoch
    model: IncRec | None = None  # the selected model, when asked for (keep_model; never from the stage cache)


def _fit(model: IncRec, ts: TrainingSet, train_cfg: Train, negatives: str, seed: int, ev: Evaluation, desc: str,
         base_valid_top: np.ndarray | None, rank_valid: bool, keep_model: bool, tracker: Tracker,
         role: str) -> TrainedModel:
    """Train to the selected epoch (early stopping on the validation requests, when on), then rank the test
    requests once, and the validation requests when `rank_valid` (the base: its top K₀ is what a variant's
    selection metric removes)."""
    evaluate, name = None, None
    if train_cfg.early_stopping and ev.valid is not None:  # run() refuses early stopping without validation rows
        name, evaluate = selection_metric(ev.ranker, ev.valid, ev.k0, base_valid_top)
    training = train(model, ts, train_cfg, seed, ev.ranker.device, desc=desc, evaluate=evaluate, negatives=negatives,
                     on_epoch=lambda epoch, values: tracker.epoch(role, epoch, values))
    training["selection_metric"] = name
    valid_ranked = ev.ranker(model, ev.valid.rows, ev.k0) if rank_valid and ev.valid is not None else None
    if valid_ranked is not None:  # a base: does its selected tower still tell requests apart?
        training["ranking"] = ranking_spread(valid_ranked)
        if training["ranking"]["collapsed"]:
            log.warning("%s: %s", desc, collapse_message(training["ranking"]))
    # the model is dropped unless asked for: on million-item pools each one holds a full item table
    return TrainedModel(ev.ranker(model, ev.test.rows, ev.depth), valid_ranked, training, model if keep_model else None)


def standalone_base(cfg: DictConfig, prep: Prepared, samples: Samples, ev: Evaluation, seed: int,
                    train_cfg: Train, cache: StageCache, timer, role: str = "base",
                    keep_model: bool = False, tracker: Tracker = NO_TRACKER) -> TrainedModel:
    """The base model trained alone with L_b and selected by its validation Base@K₀: trained here, or read
    from the stage cache (one entry per dataset, backbone config, training config, evaluated rows and seed)."""
    train_section = {k: v for k, v in OmegaConf.to_container(cfg.train, resolve=True).items()
                     if k not in RESULT_NEUTRAL_TRAIN_KEYS}
    key = cache.key(BASE_STAGE, **cache_parts(cfg, prep.fingerprint), seed=seed, device=str(ev.ranker.device),
                    cpu_vendor=cpu_vendor(), gpu=gpu_identity(ev.ranker.device), precision=resolve_precision(train_cfg.levers.precision, ev.ranker.device),
                    depth=ev.depth, k0=ev.k0, model=OmegaConf.to_container(cfg.model, resolve=True),
                    train=train_section, eval_batch=int(cfg.eval.batch_size),
                    valid_max_requests=cfg.eval.get("valid_max_requests"))
    valid_rows = np.zeros(0, np.int64) if ev.valid is None else ev.valid.rows
    cached = cache.load(BASE_STAGE, key, event=role)
    if (cached is not None and np.array_equal(cached["eval_rows"], ev.test.rows)
            and np.array_equal(cached["valid_rows"], valid_rows)):
        valid_ranked = None if ev.valid is None else cached["valid_ranked"]
        training = from_json_array(cached["training"])
        for i in range(len(training["loss"])):  # a cached base's epochs are logged as a trained one's are
            tracker.epoch(role, i + 1, epoch_values(training, i))
        return TrainedModel(cached["ranked"], valid_ranked, training)
    with timer(f"train_{role}"):
        model = build_model(cfg, prep.ds, Variant(name="off"), seed)
        ts = TrainingSet.build(samples, ev.ranker.profiles, prep.ds.n_items, ev.ranker.max_len, with_exposures=False)
        trained = _fit(model, ts, train_cfg, str(cfg.model.negatives), seed, ev, role, base_valid_top=None,
                       rank_valid=True, keep_model=keep_model, tracker=tracker, role=role)
    cache.save(BASE_STAGE, key, {"ranked": trained.test_ranked, "eval_rows": ev.test.rows, "valid_rows": valid_rows,
                                 "valid_ranked": np.zeros((0, ev.k0), np.int64) if trained.valid_ranked is None
                                 else trained.valid_ranked, "training": json_array(trained.training)})
    return trained


def trained_variant(cfg: DictConfig, prep: Prepared, samples: Samples, ev: Evaluation, variant: Variant, seed: int,
                    train_cfg: Train, base: TrainedModel, timer, keep_model: bool = False,
                    tracker: Tracker = NO_TRACKER) -> TrainedModel:
    """The variant's towers, selected by Inc@K₀ against the base's validation top K₀ (IncRec variants) or by
    the serving tower's Base@K₀ (TB-ITG, TB-boost)."""
    with timer("train_variant"):
        model = build_model(cfg, prep.ds, variant, seed)
        ts = TrainingSet.build(samples, ev.ranker.profiles, prep.ds.n_items, ev.ranker.max_len,
                               with_exposures=variant.alignment,
                               shuffle_labels_seed=seed if variant.shuffle_labels else None,
                               shuffle_within=variant.shuffle_within)
        trained = _fit(model, ts, train_cfg, str(cfg.model.negatives), seed, ev, f"increc={variant.name}",
                       base_valid_top=base.valid_ranked if variant.incremental else None, rank_valid=False,
                       keep_model=keep_model, tracker=tracker, role="variant")
    if ts.labels_changed is not None:  # a label control: how much of the labelling it actually changed (PROTOCOL 5)
        trained.training["labels_changed_share"] = ts.labels_changed["share"]
        trained.training["labels_changed"] = ts.labels_changed
    return trained
