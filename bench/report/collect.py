"""Read run records (run.json + per_request.npz) and group them into the paper tables they belong to."""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.config.schema import RESULT_NEUTRAL_TRAIN_KEYS

TABLES = ("table1", "table2", "table3")
DEFAULT_EXISTING = "itemcf"  # conf/config.yaml's existing default; records that predate existing.name ran against it


def existing_name(record: dict) -> str:
    return str((record.get("config", {}).get("existing") or {}).get("name", DEFAULT_EXISTING))


class ReportError(BenchError):
    """Records that cannot make a table (missing, inconsistent or duplicated)."""


@dataclass
class Job:
    """One finished run: its record and its per-request hit counts."""

    path: Path  # the run.json
    record: dict
    arrays: dict[str, np.ndarray] = field(repr=False)

    @property
    def model(self) -> str:
        return self.record["config"]["model"]["name"]

    @property
    def variant(self) -> str:
        return self.record["config"]["increc"]["name"]

    @property
    def seed(self) -> int:
        return int(self.record["seed"])

    @property
    def rows(self) -> np.ndarray:
        return self.arrays["rows"]

    def metric(self, name: str) -> float | None:
        """The record's value of `name` (e.g. 'Inc@50'); None where the run has no such channel."""
        return self.record.get("metrics", {}).get(name)

    def per_request(self, name: str) -> np.ndarray:
        """[R] per-request hit rate of `name` (e.g. 'Inc@50')."""
        if f"{name}/hits" not in self.arrays:
            raise ReportError(f"{self.path}: no per-request values for {name}")
        return self.arrays[f"{name}/hits"] / self.arrays[f"{name}/size"]


@dataclass
class TableRuns:
    """The jobs of one table on one dataset, indexed by (model, variant, seed)."""

    dataset: str
    table: str
    jobs: dict[tuple[str, str, int], Job]
    existing: str = DEFAULT_EXISTING  # the existing system's name (config existing.name) every job ran against

    @property
    def stem(self) -> str:
        """The table's file name without suffix: table1, or table1_multi against a non-default existing system."""
        return self.table if self.existing == DEFAULT_EXISTING else f"{self.table}_{self.existing}"

    def seeds(self) -> list[int]:
        return sorted({s for _, _, s in self.jobs})

    def models(self) -> list[str]:
        return sorted({m for m, _, _ in self.jobs})

    def variants(self) -> list[str]:
        return sorted({v for _, v, _ in self.jobs})

    def select(self, model: str, variant: str) -> list[Job]:
        """The jobs of one (model, variant), one per seed, in seed order."""
        return [self.jobs[k] for k in sorted(self.jobs) if k[0] == model and k[1] == variant]

    @property
    def any(self) -> Job:
        return self.jobs[min(self.jobs)]

    def cpu_kinds(self) -> dict[str, int]:
        """CPU kind (cpu_kind) -> how many of the table's jobs ran on it."""
        kinds: dict[str, int] = {}
        for job in self.jobs.values():
            kind = cpu_kind(job.record)
            kinds[kind] = kinds.get(kind, 0) + 1
        return dict(sorted(kinds.items()))


def cpu_kind(record: dict) -> str:
    """The kind of machine a record's metrics repeat on: its CPU vendor (dropout masks differ by vendor) and whether
    it has native bf16 (what train.precision=auto trains in), as bench.pipeline.resume compares them; for a run
    trained on CUDA, also the GPU model and the CUDA and cuDNN versions (a CPU record's kind names no GPU)."""
    machine = record.get("machine", {})
    bf16 = machine.get("native_bf16")
    kind = (f"{machine.get('cpu_vendor') or 'unrecorded vendor'}, "
            + {True: "native bf16", False: "no native bf16"}.get(bf16, "bf16 support unrecorded"))
    if str(record.get("device", "cpu")).startswith("cuda"):
        kind += f", GPU {machine.get('gpu')} (CUDA {machine.get('cuda')}, cuDNN {machine.get('cudnn')})"
    return kind


def check_one_cpu_kind(runs: TableRuns) -> None:
    """A ReportError when a table's records come from more than one CPU kind (PROTOCOL 5's reproducibility:
    such a table regenerates on no single machine); `--mixed-cpu` lets the report through, saying so."""
    kinds = runs.cpu_kinds()
    if len(kinds) > 1:
        raise ReportError(f"{runs.dataset} {runs.stem}: the records come from {len(kinds)} CPU kinds ("
                          + "; ".join(f"{k}: {n} jobs" for k, n in kinds.items())
                          + "), so the table regenerates on no one machine: rerun them on one kind, or pass "
                          "--mixed-cpu to report them as they are")


SETTING_IGNORED = {"train": (*RESULT_NEUTRAL_TRAIN_KEYS, "threads")}  # keys of a backbone's sections that change no result


def backbone_settings(job: Job) -> dict:
    """What a backbone's models were built and trained with: the record's model and train sections (tuned values
    included, as applied), less SETTING_IGNORED."""
    cfg = job.record["config"]
    return {s: {k: v for k, v in (cfg.get(s) or {}).items() if k not in SETTING_IGNORED.get(s, ())}
            for s in ("model", "train")}


def check_one_setting_per_backbone(runs: TableRuns) -> None:
    """A ReportError when a backbone's records were built or trained with different settings (for example tuned
    values that changed between two launches of its sweep): its seeds would not be draws of one configuration, so
    its rows and the pooled answer would mean nothing (PROTOCOL 5 pools seeds of one configuration)."""
    for model in runs.models():
        groups: dict[str, list[Job]] = {}
        for job in (j for (m, _, _), j in sorted(runs.jobs.items()) if m == model):
            groups.setdefault(json.dumps(backbone_settings(job), sort_keys=True), []).append(job)
        if len(groups) > 1:
            first, *others = [json.loads(k) for k in groups]
            keys = sorted({f"{s}.{k}" for o in others for s in o for k in set(o[s]) | set(first[s])
                           if o[s].get(k) != first[s].get(k)})
            counts = "; ".join(f"{len(jobs)} jobs like {jobs[0].path.parent.name}" for jobs in groups.values())
            raise ReportError(f"{runs.dataset} {runs.stem}: {model}'s records differ in {', '.join(keys)} ({counts}): "
                              "rerun them with one setting (a tuned file that changed between launches does this)")


def paired_arrays(a_jobs: list[Job], a_metric: str, b_jobs: list[Job], b_metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """[S, R] per-request values of `a_metric` (from a_jobs) and of `b_metric` (from b_jobs), one row per
    seed both sides have, in seed order, over the same R test requests. None when there is no common
    seed or some of those jobs did not measure a metric (its value None or absent: the run has no such
    channel, or the record predates the metric)."""
    a_by, b_by = {j.seed: j for j in a_jobs}, {j.seed: j for j in b_jobs}
    seeds = sorted(set(a_by) & set(b_by))
    if not seeds or any(a_by[s].metric(a_metric) is None or b_by[s].metric(b_metric) is None for s in seeds):
        return None
    first = a_by[seeds[0]]
    for j in [a_by[s] for s in seeds] + [b_by[s] for s in seeds]:
        if not np.array_equal(j.rows, first.rows):
            raise ReportError(f"{j.path} and {first.path} evaluate different test requests "
                              f"({a_metric} vs {b_metric})")
    return (np.stack([a_by[s].per_request(a_metric) for s in seeds]),
            np.stack([b_by[s].per_request(b_metric) for s in seeds]))


_USERS: dict[str, np.ndarray | None] = {}  # requests' users rebuilt for records that predate the users array


def request_users(job: Job) -> np.ndarray | None:
    """[R] the user of each evaluated request of `job`: protocol v3 clusters requests by user (PROTOCOL 5).

    Records since v3 carry the array; for older ones it is rebuilt from the record's own dataset and request
    config (the requests stage only: nothing is trained), once per data fingerprint and request config. None
    when that is impossible (the data are not here, or not the record's: another fingerprint); the report then
    treats every request as its own cluster and says so."""
    if "users" in job.arrays:
        return job.arrays["users"]
    try:
        return _rebuilt_users(job)
    except (BenchError, OSError, KeyError, ValueError, AttributeError):  # a hand-made or foreign record's config
        return None


def _rebuilt_users(job: Job) -> np.ndarray | None:
    """request_users for a record that predates the users array (see there)."""
    from contextlib import nullcontext

    from omegaconf import OmegaConf

    from bench.config import CONF_DIR, register_resolvers
    from bench.data import dataset_files
    from bench.pipeline.prepare import load_requests
    from bench.pipeline.record import data_fingerprint

    cfg = OmegaConf.create(job.record["config"])
    root = cfg.dataset.get("root")
    here = CONF_DIR / "dataset" / f"{cfg.dataset.name}.yaml"
    if root is not None and not Path(str(root)).exists() and here.is_file():  # recorded on another checkout's path:
        register_resolvers()  # the data are found where this checkout's dataset config looks (the fingerprint decides)
        cfg.dataset.root = OmegaConf.load(here).root
    key = json.dumps([job.record["data_fingerprint"], job.record["config"]["dataset"],
                      job.record["config"]["requests"]], sort_keys=True)
    if key not in _USERS:
        try:
            fingerprint = data_fingerprint(dataset_files(cfg.dataset, progress=False))
        except (BenchError, OSError, KeyError, ValueError):
            fingerprint = None
        if fingerprint != job.record["data_fingerprint"]:  # not here, or other data: no users to cluster by
            _USERS[key] = None
            return None
        _, req = load_requests(cfg, lambda stage: nullcontext(), progress=False)  # no stage timings wanted
        _USERS[key] = req.user.astype(np.int64)
    users = _USERS[key]
    return None if users is None else users[job.rows]


def read_record(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: not a readable run record ({exc})") from None


def load_job(path: Path, record: dict | None = None) -> Job:
    record = read_record(path) if record is None else record
    npz = path.parent / record.get("per_request", "per_request.npz")
    try:
        with np.load(npz, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ReportError(f"{npz}: per-request values missing or unreadable ({exc}); re-run the job") from None
    return Job(path, record, arrays)


def collect(dirs: list[Path]) -> list[TableRuns]:
    """Every run.json under `dirs` that belongs to a paper table, grouped by (dataset, table, existing system).

    A table's jobs must share the data fingerprint, the pool and the K values; two records of the
    same (model, variant, seed) are an error naming both.
    """
    paths = sorted({p.resolve() for d in dirs for p in (Path(d).rglob("run.json") if Path(d).is_dir() else [])})
    missing = [str(d) for d in dirs if not Path(d).is_dir()]
    if missing:
        raise ReportError(f"not a directory: {', '.join(missing)}")
    groups: dict[tuple[str, str, str], dict[tuple[str, str, int], Job]] = defaultdict(dict)
    for path in paths:
        record = read_record(path)
        table = record.get("config", {}).get("experiment_name")
        if table not in TABLES:
            continue  # a single run or another sweep: not part of a paper table
        job = load_job(path, record)
        key = (job.model, job.variant, job.seed)
        group = groups[(job.record["config"]["dataset"]["name"], table, existing_name(job.record))]
        if key in group:
            raise ReportError(f"two records of {key}: {group[key].path} and {path}; keep one")
        group[key] = job
    if not groups:
        raise ReportError(f"no run record of {list(TABLES)} under {', '.join(map(str, dirs))}")
    out = []
    for (dataset, table, existing), jobs in sorted(groups.items()):
        first = next(iter(jobs.values()))
        for job in jobs.values():
            for field_name in ("data_fingerprint", "pool_size", "ks"):
                if job.record[field_name] != first.record[field_name]:
                    raise ReportError(f"{table} on {dataset}: {job.path} and {first.path} differ in {field_name}; "
                                      "a table needs one dataset and one set of K values")
        seed_sets = {(m, v): sorted(s for mm, vv, s in jobs if (mm, vv) == (m, v)) for m, v, _ in jobs}
        for model in sorted({m for m, _ in seed_sets}):  # a backbone's arms pair seed by seed; backbones may differ
            own = {v: s for (m, v), s in seed_sets.items() if m == model}  # (headline_seeds)
            if len({tuple(s) for s in own.values()}) > 1:
                detail = "; ".join(f"{model}/{v}: seeds {s}" for v, s in sorted(own.items()))
                raise ReportError(f"{table} on {dataset}: the arms of {model} have different seeds ({detail}); finish "
                                  "the sweep (relaunch its command: finished jobs are kept) or remove the extra runs")
        out.append(TableRuns(dataset, table, jobs, existing))
    return out
