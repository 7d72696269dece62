"""One experiment, stage by stage: data -> requests -> existing system -> samples -> train -> retrieve -> metrics.

Base@K and Sup@K come from the standalone base model (the basic tower trained alone with L_b);
Inc@K and Exposure@K from the variant's serving tower, de-duplicated against the base's top K.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.batches import TrainingSet, user_input
from bench.cache import StageCache, from_json_array, json_array
from bench.config import resolve_ks, validate
from bench.data.schema import Dataset
from bench.errors import ConfigError, DataError
from bench.machine import cpu_vendor, machine
from bench.metrics import (base_sup_counts, curve_ks, hits_by_tab, incremental_channels, incremental_counts,
                           popularity_ranking, summarise)
from bench.prepare import Prepared, cache_parts, prepare
from bench.ragged import Ragged
from bench.record import code_version, package_versions, write_json_atomic, write_npz_atomic
from bench.resume import PER_REQUEST, finished_record
from bench.retrieve import top_k
from bench.samples import Samples, sample_statistics, split_groups
from bench.train import TrainConfig, train
from models.increc import IncRec, Variant
from models.item_tower import ItemTower

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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def deterministic_torch(fill_uninitialized_memory: bool = False) -> None:
    """Deterministic kernels (same config and seed, same metrics on CPU).

    Deterministic mode also fills every new tensor with NaN before an op overwrites it, a guard
    against reading uninitialised memory that no op here relies on; it cost about 9% of a SASRec
    training step (py-spy, Pure-sized preset), so it is off. Metrics are the same either way
    (tests/test_end_to_end.py).
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = fill_uninitialized_memory


def variant_from_config(cfg: DictConfig) -> Variant:
    fields = OmegaConf.to_container(cfg, resolve=True)
    try:
        return Variant(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"increc: {exc}") from None


SPARSE_AUTO_ITEMS = 1_000_000  # train.sparse_item_grads=auto: sparse gradients from this pool size on


def sparse_item_grads(setting: bool | str, n_items: int) -> bool:
    """Whether the item tower's embeddings get sparse gradients (train.sparse_item_grads).

    Dense AdaGrad reads and writes the whole [n_items, d] table every step; sparse touches only the
    rows a batch read. Both give the same updates up to float summation order of repeated rows, and
    dense is faster for small pools, hence auto = sparse from SPARSE_AUTO_ITEMS items on.
    """
    return n_items >= SPARSE_AUTO_ITEMS if setting == "auto" else bool(setting)


def build_model(cfg: DictConfig, ds: Dataset, variant: Variant, seed: int) -> IncRec:
    """A fresh IncRec of the configured backbone: shared item tower, one user tower per role."""
    torch.manual_seed(seed)
    item_tower = ItemTower(
        torch.tensor(ds.item_features()),  # a copy: cached frames may be read-only
        list(Dataset.cardinalities(ds.items).values()),
        dim=int(cfg.model.dim),
        use_side_features=bool(cfg.model.item_side_features),
        sparse=sparse_item_grads(cfg.train.get("sparse_item_grads", "auto"), ds.n_items),
        **({"normalize": True} if cfg.model.get("item_normalize", False) else {}),
    )
    profile_cards = list(Dataset.cardinalities(ds.users).values())
    n_scenarios = int(ds.log["tab"].max()) + 1
    make_tower = instantiate(cfg.model.user_tower)
    try:
        return IncRec(item_tower, lambda: make_tower(item_tower=item_tower, profile_cardinalities=profile_cards,
                                                     n_scenarios=n_scenarios), variant,
                      interests=str(cfg.model.get("interest_scoring", "closest")))
    except (TypeError, ValueError) as exc:  # a combination of user-tower settings its constructor refuses
        raise ConfigError(f"model.user_tower ({cfg.model.name}): {' '.join(str(exc).split())}") from None


@torch.no_grad()
def rank_pool(model: IncRec, samples: Samples, profiles: np.ndarray, rows: np.ndarray, k: int, max_len: int,
              device: torch.device, batch: int) -> np.ndarray:
    """[len(rows), k] the serving tower's top k of the whole pool for the given requests."""
    model.eval()
    items = model.item_tower.all_items().float().cpu().numpy()  # [N, D]
    users = [model.serve(user_input(samples, profiles, rows[lo : lo + batch], max_len).to(device)).float().cpu().numpy()
             for lo in range(0, len(rows), batch)]  # each [b, K, D]
    return top_k(np.concatenate(users), items, k)


@dataclass
class RunResult:
    record: dict
    path: Path
    resumed: bool = False  # True when a finished record of the same config and code was found and kept


BASE_STAGE = "base"


def standalone_base(cfg: DictConfig, prep: Prepared, samples: Samples, eval_rows: np.ndarray, ks: list[int], seed: int,
                    device: torch.device, train_cfg: TrainConfig, cache: StageCache,
                    timer: StageTimer) -> tuple[np.ndarray, dict]:
    """The base model's top 2·max(K) for every evaluated request [R, 2K] and its training log: trained here,
    or read from the stage cache (one entry per dataset, backbone config, training config and seed)."""
    ds, max_len = prep.ds, int(cfg.requests.max_len)
    train_section = {k: v for k, v in OmegaConf.to_container(cfg.train, resolve=True).items() if k != "progress"}
    key = cache.key(BASE_STAGE, **cache_parts(cfg, prep.fingerprint), seed=seed, device=str(device),
                    cpu_vendor=cpu_vendor(), ks=ks, model=OmegaConf.to_container(cfg.model, resolve=True),
                    train=train_section,
                    eval_batch=int(cfg.eval.batch_size))
    cached = cache.load(BASE_STAGE, key)
    if cached is not None and np.array_equal(cached["eval_rows"], eval_rows):
        return cached["ranked"], from_json_array(cached["training"])
    profiles = ds.profiles()
    with timer("train_base"):
        base = build_model(cfg, ds, Variant(name="off"), seed)
        ts = TrainingSet.build(samples, profiles, ds.n_items, max_len, with_exposures=False)
        training_log = train(base, ts, train_cfg, seed, device, desc="base")
    with timer("retrieve_base"):
        ranked = rank_pool(base, samples, profiles, eval_rows, 2 * max(ks), max_len, device, int(cfg.eval.batch_size))
    cache.save(BASE_STAGE, key, {"ranked": ranked, "eval_rows": eval_rows, "training": json_array(training_log)})
    return ranked, training_log


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
    timer = StageTimer()
    if cfg.train.get("threads") is not None:
        torch.set_num_threads(int(cfg.train.threads))
    seed = int(cfg.seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    deterministic_torch()
    device = resolve_device(str(cfg.train.device))
    progress = bool(cfg.train.progress)
    variant = variant_from_config(cfg.increc)
    train_cfg = TrainConfig(epochs=int(cfg.train.epochs), batch_size=int(cfg.train.batch_size), lr=float(cfg.train.lr),
                            n_negatives=int(cfg.train.n_negatives), negatives=str(cfg.model.get("negatives", "uniform")),
                            progress=progress, max_batches=cfg.train.get("max_batches"))
    max_len = int(cfg.requests.max_len)
    cache = StageCache(cfg.cache.dir if cfg.cache.enabled else None)

    prep = prepare(cfg, cache, timer, progress)
    ds, req = prep.ds, prep.req
    ks = resolve_ks(cfg.eval.ks, ds.n_items)
    grid = curve_ks(ks, int(cfg.eval.curve_points))

    with timer("samples"):
        samples = split_groups(req, prep.retrieved, ds.n_items)
        stats = sample_statistics(samples, tabs=np.unique(ds.log["tab"].to_numpy()))
        eval_rows = samples.eval_rows()
        if len(eval_rows) == 0:
            raise DataError(f"none of the {int(req.is_test.sum())} test requests has an incremental target (non-empty ITG): "
                            "nothing to evaluate (check requests.test_days, requests.horizon_h and existing.budget)")
        if not samples.train_target_mask().any():
            raise DataError("no training request has a target (a positive within requests.horizon_h): nothing to train on")
        itg_eval, etg_eval = samples.itg.take(eval_rows), req.exposures.take(eval_rows)
        itg_tabs = Ragged(samples.itg.indptr, req.target_tabs[samples.is_itg]).take(eval_rows).values  # tab per ITG item
        n_tabs = int(ds.log["tab"].max()) + 1
        profiles = ds.profiles()

    pos = req.positives
    pop = popularity_ranking(pos.item[pos.time_ms < req.first_test_ms], ds.n_items, 2 * max(ks))
    counts = base_sup_counts(np.broadcast_to(pop, (len(eval_rows), len(pop))), itg_eval, ks, prefix="Pop_")
    training: dict[str, dict] = {}

    base_ranked, training["base"] = standalone_base(cfg, prep, samples, eval_rows, ks, seed, device, train_cfg,
                                                    cache, timer)
    counts |= base_sup_counts(base_ranked, itg_eval, grid)
    tab_hits = {f"Base@{k}": base_ranked[:, :k] for k in ks} | {f"Sup@{k}": base_ranked[:, k : 2 * k] for k in ks}

    if not variant.is_base:
        with timer("train_variant"):
            model = build_model(cfg, ds, variant, seed)
            ts = TrainingSet.build(samples, profiles, ds.n_items, max_len, with_exposures=variant.alignment)
            training["variant"] = train(model, ts, train_cfg, seed, device, desc=f"increc={variant.name}")
        with timer("retrieve_variant"):
            ranked = rank_pool(model, samples, profiles, eval_rows, 2 * max(ks), max_len, device, int(cfg.eval.batch_size))
            counts |= incremental_counts(ranked, base_ranked, itg_eval, etg_eval, grid)
            tab_hits |= {f"Inc@{k}": channel for k, channel in incremental_channels(ranked, base_ranked, ks).items()}

    summary = summarise(counts)
    metrics: dict[str, float | None] = {}
    for k in ks:
        for name in ("Base", "Sup", "Inc", "Exposure", "Pop_Base", "Pop_Sup"):
            metrics[f"{name}@{k}"] = summary.get(f"{name}@{k}")
            metrics[f"micro_{name}@{k}"] = summary.get(f"micro_{name}@{k}")
    curve = {name: {str(k): summary[f"{name}@{k}"] for k in grid} for name in ("Base", "Sup", "Inc") if f"{name}@{grid[0]}" in summary}
    by_tab = {"ITG": np.bincount(itg_tabs, minlength=n_tabs).tolist()}
    by_tab |= {name: hits_by_tab(r, itg_eval, itg_tabs, n_tabs).tolist() for name, r in tab_hits.items()}

    write_npz_atomic(out_dir / PER_REQUEST, {"rows": eval_rows.astype(np.int64),
                                             **{f"{name}/hits": c.hits for name, c in counts.items() if "@" in name},
                                             **{f"{name}/size": c.size for name, c in counts.items() if "@" in name}})
    record = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": seed,
        "overrides": list(overrides or []),
        "data_fingerprint": prep.fingerprint,
        "code_version": version,
        "versions": package_versions(),
        "machine": machine(),  # dropout masks, and so metrics, can differ between CPU vendors (README)
        "device": str(device),
        "stage_seconds": timer.seconds,
        "cache": cache.events,
        "pool_size": ds.n_items,
        "ks": ks,
        "existing_budget": prep.budget,
        "eval_requests": int(len(eval_rows)),
        "dataset_stats": ds.stats,
        "sample_stats": stats,
        "training": training,
        "metrics": metrics,
        "curve": curve,
        "hits_by_tab": by_tab,
        "per_request": PER_REQUEST,
    }
    path = write_json_atomic(record, out_dir / "run.json")
    return RunResult(record, path)


def format_table(record: dict) -> str:
    """The console summary: per K, the mean of per-request ratios and the micro ratio (all hits / all items)."""
    cfg, m = record["config"], record["metrics"]
    head = (f"dataset={cfg['dataset']['name']} pool={record['pool_size']} items  model={cfg['model']['name']}  "
            f"increc={cfg['increc']['name']}  seed={record['seed']}  test requests with ITG={record['eval_requests']}")
    cols = ["Base", "Sup", "Inc", "Exposure", "Pop_Base", "Pop_Sup"]
    lines = [head, f"{'K':>6} {'':>5}" + "".join(f"{c:>10}" for c in cols)]
    for k in record["ks"]:
        for prefix, label in (("", "mean"), ("micro_", "micro")):
            cells = [m.get(f"{prefix}{c}@{k}") for c in cols]
            lines.append(f"{k:>6} {label:>5}" + "".join(f"{'—' if v is None else f'{v:.4f}':>10}" for v in cells))
    return "\n".join(lines)
