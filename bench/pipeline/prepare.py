"""The model-independent stages, cached as one entry: data -> requests (PROTOCOL 1) -> existing system (2).

Every variant, backbone and seed of a dataset shares these, so a sweep computes them once: the
cache key is the data fingerprint, the code digest, the `dataset`, `requests` and `existing`
config sections, and whatever else a channel's R_u reads (a trained channel's `cache_part`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.pipeline.cache import StageCache, from_json_array, json_array, pack_dataclass, pack_frame, unpack_dataclass, unpack_frame
from bench.config import int_list, resolve_ks
from bench.data import dataset_files, load_dataset
from bench.data.schema import Dataset
from bench.errors import DataError
from bench.existing.channel import build_channels
from bench.existing.fit import existing_retrieval
from bench.existing.multi import channel_statistics
from bench.protocol.ragged import Ragged
from bench.pipeline.record import data_fingerprint
from bench.protocol.requests import Requests, build_requests

STAGE = "prepared"


@dataclass
class Prepared:
    """A dataset with its requests and the existing system's retrieval R_u per request."""

    ds: Dataset
    req: Requests
    retrieved: Ragged | None  # R_u per request (None once bench.pipeline.run has released it)
    budget: int  # items the existing system retrieves per request at most (the channels' budgets summed)
    fingerprint: str  # sha256 of the data files
    existing_fits: dict = field(default_factory=dict)  # how R_u was fit (existing.fit): bench.existing.fit's info


def _pack(p: Prepared) -> dict[str, np.ndarray]:
    meta = {"name": p.ds.name, "stats": p.ds.stats, "files": [str(f) for f in p.ds.files], "budget": p.budget,
            "existing_fits": p.existing_fits}
    return (pack_frame(p.ds.log, "log") | pack_frame(p.ds.items, "items") | pack_frame(p.ds.users, "users")
            | pack_dataclass(p.req, "req") | pack_dataclass(p.retrieved, "retrieved") | {"meta": json_array(meta)})


def _unpack(arrays: dict[str, np.ndarray], fingerprint: str) -> Prepared:
    meta = from_json_array(arrays["meta"])
    ds = Dataset(name=meta["name"], log=unpack_frame(arrays, "log"), items=unpack_frame(arrays, "items"),
                 users=unpack_frame(arrays, "users"), stats=meta["stats"], files=[Path(f) for f in meta["files"]])
    return Prepared(ds, unpack_dataclass(Requests, arrays, "req"), unpack_dataclass(Ragged, arrays, "retrieved"),
                    int(meta["budget"]), fingerprint, meta.get("existing_fits", {}))


def check_requests(req: Requests, ds: Dataset, cfg: DictConfig) -> None:
    """Degenerate data ends here with a one-line DataError saying what is missing (PROTOCOL section 1)."""
    days = int(cfg.requests.test_days)
    tabs = list(int_list(cfg.requests.primary_tabs, "requests.primary_tabs"))
    if req.first_test_ms <= int(ds.log["time_ms"].min()):
        raise DataError(f"the log spans no more than requests.test_days={days} day(s): no training period")
    if len(req.positives.item) == 0:
        raise DataError(f"the log has no positive ({cfg.dataset.label} = 1): nothing to learn or to evaluate")
    if not req.is_test.any():
        last = ds.log["tab"].to_numpy()[ds.log["time_ms"].to_numpy() >= req.first_test_ms]
        raise DataError(f"no test request: no impression in the primary scenario(s) {tabs} on the last {days} day(s) "
                        f"(scenarios seen there: {sorted(set(last.tolist()))}); see requests.primary_tabs and test_days")
    valid_days = int(cfg.requests.get("valid_days", 0))
    if req.first_valid_ms <= int(ds.log["time_ms"].min()):
        raise DataError(f"the log spans no more than requests.test_days + requests.valid_days = {days + valid_days} "
                        "day(s): no training period; lower requests.valid_days")
    if valid_days and not req.is_valid.any():
        raise DataError(f"no validation request: no impression in the primary scenario(s) {tabs} on the "
                        f"{valid_days} day(s) before the test period; see requests.valid_days")
    if not req.is_train.any():
        raise DataError(f"no training request: every request in the primary scenario(s) {tabs} falls on the last "
                        f"{days + valid_days} day(s); lower requests.test_days or requests.valid_days")


def cache_parts(cfg: DictConfig, fingerprint: str) -> dict:
    """What the prepared stage depends on (the base-model stage extends these): the config sections it
    reads, and what each channel reads outside them (`cache_part`, e.g. bench.existing.twotower's)."""
    channels = {c.name: c.channel.cache_part(cfg) for c in build_channels(cfg.existing, n_items=1)
                if hasattr(c.channel, "cache_part")}
    return {"fingerprint": fingerprint, **{s: OmegaConf.to_container(cfg[s], resolve=True)
                                           for s in ("dataset", "requests", "existing")},
            **({"existing_channels": channels} if channels else {})}


def load_requests(cfg: DictConfig, timer, progress: bool) -> tuple[Dataset, Requests]:
    """The dataset and its requests (PROTOCOL section 1), checked: everything the existing system reads."""
    with timer("load"):
        ds = load_dataset(cfg.dataset, progress=progress)
    resolve_ks(cfg.eval.ks, ds.n_items)  # K too large for the pool: say so before the long stages
    with timer("requests"):
        req = build_requests(
            ds.log,
            primary_tabs=int_list(cfg.requests.primary_tabs, "requests.primary_tabs"),
            session_gap_ms=int(cfg.requests.session_gap_min * 60_000),
            horizon_ms=int(cfg.requests.horizon_h * 3_600_000),
            max_len=int(cfg.requests.max_len),
            test_days=int(cfg.requests.test_days),
            valid_days=int(cfg.requests.get("valid_days", 0)),
            target_tabs=str(cfg.requests.get("target_tabs", "all")),
        )
        check_requests(req, ds, cfg)
    return ds, req


def prepare(cfg: DictConfig, cache: StageCache, timer, progress: bool) -> Prepared:
    """Load the data, build the requests and run the existing system, or read all three from the cache."""
    with timer("fingerprint"):
        fingerprint = data_fingerprint(dataset_files(cfg.dataset, progress=progress))
    key = cache.key(STAGE, **cache_parts(cfg, fingerprint))
    arrays = cache.load(STAGE, key)
    if arrays is not None:
        return _unpack(arrays, fingerprint)

    ds, req = load_requests(cfg, timer, progress)
    with timer("existing"):
        channels = build_channels(cfg.existing, ds.n_items)
        for c in channels:
            if getattr(c.channel, "needs_binding", False):  # a trained channel reads the requests and the dataset
                c.channel.bind(cfg, ds, req)
        retrieved, by_channel, existing_fits = existing_retrieval(
            req.positives, req.history(), req.t1, ds.n_items, fit=str(cfg.existing.get("fit", "rolling")),
            first_test_ms=req.first_test_ms, channels=channels, progress=progress)
        existing_fits["rtg_by_channel"] = channel_statistics(req, retrieved, by_channel, ds.n_items)
        del by_channel
    budget = sum(c.budget for c in channels)  # the most items R_u can hold
    prepared = Prepared(ds, req, retrieved, budget, fingerprint, existing_fits)
    cache.save(STAGE, key, _pack(prepared))
    return prepared
