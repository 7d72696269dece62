"""A table's numbers as JSON, written beside its markdown (results/<dataset>/tableN.json): the setup its
header states (dataset, pool, K, seeds, protocol, existing system, splits, premise, tuning, MDD, the
regenerating command) and every cell and tested difference: per K for Table 1, per backbone and variant for
Tables 2 and 3. bench.report.findings
composes results/FINDINGS.md from these files, so that page holds no number the records did not give.

Provenance that varies from run to run (commit, wall time, cache hits) stays in the markdown only: the
same records give the same JSON, byte for byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import cast

from bench.pipeline.record import write_atomic
from bench.report.collect import ReportError, TableRuns, existing_name
from bench.report.diagnostics import premise, protocol, splits, warmup
from bench.report.table1 import Table1K, table1_numbers
from bench.report.ablations import ABLATION_REFERENCE, Ablation, ablation_numbers, sensitivities
from bench.report.cells import Cell, Diff

SUMMARY_VERSION = 4  # 3: Table 1 under protocol v3 (comparisons with variance components, pooled answers);
# 4: Tables 2 and 3 under protocol v3 too (t intervals, verdicts)
# versions read_summary still reads, per table: Tables 2 and 3 have not changed since version 2
READABLE = {4: ("table1", "table2", "table3")}


def _num(x: float | None) -> float | None:
    """A JSON-safe float: None for a missing or NaN value."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _cell(c: Cell) -> dict[str, float | None]:
    return {"mean": _num(c.mean), "std": _num(c.std)}


def _diff(d: Diff | None) -> dict[str, float | None] | None:
    return None if d is None else {"mean": d.mean, "low": _num(d.low), "high": _num(d.high), "p": _num(d.p),
                                   "verdict": d.verdict, "delta": d.delta, "mdd": _num(d.mdd)}


def pair_key(a: str, b: str) -> str:
    """A tested difference's key in the JSON: 'Inc-Sup'."""
    return f"{a}-{b}"


def _tuning(runs: TableRuns) -> dict[str, dict | None]:
    """Per backbone, the tuned values' provenance (trials, best validation value, metric), None if untuned."""
    out: dict[str, dict | None] = {}
    for job in runs.jobs.values():
        applied = job.record["config"].get("tuning_applied")
        prov = (applied or {}).get("provenance", {})
        out.setdefault(job.model, {"n_trials": prov.get("n_trials"), "best_value": prov.get("best_value"),
                                   "metric": prov.get("metric")} if applied else None)
    return dict(sorted(out.items()))


def _existing(record: dict) -> dict:
    """The existing system's name and budget, with each channel's budget for a multi-channel system."""
    cfg = record.get("config", {}).get("existing", {}) or {}
    out = {"name": existing_name(record), "budget": record.get("existing_budget")}
    if cfg.get("channels"):
        out["channels"] = {str(c.get("name")): c.get("budget") for c in cfg["channels"]}
    return out


def _table1_block(numbers: list[Table1K]) -> dict[str, dict]:
    """Per K: each backbone's hit-rate cells and comparisons (protocol v3 statistics, δ, verdict) and the pooled
    answer of each comparison, with the floor and the collapse checks."""
    out = {}
    for at_k in numbers:
        out[str(at_k.k)] = {
            "rows": [{"model": r.model, "seeds": r.n_seeds, "cells": {c: _cell(v) for c, v in r.cells.items()},
                      "comparisons": {name: rc.to_dict() for name, rc in r.comparisons.items()}}
                     for r in at_k.rows],
            "pooled": {name: a.to_dict() for name, a in at_k.answers.items()},
            "roles": {name: a.comparison.role for name, a in at_k.answers.items()},
            "popularity": {c: _cell(v) for c, v in at_k.popularity.items()},
            "below_popularity": at_k.below_popularity(),
            "popularity_agreement": at_k.agreements(),
            "under_popularity_in_seeds": at_k.under_floor_in_seeds(),
            "collapsed_in_seeds": at_k.collapsed_in_seeds(),
            "seed_base_collapsed_in_seeds": at_k.seed_base_collapsed_in_seeds(),
        }
    return out


def _ablation_block(numbers: list[Ablation], ks: list[int]) -> dict[str, dict]:
    """Per backbone: each variant's cells and its differences against the table's reference, and the floor."""
    return {ab.model: {
        "rows": [{"variant": r.variant, "cells": {m: _cell(c) for m, c in r.cells.items()},
                  "diffs": {m: _diff(d) for m, d in r.diffs.items()}} for r in ab.rows],
        "popularity": None if ab.popularity is None else
        {str(k): {"Base": _cell(base), "Sup": _cell(nxt)} for k, (base, nxt) in zip(ks, ab.popularity)},
    } for ab in numbers}


def table_summary(runs: TableRuns, command: str, numbers: list[Table1K] | list[Ablation] | None = None) -> dict:
    """The JSON-able summary of one table (module docstring)."""
    rec = runs.any.record
    prot = protocol(rec)
    out = {
        "summary_version": SUMMARY_VERSION,
        "dataset": runs.dataset,
        "table": runs.table,
        "stem": runs.stem,
        "data_fingerprint": rec["data_fingerprint"],
        "pool_size": rec["pool_size"],
        "ks": list(rec["ks"]),
        "seeds": runs.seeds(),
        "eval_requests": rec.get("eval_requests"),
        "existing": _existing(rec),
        "protocol": None if prot is None else {k: v for k, v in prot.items() if k != "warnings"},
        "splits": splits(rec),
        "premise": premise(rec),
        "warmup": warmup(rec),
        "models": runs.models(),
        "variants": runs.variants(),
        "tuning": _tuning(runs),
        "command": command,
    }
    if runs.table == "table1":
        out["table1"] = _table1_block(table1_numbers(runs) if numbers is None else cast("list[Table1K]", numbers))
    else:
        ablations = ablation_numbers(runs) if numbers is None else cast("list[Ablation]", numbers)
        out["ablation"] = _ablation_block(ablations, list(rec["ks"]))
        out["mdd"] = {str(k): {"mdd": max(v), "min": min(v)} for k, v in sensitivities(ablations, list(rec["ks"])).items()
                      if v}  # protocol v3: the largest design sensitivity of the table's tested differences
        out["reference"] = ABLATION_REFERENCE[runs.table]
    return out


def write_summary(path: Path, summary: dict) -> None:
    text = json.dumps(summary, indent=1, sort_keys=True) + "\n"
    write_atomic(path, lambda f: f.write(text))


def _in_k_order(block: dict[str, dict]) -> dict[str, dict]:
    """A block keyed by K as text, in K's numeric order."""
    return dict(sorted(block.items(), key=lambda kv: int(kv[0])))


def read_summary(path: Path) -> dict:
    """A table's JSON summary; ReportError when it is unreadable or of another summary version."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: not a readable table summary ({exc}); regenerate it with bench.report") from None
    version, table = summary.get("summary_version"), summary.get("table", "table1")
    if table not in READABLE.get(version, ()):
        raise ReportError(f"{path}: summary version {version!r} of a {table} summary, this code reads version "
                          f"{SUMMARY_VERSION}; regenerate it with the command in its 'command' field")
    for block in ("table1", "mdd"):  # keyed by K: the file sorts keys as text ("100" < "50"), readers want K's order
        if block in summary:
            summary[block] = _in_k_order(summary[block])
    for ab in summary.get("ablation", {}).values():
        if ab.get("popularity"):
            ab["popularity"] = _in_k_order(ab["popularity"])
    return summary
