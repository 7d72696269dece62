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
from bench.config import int_list, auto_budget, auto_ks, validate
from bench.data import load_dataset
from bench.data.schema import Dataset
from bench.errors import ConfigError, DataError
from bench.existing.itemcf import fit_itemcf, retrieve as itemcf_retrieve
from bench.metrics import base_sup, incremental, popularity_ranking
from bench.record import code_version, data_fingerprint, package_versions, write_json_atomic
from bench.requests import build_requests
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


def resolve_ks(ks, pool_size: int) -> list[int]:
    values = auto_ks(pool_size) if ks == "auto" else int_list(ks, "eval.ks")
    if 2 * max(values) > pool_size:
        raise ConfigError(f"eval.ks={values}: Sup@K and Inc@K need 2K <= pool size ({pool_size}); choose smaller K")
    return sorted(set(values))


def variant_from_config(cfg: DictConfig) -> Variant:
    fields = OmegaConf.to_container(cfg, resolve=True)
    try:
        return Variant(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"increc: {exc}") from None


def build_model(cfg: DictConfig, ds: Dataset, variant: Variant, seed: int) -> IncRec:
    """A fresh IncRec of the configured backbone: shared item tower, one user tower per role."""
    torch.manual_seed(seed)
    item_tower = ItemTower(
        torch.from_numpy(ds.item_features()),
        list(Dataset.cardinalities(ds.items).values()),
        dim=int(cfg.model.dim),
        use_side_features=bool(cfg.model.item_side_features),
        **({"normalize": True} if cfg.model.get("item_normalize", False) else {}),
    )
    profile_cards = list(Dataset.cardinalities(ds.users).values())
    n_scenarios = int(ds.log["tab"].max()) + 1
    make_tower = instantiate(cfg.model.user_tower)
    return IncRec(item_tower, lambda: make_tower(item_tower=item_tower, profile_cardinalities=profile_cards,
                                                 n_scenarios=n_scenarios), variant,
                  interests=str(cfg.model.get("interest_scoring", "closest")))


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


def run(cfg: DictConfig, out_dir: Path) -> RunResult:
    """Run one experiment and write `out_dir/run.json`."""
    validate(cfg)
    timer = StageTimer()
    seed = int(cfg.seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(str(cfg.train.device))
    progress = bool(cfg.train.progress)
    variant = variant_from_config(cfg.increc)
    base_variant = Variant(name="off")
    train_cfg = TrainConfig(epochs=int(cfg.train.epochs), batch_size=int(cfg.train.batch_size), lr=float(cfg.train.lr),
                            n_negatives=int(cfg.train.n_negatives), negatives=str(cfg.model.get("negatives", "uniform")),
                            progress=progress)
    max_len = int(cfg.requests.max_len)

    with timer("load"):
        ds = load_dataset(cfg.dataset, progress=progress)
        fingerprint = data_fingerprint(ds.files)
    ks = resolve_ks(cfg.eval.ks, ds.n_items)

    with timer("requests"):
        req = build_requests(
            ds.log,
            primary_tabs=int_list(cfg.requests.primary_tabs, "requests.primary_tabs"),
            session_gap_ms=int(cfg.requests.session_gap_min * 60_000),
            horizon_ms=int(cfg.requests.horizon_h * 3_600_000),
            max_len=max_len,
            test_days=int(cfg.requests.test_days),
        )
        if req.first_test_ms <= int(ds.log["time_ms"].min()):
            raise DataError(f"the log spans no more than requests.test_days={cfg.requests.test_days} day(s): no training period")

    with timer("existing"):
        ex = cfg.existing
        pos = req.positives
        fit_rows = pos.time_ms < req.first_test_ms  # the training period only
        cf = fit_itemcf(pos.user[fit_rows], pos.item[fit_rows], ds.n_items, window=ex.window, shrink=float(ex.shrink),
                        neighbors=ex.neighbors, progress=progress)
        budget = auto_budget(ds.n_items) if ex.budget == "auto" else int(ex.budget)
        retrieved = itemcf_retrieve(cf, req.history(), budget=budget, n_triggers=int(ex.n_triggers),
                                    decay=float(ex.decay), progress=progress)

    with timer("samples"):
        samples = split_groups(req, retrieved, ds.n_items)
        stats = sample_statistics(samples)
        eval_rows = samples.eval_rows()
        if len(eval_rows) == 0:
            raise DataError("no test request has a non-empty ITG: nothing to evaluate (check requests.test_days and existing.budget)")
        itg_eval, etg_eval = samples.itg.take(eval_rows), req.exposures.take(eval_rows)
        profiles = ds.profiles()

    metrics: dict[str, float | None] = {}
    pop = popularity_ranking(pos.item[fit_rows], ds.n_items, 2 * max(ks))
    metrics |= base_sup(np.broadcast_to(pop, (len(eval_rows), len(pop))), itg_eval, ks, prefix="Pop_")
    training: dict[str, dict] = {}

    with timer("train_base"):
        base = build_model(cfg, ds, base_variant, seed)
        ts = TrainingSet.build(samples, profiles, ds.n_items, max_len, with_exposures=False)
        training["base"] = train(base, ts, train_cfg, seed, device, desc="base")
    with timer("retrieve_base"):
        base_ranked = rank_pool(base, samples, profiles, eval_rows, 2 * max(ks), max_len, device, int(cfg.eval.batch_size))
        metrics |= base_sup(base_ranked, itg_eval, ks)

    if variant.is_base:
        for k in ks:
            metrics |= {f"Inc@{k}": None, f"micro_Inc@{k}": None, f"Exposure@{k}": None, f"micro_Exposure@{k}": None}
    else:
        with timer("train_variant"):
            model = build_model(cfg, ds, variant, seed)
            ts = TrainingSet.build(samples, profiles, ds.n_items, max_len, with_exposures=variant.alignment)
            training["variant"] = train(model, ts, train_cfg, seed, device, desc=f"increc={variant.name}")
        with timer("retrieve_variant"):
            ranked = rank_pool(model, samples, profiles, eval_rows, 2 * max(ks), max_len, device, int(cfg.eval.batch_size))
            metrics |= incremental(ranked, base_ranked, itg_eval, etg_eval, ks)

    record = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": seed,
        "data_fingerprint": fingerprint,
        "code_version": code_version(),
        "versions": package_versions(),
        "device": str(device),
        "stage_seconds": timer.seconds,
        "pool_size": ds.n_items,
        "ks": ks,
        "existing_budget": budget,
        "eval_requests": int(len(eval_rows)),
        "dataset_stats": ds.stats,
        "sample_stats": stats,
        "training": training,
        "metrics": metrics,
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
