"""Fixtures shared by the engine's tests."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from bench.engine.batches import TrainingSet, train_batch
from bench.pipeline.cache import StageCache
from bench.pipeline.prepare import prepare
from bench.protocol.samples import split_groups
from tests.conftest import compose_config


@pytest.fixture(scope="session")
def tiny_sasrec(tmp_path_factory):
    """(config, dataset, TrainingSet with exposures, a TrainBatch) of the tiny preset with SASRec and IncRec (all towers)."""
    cache = tmp_path_factory.mktemp("synthetic")
    cfg = compose_config("dataset.preset=tiny", "train.progress=false", f"dataset.cache_dir={cache}", "model=sasrec",
                         "increc=on")
    prep = prepare(cfg, StageCache(None), lambda name: contextlib.nullcontext(), False)
    samples = split_groups(prep.req, prep.retrieved, prep.ds.n_items)
    ts = TrainingSet.build(samples, prep.ds.profiles(), prep.ds.n_items, int(cfg.requests.max_len), with_exposures=True)
    batch = train_batch(ts, ts.rows[:64], 128, np.random.default_rng(0))
    return cfg, prep.ds, ts, batch
