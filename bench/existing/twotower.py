"""`existing=twotower`: an embedding-based dual-tower channel, the third family the paper's existing system runs.

A standalone base model of any backbone (`model`, a conf/model/ name; YouTube-DNN by default) is
trained with L_b (paper eq. 2) on the requests before its cutoff, every target of theirs before the
cutoff (RTG and ITG alike: it is the base model of bench.pipeline.stages, with the run's `train`
settings, except a fixed `epochs` and no early stopping: nothing is selected on validation
requests), and R_u is its top `budget` of the whole pool for each request: by exact search (`index: exact`, as the
models under evaluation are ranked) or, on million-item pools where exact search for every request is
the run's largest cost, through an approximate IVF index (`index: ivf`, bench.evaluation.retrieve.IVFIndex, the
approximate retrieval paper 2.2.4 serves with); the record then holds its recall against exact search.
Test requests are never among its training requests.

When it is fit (an exception to `existing.fit=rolling`, which refits every day):
- `refit_days: null` (default) under `rolling`: once, on the training period (cutoff = the first
  validation millisecond; the first test millisecond without a validation split), and that one
  model retrieves for every request. A training request's own targets are then in the channel's
  training data, as under protocol v1's `train_period`; validation and test requests' are not.
- `refit_days: N` under `rolling`: the model is refit on the first fitted day and then every N days
  after it (the cutoff of a day is the latest refit day at or before it, counted in whole N-day steps
  from the first, gap days included); a day between refits reuses the last fit, so no request sees a
  model trained on its own day. A refit inside the validation period trains on the validation
  requests before its cutoff (as the other channels' daily fits hold their positives); a refit in the
  test period still leaves the test requests out.
- under `train_period` / `all`: one model at that mode's cutoff (the first test millisecond / after
  the last positive), trained on every non-test request before it, validation requests included.
The channel needs the requests and the dataset (profiles, item features), which it is given by
`bind` before its first fit (bench.existing.fit). Its R_u depends on the `train` settings, its model's
YAML, the device and the kind of CPU, as every trained model does: `cache_part` puts them in the
prepared stage's cache key.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bench.errors import ConfigError
from bench.existing.channel import FitData, check_positive
from bench.protocol.ragged import Ragged
from bench.protocol.requests import DAY_MS


class TwoTowerChannel:
    """The channel contract (bench.existing.channel) over a standalone base model."""

    needs_binding = True  # bench.pipeline.prepare calls bind(cfg, ds, req) before the first fit

    def __init__(self, model: str = "youtube_dnn", epochs: int = 4, refit_days: int | None = None, seed: int = 0,
                 index: str = "exact", ivf_lists: int | None = None, ivf_probe: int = 32) -> None:
        from bench.config import CONF_DIR

        if not (CONF_DIR / "model" / f"{model}.yaml").exists():
            names = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
            raise ValueError(f"model={model!r}: no conf/model/{model}.yaml; choose one of {', '.join(names)}")
        check_positive("epochs", epochs, what="must be at least 1")
        check_positive("refit_days", refit_days, allow_none=True, what="at least 1 (days), or null for one fit")
        if index not in INDEXES:
            raise ValueError(f"index={index!r}: choose one of {', '.join(INDEXES)}")
        check_positive("ivf_lists", ivf_lists, allow_none=True, integer=True, what="an integer of at least 1, or null for 4·sqrt(N)")
        check_positive("ivf_probe", ivf_probe, integer=True, what="an integer of at least 1")
        self.model, self.epochs, self.refit_days, self.seed = str(model), int(epochs), refit_days, int(seed)
        self.search = Search(str(index), None if ivf_lists is None else int(ivf_lists), int(ivf_probe), int(seed))
        self._bound: tuple | None = None
        self._mode = "rolling"  # existing.fit, read at bind
        self._last: tuple[int, "FittedTwoTower"] | None = None  # (cutoff, fit) to reuse between refits
        self._anchor: int | None = None

    def _model_yaml(self):
        from bench.config import CONF_DIR

        return CONF_DIR / "model" / f"{self.model}.yaml"

    def cache_part(self, cfg: DictConfig) -> dict:
        """What R_u reads outside the `existing` section (bench.pipeline.prepare.cache_parts puts it in the cache key)."""
        from bench.config.schema import RESULT_NEUTRAL_TRAIN_KEYS
        from bench.engine.machine import cpu_vendor, gpu_identity
        from bench.engine.device import resolve_device

        train = {k: v for k, v in OmegaConf.to_container(cfg.train, resolve=True).items()
                 if k not in RESULT_NEUTRAL_TRAIN_KEYS}
        device = resolve_device(str(cfg.train.device))
        return {"train": train, "model_yaml": self._model_yaml().read_text(), "cpu_vendor": cpu_vendor(),
                "gpu": gpu_identity(device), "device": str(device), "eval_batch": int(cfg.eval.batch_size)}

    def bind(self, cfg: DictConfig, ds, req) -> None:
        """The run's config, dataset and requests, which training and ranking read."""
        from bench.config import compose

        sub = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        sub.model = compose(f"model={self.model}").model  # the backbone's YAML through its schema; its
        # interpolations (the history length) read this run's sections
        sub.train.early_stopping = False
        sub.train.epochs = self.epochs
        self._bound = (sub, ds, req)
        self._mode = str(cfg.existing.get("fit", "rolling"))
        self._last, self._anchor = None, None
        if self.search.lists is not None and self.search.lists > ds.n_items:
            raise ConfigError(f"existing.ivf_lists={self.search.lists}: at most the pool's {ds.n_items} items")

    def fit_cutoff(self, cutoff_ms: int) -> int:
        """The cutoff the model used for a fit asked at `cutoff_ms` is trained with (module docstring)."""
        _, _, req = self._bound
        if self._mode != "rolling":  # train_period / all: their one fit, at their cutoff
            return int(cutoff_ms)
        if self.refit_days is None:
            return int(req.first_valid_ms)
        if self._anchor is None:
            self._anchor = int(cutoff_ms)
        step = int(self.refit_days) * DAY_MS
        return self._anchor + (int(cutoff_ms) - self._anchor) // step * step

    def fit(self, data: FitData, n_items: int) -> "FittedTwoTower":
        if self._bound is None:
            raise RuntimeError("TwoTowerChannel.fit before bind(cfg, ds, req)")
        cutoff = self.fit_cutoff(data.cutoff_ms)
        if self._last is not None and self._last[0] == cutoff:
            return self._last[1]
        self._last = None  # the previous fit (and its index) is freed before the next model trains
        fitted = self._train(cutoff)
        self._last = (cutoff, fitted)
        return fitted

    def _train(self, cutoff: int) -> "FittedTwoTower":
        from bench.engine.batches import TrainingSet
        from bench.config.schema import train_settings
        from bench.engine.build import build_model
        from bench.protocol.samples import Samples
        from bench.engine.train import train
        from bench.engine.device import resolve_device
        from models.increc import Variant

        cfg, ds, req = self._bound
        # the requests before the cutoff are its training split, their targets before it its labels
        view = dataclasses.replace(req, is_valid=(req.t1 >= cutoff) & ~req.is_test, first_valid_ms=int(cutoff))
        samples = Samples(view, None, np.ones(len(req.targets.values), dtype=bool))
        profiles = ds.profiles()
        max_len = int(cfg.requests.max_len)
        device = resolve_device(str(cfg.train.device))
        ts = TrainingSet.build(samples, profiles, ds.n_items, max_len, with_exposures=False)
        if len(ts.rows) == 0:
            return FittedTwoTower(None, samples, profiles, max_len, device, int(cfg.eval.batch_size), cutoff, {},
                                  self.search)
        state = np.random.get_state()
        cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # the run's own random streams (CPU, and its GPU's) stay as they were
            model = build_model(cfg, ds, Variant(name="off"), self.seed)
            log = train(model, ts, train_settings(cfg), self.seed, device, desc=f"existing twotower ({self.model})",
                        negatives=str(cfg.model.negatives))
        np.random.set_state(state)
        return FittedTwoTower(model, samples, profiles, max_len, device, int(cfg.eval.batch_size), cutoff, log,
                              self.search)


INDEXES = ("exact", "ivf")
RECALL_ROWS = 1000  # requests of the first retrieval whose approximate R_u is checked against exact search


@dataclasses.dataclass(frozen=True)
class Search:
    """How R_u is searched: `exact` (the whole pool, as the models under evaluation are ranked) or `ivf`
    (bench.evaluation.retrieve.IVFIndex: `lists` inverted lists, null for about 4·sqrt(N); `probe` scanned per query)."""

    index: str
    lists: int | None
    probe: int
    seed: int


@dataclasses.dataclass
class FittedTwoTower:
    model: object | None  # the trained IncRec (base only); None when no request lay before the cutoff
    samples: object
    profiles: np.ndarray
    max_len: int
    device: object
    batch: int
    cutoff_ms: int
    training: dict
    search: Search
    _index: object | None = None  # the IVF index over this model's item vectors, built at the first retrieval
    _details: dict = dataclasses.field(default_factory=dict)

    def retrieve(self, history: Ragged, budget: int, rows: np.ndarray | None = None, progress: bool = False) -> Ragged:
        if rows is None:
            raise ValueError("the two-tower channel retrieves for request rows (bench.existing.fit passes them)")
        rows = np.asarray(rows, dtype=np.int64)
        if self.model is None or len(rows) == 0:
            return Ragged(np.zeros(len(rows) + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
        from bench.evaluation.evaluate import pool_vectors, rank_pool
        from bench.evaluation.retrieve import IVFIndex, recall_against_exact, top_k

        if self.search.index == "exact":  # as evaluation ranks: faiss on the CPU, torch.topk kept on a CUDA device;
            # the item vectors are rebuilt per call, not held: [N, D] on 1M-item pools
            top = rank_pool(self.model, self.samples, self.profiles, rows, int(budget), self.max_len, self.device,
                            self.batch)  # [R, budget] best first
        elif self._index is None:  # built once per fitted model; it holds the only copy of the item vectors
            items = pool_vectors(self.model)  # [N, D]
            self._index = IVFIndex(items, self.search.lists, self.search.probe, self.search.seed)
            users = self._users(rows)  # [R, K, D]
            top = self._index.top_k(users, int(budget))  # [R, budget] best first, -1 past what the lists held
            n_check = min(RECALL_ROWS, len(rows))
            recall = recall_against_exact(top[:n_check], top_k(users[:n_check], items, int(budget)))
            self._details = {"index": "ivf", "lists": self._index.lists, "probe": self._index.probe,
                             "build_seconds": round(self._index.build_seconds, 3), "recall_rows": n_check,
                             "recall_at_budget": round(recall, 4)}
        else:
            top = self._index.top_k(self._users(rows), int(budget))
        top = np.sort(top, axis=1)  # each row a set in item-id order, its -1 padding first
        row, col = np.nonzero(top >= 0)
        return Ragged.from_rows(row, top[row, col].astype(np.int32), len(rows))

    def _users(self, rows: np.ndarray) -> np.ndarray:
        """[R, K, D] float32 the fitted model's user vectors of `rows`, on the host (the IVF index searches there)."""
        from bench.evaluation.evaluate import serve_vectors

        return serve_vectors(self.model, self.samples, self.profiles, rows, self.max_len, self.device, self.batch)

    def describe(self) -> dict:
        """What the record keeps about this fit's search: the IVF index's size, build seconds and its recall
        against exact search on the first RECALL_ROWS requests this fit retrieved for (empty for exact
        search). The build and that check are inside the channel's retrieve seconds."""
        return dict(self._details)
