"""The sanity checks a table states beside its numbers: the popularity floor (mean and per seed, and how
closely a base below it follows popularity), collapsed towers (bench.evaluation.collapse) and the training
table (best epoch / epochs run per trained model)."""

from __future__ import annotations


import numpy as np

from bench.report import paper
from bench.report.collect import Job, TableRuns
from bench.report.diagnostics import md_table, pct
from bench.report.cells import MODEL_ORDER, TABLE2_ORDER, TABLE3_ORDER, ordered


TRAINING_ROLES = (("base", "base"), ("variant", "variant"), ("seed_base", "seed base"), ("seed2_base", "A/A base"))


def popularity_agreement(jobs: list[Job], k: int) -> float | None:
    """Of the test requests a base hits (Base@K hits an ITG item), the share that popularity's top K hits too,
    pooled over the jobs (seeds): near 1 when the base ranks nearly as popularity does. None when a job
    lacks the per-request values (records before the floor) or the base hits nothing."""
    if not jobs or not all(f"{m}@{k}/hits" in j.arrays for j in jobs for m in ("Base", "Pop_Base")):
        return None
    both = hit = 0
    for j in jobs:
        base = j.arrays[f"Base@{k}/hits"] > 0  # [R]
        pop = j.arrays[f"Pop_Base@{k}/hits"] > 0  # [R]
        both, hit = both + int((base & pop).sum()), hit + int(base.sum())
    return both / hit if hit else None


def seeds_under_floor(jobs: list[Job], k: int) -> tuple[int, int] | None:
    """(seeds whose Base@K is not above their own run's Pop_Base@K, seeds that recorded both): a mean over
    seeds above the floor can hide a seed under it. None when no job recorded both."""
    pairs = [(j.metric(f"Base@{k}"), j.metric(f"Pop_Base@{k}")) for j in jobs]
    pairs = [(base, pop) for base, pop in pairs if base is not None and pop is not None]
    if not pairs:
        return None
    return sum(not base > pop for base, pop in pairs), len(pairs)


def ranking_checks(jobs: list[Job], role: str = "base") -> list[dict]:
    """The collapse checks (bench/evaluation/collapse.py) the jobs' records hold for one trained tower (base, seed_base);
    records that predate the check hold none."""
    logs = [j.record.get("training", {}).get(role) for j in jobs]
    return [log["ranking"] for log in logs if isinstance(log, dict) and log.get("ranking")]


def seeds_collapsed(jobs: list[Job], role: str = "base") -> tuple[int, int] | None:
    """(seeds whose `role` tower collapsed, seeds whose record holds the check) over the jobs' records
    (bench/evaluation/collapse.py; role "base" or "seed_base"); None when no record holds it (records that predate the check)."""
    checks = ranking_checks(jobs, role)
    if not checks:
        return None
    return sum(bool(c.get("collapsed")) for c in checks), len(checks)


def under_floor_text(k: int, seeds: dict[str, list[int]]) -> str:
    """The sentence naming backbones above the floor on the mean with single seeds under it ("" when none)."""
    if not seeds:
        return ""
    return (f" Seed by seed, Base@{k} is not above the floor for "
            + ", ".join(f"{m} in {under} of {n} seeds" for m, (under, n) in seeds.items()) + ".")


def agreement_text(k: int, below: list[str], agreements: dict[str, float | None]) -> str:
    """The popularity agreement of the backbones under the floor at K, against the range of those above it
    ("" when none of them has one): a backbone under the floor that mostly hits where popularity hits has
    learnt little beyond popularity."""
    known = [m for m in below if agreements.get(m) is not None]
    if not known:
        return ""
    above = sorted(v for m, v in agreements.items() if m not in below and v is not None)
    others = "" if not above else "; for the backbones above it " + (
        pct(above[0]) if len(above) == 1 else f"{pct(above[0])}–{pct(above[-1])}")
    return (f" (of the test requests its Base@{k} hits, popularity's top {k} hits too "
            + ", ".join(f"{pct(agreements[m])} for {m}" for m in known) + others + ")")


def _training_cell(jobs: list[Job], role: str) -> str:
    logs = [j.record.get("training", {}).get(role) for j in jobs]
    logs = [t for t in logs if isinstance(t, dict) and t.get("best_epoch") is not None]
    if not logs:
        return "—"
    best = float(np.mean([t["best_epoch"] for t in logs]))
    run = float(np.mean([t.get("epochs_run", len(t.get("epoch_seconds", []))) for t in logs]))
    return f"{best:.1f} / {run:.1f}"


def training_table(rows: list[tuple[str, dict[str, list[Job]]]]) -> str | None:
    """Mean best epoch / mean epochs run over seeds, per row and trained model (base, variant, seed base);
    None when no record has a best epoch (records that predate early stopping)."""
    grid = [[label] + [_training_cell(by_role.get(role, []), role) for role, _ in TRAINING_ROLES]
            for label, by_role in rows]
    if all(c == "—" for r in grid for c in r[1:]):
        return None
    return md_table(["row"] + [f"{label}: best epoch / epochs run" for _, label in TRAINING_ROLES], grid)


def collapsed_text(rows: list[tuple[str, dict[str, list[Job]]]]) -> str:
    """A warning naming the rows whose base (or seed base) tower collapsed (bench.evaluation.collapse) in some seeds, from the
    records that hold the check; "" when none did."""
    found = []
    for label, by_role in rows:
        for role, name in (("base", "base"), ("seed_base", "seed base")):
            checks = ranking_checks(by_role.get(role, []), role)
            if bad := [c for c in checks if c.get("collapsed")]:
                found.append(f"{label} {name} in {len(bad)} of {len(checks)} seeds (top-K₀ share up to "
                             f"{pct(max(c['modal_top_share'] for c in bad))})")
    if not found:
        return ""
    return ("**Collapsed towers**: the same top K₀ for half the validation requests or more (bench/evaluation/collapse.py), "
            "a global ranking rather than a personalised one, in " + "; ".join(found)
            + ". Rows built on them measure that ranking, not the backbone.")


def _role_jobs(*candidates: list[Job]) -> dict[str, list[Job]]:
    """Per trained model, the first of `candidates` whose records hold it."""
    out = {}
    for role, _ in TRAINING_ROLES:
        for jobs in candidates:
            if any(role in j.record.get("training", {}) for j in jobs):
                out[role] = jobs
                break
    return out


def training_rows(runs: TableRuns) -> list[tuple[str, dict[str, list[Job]]]]:
    if runs.table == "table1":
        return [(m, _role_jobs(runs.select(m, "off"), runs.select(m, "na"))) for m in ordered(runs.models(), MODEL_ORDER)]
    order = TABLE2_ORDER if runs.table == "table2" else TABLE3_ORDER
    return [(f"{m} {paper.VARIANT_LABELS.get(v, v)}", _role_jobs(runs.select(m, v)))
            for m in runs.models() for v in ordered(runs.variants(), order)]
