"""Evaluation: full-pool rankings of a split's requests, the validation selection metric that early
stopping reads (PROTOCOL 3), and the metrics of `bench.evaluation.metrics.METRICS` assembled for the run record
and the console table (PROTOCOL 5).

Validation requests only ever reach `selection_metric`; test requests only `test_metrics`, once,
with the models early stopping selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from bench.engine.batches import user_input
from bench.evaluation.metrics import METRICS, HitCounts, record_comparisons, Rankings, hit_counts, hits_by_tab, metric_counts, summarise
from bench.protocol.ragged import Ragged
from bench.evaluation.device_topk import torch_top_k
from bench.evaluation.retrieve import remove_and_fill, top_k
from bench.protocol.samples import Samples
from models.increc import IncRec

VALID_SUBSET_SEED = 0  # eval.valid_max_requests draws its fixed subset with this seed, the same for every model


@dataclass
class EvalSet:
    """The requests of one split that have a non-empty ITG, with their truth sets (PROTOCOL 5)."""

    split: str  # test | valid
    rows: np.ndarray  # [R] request ids, ascending
    itg: Ragged  # ITG per evaluated request
    etg: Ragged  # ETG per evaluated request
    retrieved: np.ndarray  # [R, W] R_u of the existing system, padded with -1
    itg_tabs: np.ndarray  # [len(itg.values)] scenario of each ITG target's first positive

    @classmethod
    def build(cls, samples: Samples, split: str, max_requests: int | None = None) -> "EvalSet":
        """`max_requests`: a fixed random subset of at most this many requests (seeded, recorded by the caller)."""
        rows = samples.eval_rows(split)
        if max_requests is not None and len(rows) > max_requests:
            rows = np.sort(np.random.default_rng(VALID_SUBSET_SEED).choice(rows, max_requests, replace=False))
        req = samples.requests
        tabs = Ragged(samples.itg.indptr, req.target_tabs[samples.is_itg]).take(rows).values
        retrieved, _ = samples.retrieved.padded(rows, pad=-1)
        return cls(split, rows, samples.itg.take(rows), req.exposures.take(rows), retrieved.astype(np.int64), tabs)

    def __len__(self) -> int:
        return len(self.rows)


def ranking_depth(ks: list[int], budget: int, n_items: int) -> int:
    """How deep every model ranking goes: SupR and IncR skip K + |R_u| items before taking K."""
    return min(2 * max(ks) + budget, n_items)


@torch.no_grad()
def rank_pool(model: IncRec, samples: Samples, profiles: np.ndarray, rows: np.ndarray, depth: int, max_len: int,
              device: torch.device, batch: int) -> np.ndarray:
    """[len(rows), depth] the serving tower's top `depth` of the whole pool for the given requests (exact,
    ties by smaller item id: PROTOCOL 5). On CUDA the user and item vectors stay on the device and are ranked
    there (device_topk.torch_top_k); elsewhere faiss ranks them on the host (retrieve.top_k)."""
    users = user_matrix(model, samples, profiles, rows, max_len, device, batch)  # [R, K, D] on `device`
    items = item_matrix(model)  # [N, D] on the model's device
    if torch.device(device).type == "cuda":
        return torch_top_k(users, items.to(users.device), depth)
    return top_k(users.cpu().numpy(), items.cpu().numpy(), depth)


@torch.no_grad()
def item_matrix(model: IncRec) -> torch.Tensor:
    """[N, D] float32 every item's vector from the item tower (eval mode), on the model's device."""
    was_training = model.training
    model.eval()
    items = model.item_tower.all_items().float()
    model.train(was_training)
    return items


def pool_vectors(model: IncRec) -> np.ndarray:
    """[N, D] float32 `item_matrix` on the host."""
    return item_matrix(model).cpu().numpy()


@torch.no_grad()
def user_matrix(model: IncRec, samples: Samples, profiles: np.ndarray, rows: np.ndarray, max_len: int,
                device: torch.device, batch: int) -> torch.Tensor:
    """[len(rows), n_interests, D] float32 the serving tower's user vectors for the given requests, on `device`.

    They are computed `batch` requests at a time in order of history length, so a batch is only as
    wide as its own longest history (on the real sample most histories are a few items and a few reach
    max_len), then put back in the order of `rows`.
    """
    was_training = model.training
    model.eval()
    req = samples.requests
    lengths = np.minimum(req.hist_end[rows] - req.hist_start[rows], max_len)
    order = np.argsort(lengths, kind="stable")  # [R] rows by history length
    users = [model.serve(user_input(samples, profiles, rows[order[lo : lo + batch]], max_len).to(device)).float()
             for lo in range(0, len(rows), batch)]  # each [b, n_interests, D]
    model.train(was_training)
    if not users:
        return torch.zeros((0, 1, int(model.item_tower.dim)), dtype=torch.float32, device=device)
    vectors = torch.empty((len(rows), *users[0].shape[1:]), dtype=torch.float32, device=users[0].device)
    vectors[torch.from_numpy(order).to(vectors.device)] = torch.cat(users)  # back in the order of `rows`
    return vectors


def serve_vectors(model: IncRec, samples: Samples, profiles: np.ndarray, rows: np.ndarray, max_len: int,
                  device: torch.device, batch: int) -> np.ndarray:
    """[len(rows), n_interests, D] float32 `user_matrix` on the host."""
    return user_matrix(model, samples, profiles, rows, max_len, device, batch).cpu().numpy()


@dataclass
class Ranker:
    """What ranking a split needs besides the model: the requests' inputs and the retrieval settings."""

    samples: Samples
    profiles: np.ndarray  # [n_users, F]
    max_len: int
    device: torch.device
    batch: int

    def __call__(self, model: IncRec, rows: np.ndarray, depth: int) -> np.ndarray:
        return rank_pool(model, self.samples, self.profiles, rows, depth, self.max_len, self.device, self.batch)


def selection_metric(ranker: Ranker, valid: EvalSet, k0: int,
                     base_top: np.ndarray | None = None) -> tuple[str, Callable[[IncRec], float]]:
    """The validation metric early stopping maximises (PROTOCOL 3) and its name.

    Without `base_top`: Base@K₀ of the serving tower (a base, TB-ITG, TB-boost). With `base_top`
    ([R_valid, ≥K₀], the selected base's validation ranking): Inc@K₀, the serving tower's top K₀
    after removing the base's top K₀ (an IncRec variant).
    """
    if base_top is None:
        def base_at_k0(model: IncRec) -> float:
            channel = ranker(model, valid.rows, k0)
            return float(hit_counts(channel, valid.itg).ratios().mean())
        return f"Base@{k0}", base_at_k0

    def inc_at_k0(model: IncRec) -> float:
        channel = remove_and_fill(ranker(model, valid.rows, 2 * k0), base_top[:, :k0], k0)
        return float(hit_counts(channel, valid.itg).ratios().mean())
    return f"Inc@{k0}", inc_at_k0


@dataclass
class TestMetrics:
    """Every declared metric on the test requests: summaries, per-request hits, curve and per-scenario hits."""

    counts: dict[str, HitCounts]  # f"{name}@{K}" -> per-request hits
    metrics: dict[str, float | None]  # f"{name}@{K}" and f"micro_{name}@{K}" for every declared metric and K of ks
    curve: dict[str, dict[str, float]]  # curve metric -> {K: value} over the K grid
    by_tab: dict[str, list[int]]  # "ITG" and f"{name}@{K}" -> hits per scenario


def test_metrics(rankings: Rankings, test: EvalSet, ks: list[int], grid: list[int], n_tabs: int) -> TestMetrics:
    """Score the selected models' test rankings once (PROTOCOL 5)."""
    counts = metric_counts(rankings, test.itg, test.etg, ks, grid)
    summary = summarise(counts)
    metrics = {f"{prefix}{m.name}@{k}": summary.get(f"{prefix}{m.name}@{k}")
               for k in ks for m in METRICS for prefix in ("", "micro_")}
    curve = {m.name: {str(k): summary[f"{m.name}@{k}"] for k in grid}
             for m in METRICS if m.curve and f"{m.name}@{grid[0]}" in summary}
    by_tab = {"ITG": np.bincount(test.itg_tabs, minlength=n_tabs)[:n_tabs].tolist()}
    for m in METRICS:
        if m.truth != "itg":
            continue
        for k in ks:
            channel = m.channel(rankings, k)
            if channel is not None:
                by_tab[f"{m.name}@{k}"] = hits_by_tab(channel, test.itg, test.itg_tabs, n_tabs).tolist()
    return TestMetrics(counts, metrics, curve, by_tab)


def per_request_arrays(rows: np.ndarray, counts: dict[str, HitCounts], users: np.ndarray | None = None
                       ) -> dict[str, np.ndarray]:
    """The per_request.npz arrays: evaluated request ids, their users (protocol v3 clusters requests by user)
    and each metric's hits and truth sizes."""
    extra = {} if users is None else {"users": np.asarray(users, dtype=np.int64)}
    return {"rows": rows.astype(np.int64), **extra, **{f"{name}/hits": c.hits for name, c in counts.items()},
            **{f"{name}/size": c.size for name, c in counts.items()}}


def format_table(record: dict) -> str:
    """The console summary: per K, the mean of per-request ratios and the micro ratio, every declared metric
    the run computed (controls marked with *)."""
    cfg, m = record["config"], record["metrics"]
    head = (f"dataset={cfg['dataset']['name']} pool={record['pool_size']} items  model={cfg['model']['name']}  "
            f"increc={cfg['increc']['name']}  seed={record['seed']}  test requests with ITG={record['eval_requests']}")
    protocol = record.get("protocol", {})
    if protocol:
        head += (f"\nprotocol {protocol['version']}: existing.fit={protocol['existing_fit']}"
                 f"{' (labels leak the test period)' if protocol['leaks_test_period'] else ''}, "
                 f"valid_days={protocol['valid_days']}, early_stopping={protocol['early_stopping']}")
    cols = [x for x in METRICS if any(m.get(f"{x.name}@{k}") is not None for k in record["ks"])]
    labels = [f"{x.name}{'*' if x.control else ''}" for x in cols]
    width = max(10, *(len(lab) + 2 for lab in labels))
    lines = [head, f"{'K':>6} {'':>5}" + "".join(f"{lab:>{width}}" for lab in labels)]
    for k in record["ks"]:
        for prefix, label in (("", "mean"), ("micro_", "micro")):
            cells = [m.get(f"{prefix}{c.name}@{k}") for c in cols]
            lines.append(f"{k:>6} {label:>5}" + "".join(f"{'—' if v is None else f'{v:.4f}':>{width}}" for v in cells))
    if any(c.control for c in cols):
        lines.append("* controls (PROTOCOL 5): " + "; ".join(f"{c.name} = {c.description}" for c in cols if c.control))
    compared = record.get("comparisons") or record_comparisons(m, record["ks"])
    if compared:  # protocol v3's comparisons this record holds both arms of (PROTOCOL 5)
        lines.append("comparisons (mean difference in points; one seed gives no interval: bench.report tests them over seeds)")
        for name, c in compared.items():
            diffs = "  ".join(f"@{k}: {100 * d:+.2f}" for k, d in c["difference"].items())
            lines.append(f"  {name:<16} {c['role']:<8} {diffs}")
    if cfg["increc"]["name"] != "off" and not cfg.get("eval", {}).get("seed_control", True):
        lines.append("diversity controls off (the single-run default): eval.seed_control=true adds SeedR, a second "
                     "base, and Seed2R, its A/A twin (PROTOCOL 5); the table experiments run them")
    for warning in protocol.get("warnings", []):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
