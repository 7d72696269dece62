"""Markdown for the paper's Tables 1-3 from grouped run records (layout of the paper, cells in %).

Table 1: per backbone, Base@K, Sup@K (from the base) and Inc@K (IncRec-NA) at two K; p: Inc vs Sup.
Table 2: base ("TB-Online"), TB-ITG, TB-boost, IncRec-NA on one backbone: Base@K and Inc@K, where
         the TB-Online row's Inc@K is its Sup@K (what extending the base to 2K adds); p: each variant's
         Inc@K vs the Sup@K its own job measured on the same standalone base (the TB-Online row's values
         for that seed whenever the base is reproduced bit for bit, as on CPU or from the cache).
Table 3: IncRec-NA, IncRec-ori, IncRec: Base@K, Inc@K and Exposure Hit@K; p: vs IncRec-NA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.report import paper
from bench.report.collect import Job, ReportError, TableRuns
from bench.report.stats import TEST_NAME, format_p, mean_std, paired_p

MODEL_ORDER = ("youtube_dnn", "dssm", "sasrec", "comirec_dr", "comirec_sa", "kuaiformer")
TABLE2_ORDER = ("off", "tb_itg", "tb_boost", "na")
TABLE3_ORDER = ("na", "ori", "on")
TITLES = {
    "table1": "Table 1: every backbone, base vs IncRec-NA",
    "table2": "Table 2: ablation of the incremental tower",
    "table3": "Table 3: ablation of the alignment tower",
}


@dataclass
class Cell:
    mean: float
    std: float
    bold: bool = False

    def text(self) -> str:
        if math.isnan(self.mean):
            return "—"
        s = f"{100 * self.mean:.2f} ± {100 * self.std:.2f}"
        return f"**{s}**" if self.bold else s


def cell(jobs: list[Job], metric: str) -> Cell:
    values = [j.metric(metric) for j in jobs]
    return Cell(*mean_std([v for v in values if v is not None]))


def pooled(jobs: list[Job], metric: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Test-request rows and each request's `metric` averaged over `seeds`."""
    chosen = [j for j in jobs if j.seed in seeds]
    rows = chosen[0].rows
    for j in chosen[1:]:
        if not np.array_equal(j.rows, rows):
            raise ReportError(f"{j.path} and {chosen[0].path} evaluate different test requests")
    return rows, np.mean([j.per_request(metric) for j in chosen], axis=0)


def compare(a_jobs: list[Job], a_metric: str, b_jobs: list[Job], b_metric: str) -> float | None:
    """Paired per-request p-value of a_metric (a_jobs) vs b_metric (b_jobs) over the seeds both have."""
    seeds = sorted({j.seed for j in a_jobs} & {j.seed for j in b_jobs})
    if not seeds:
        return None
    rows_a, a = pooled(a_jobs, a_metric, seeds)
    rows_b, b = pooled(b_jobs, b_metric, seeds)
    if not np.array_equal(rows_a, rows_b):
        raise ReportError(f"{a_metric} and {b_metric} were evaluated on different test requests")
    return paired_p(a, b)


def bold_max(cells: list[Cell]) -> None:
    """Mark the cell(s) with the largest mean."""
    means = [c.mean for c in cells if not math.isnan(c.mean)]
    if means:
        for c in cells:
            c.bold = c.mean == max(means)


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def ordered(names: list[str], order: tuple[str, ...]) -> list[str]:
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def header(runs: TableRuns, command: str) -> str:
    """Title and provenance: dataset, pool, K and their scale, seeds, code, command, wall time."""
    rec = runs.any.record
    ks = rec["ks"]
    pool = rec["pool_size"]
    seeds = runs.seeds()
    commits = sorted({str(j.record["code_version"].get("git_commit"))[:10] for j in runs.jobs.values()})
    dirty = any(j.record["code_version"].get("dirty") for j in runs.jobs.values())
    seconds = sum(sum(j.record["stage_seconds"].values()) for j in runs.jobs.values())
    events = [e for j in runs.jobs.values() for e in j.record.get("cache", {}).values()]
    hits = sum(e == "hit" for e in events)
    scale = " | ".join(f"1/{pk / k:.3g}" if k < pk else f"{k / pk:.3g}x" for k, pk in zip(ks, paper.PAPER_KS))
    return "\n".join([
        f"# {TITLES[runs.table]} ({runs.dataset})",
        "",
        f"- Dataset: `{runs.dataset}`, data fingerprint `{rec['data_fingerprint'][:16]}`, pool {pool:,} items, "
        f"{rec['eval_requests']:,} test requests with a non-empty ITG, existing-system budget {rec['existing_budget']}.",
        f"- K = {' | '.join(map(str, ks))} ({' | '.join(f'{100 * k / pool:.2f}%' for k in ks)} of the pool); "
        f"the paper's K = 1k | 2k, so ours is {scale} the paper's.",
        f"- Seeds: {', '.join(map(str, seeds))}; each cell is the mean ± standard deviation over seeds of the "
        "mean per-request hit rate, in %.",
        f"- Regenerate: `{command}`",
        f"- Provenance: code {', '.join(commits)}{' (uncommitted changes)' if dirty else ''}; "
        f"job time {seconds / 60:.1f} min summed over {len(runs.jobs)} jobs (a timing: varies run to run); "
        f"stage cache {hits} hits of {len(events)} lookups.",
        "",
    ])


def table1(runs: TableRuns) -> tuple[str, list[str]]:
    """Markdown body of Table 1 and the sentences stating whether Inc@K > Sup@K held per backbone."""
    ks = runs.any.record["ks"]
    head = ["backbone"]
    for k in ks:
        head += [f"Base@{k}", f"Sup@{k}", f"Inc@{k}", f"p@{k}"]
    rows, verdicts = [], []
    held: dict[int, list[str]] = {k: [] for k in ks}
    for model in ordered(runs.models(), MODEL_ORDER):
        base_jobs = runs.select(model, "off") or runs.select(model, "na")
        inc_jobs = runs.select(model, "na")
        row = [model]
        for k in ks:
            base, sup, inc = cell(base_jobs, f"Base@{k}"), cell(base_jobs, f"Sup@{k}"), cell(inc_jobs, f"Inc@{k}")
            bold_max([sup, inc])
            p = compare(inc_jobs, f"Inc@{k}", inc_jobs, f"Sup@{k}") if inc_jobs else None
            row += [base.text(), sup.text(), inc.text(), format_p(p)]
            if inc_jobs and inc.mean > sup.mean:
                held[k].append(model)
        rows.append(row)
    n = len(rows)
    for k in ks:
        others = [m for m in ordered(runs.models(), MODEL_ORDER) if m not in held[k]]
        verdicts.append(f"Inc@{k} > Sup@{k} (means over seeds) held for {len(held[k])} of {n} backbones"
                        + (f"; not for {', '.join(others)}." if others else "."))
    return _md(head, rows), verdicts


def table2(runs: TableRuns, model: str) -> str:
    ks = runs.any.record["ks"]
    head = ["variant"]
    for k in ks:
        head += [f"Base@{k}", f"Inc@{k}", f"p@{k}"]
    variants = ordered(runs.variants(), TABLE2_ORDER)
    grid: dict[str, list[tuple[Cell, Cell, float | None]]] = {}
    for v in variants:
        jobs = runs.select(model, v)
        inc_metric = "Sup" if v == "off" else "Inc"
        grid[v] = [(cell(jobs, f"Base@{k}"), cell(jobs, f"{inc_metric}@{k}"),
                    None if v == "off" else compare(jobs, f"Inc@{k}", jobs, f"Sup@{k}")) for k in ks]
    for i in range(len(ks)):
        bold_max([grid[v][i][1] for v in variants])
    rows = [[paper.VARIANT_LABELS.get(v, v)] + [t for b, c, p in grid[v] for t in (b.text(), c.text(), format_p(p))]
            for v in variants]
    return _md(head, rows)


def table3(runs: TableRuns, model: str) -> tuple[str, str]:
    ks = runs.any.record["ks"]
    variants = ordered(runs.variants(), TABLE3_ORDER)
    metrics = [m for k in ks for m in (f"Base@{k}", f"Inc@{k}")] + [f"Exposure@{k}" for k in ks]
    cells = {v: {m: cell(runs.select(model, v), m) for m in metrics} for v in variants}
    for m in metrics:
        if not m.startswith("Base"):
            bold_max([cells[v][m] for v in variants])
    main = _md(["variant"] + [m.replace("Exposure", "Exposure Hit") for m in metrics],
               [[paper.VARIANT_LABELS.get(v, v)] + [cells[v][m].text() for m in metrics] for v in variants])
    tested = [m for m in metrics if not m.startswith("Base")]
    ref = runs.select(model, "na")
    p_rows = [[paper.VARIANT_LABELS.get(v, v)] + [format_p(compare(runs.select(model, v), m, ref, m)) for m in tested]
              for v in variants if v != "na" and ref]
    return main, _md(["p vs IncRec-NA"] + [m.replace("Exposure", "Exposure Hit") for m in tested], p_rows)


def paper_block(table: str) -> str:
    if table == "table1":
        rows = [[name] + [f"{v:.2f}" for v in vals] for name, vals in paper.TABLE1_KUAIRAND.items()]
        return ("The paper's Table 1 (KuaiRand, K = 1k | 2k, %; one ComiRec row for both extractors):\n\n"
                + _md(["backbone", "Base@1k", "Sup@1k", "Inc@1k", "Base@2k", "Sup@2k", "Inc@2k"], rows))
    if table == "table2":
        rows = [[name] + [f"{v:.2f}" for v in vals] for name, vals in paper.TABLE2_TAOBAO.items()]
        return ("The paper's Table 2 (Taobao, not KuaiRand: compare the shape, not the values; K = 1k | 2k, %):\n\n"
                + _md(["variant", "Base@1k", "Inc@1k", "Base@2k", "Inc@2k"], rows))
    rows = [[name] + [f"{v:.2f}" for v in vals] for name, vals in paper.TABLE3_TAOBAO.items()]
    return ("The paper's Table 3 (Taobao, not KuaiRand: compare the shape, not the values; K = 1k | 2k, %):\n\n"
            + _md(["variant", "Base@1k", "Inc@1k", "Base@2k", "Inc@2k", "Exposure Hit@1k", "Exposure Hit@2k"], rows))


def render(runs: TableRuns, command: str, plots: list[str]) -> str:
    """The whole markdown file of one table."""
    parts = [header(runs, command)]
    if runs.table == "table1":
        body, verdicts = table1(runs)
        parts += [body, "", *[f"- {v}" for v in verdicts], "",
                  f"p: {TEST_NAME}; Inc@K of IncRec-NA against Sup@K of the same backbone's base. "
                  "Bold: the larger of Sup@K and Inc@K in each row.", ""]
    else:
        for model in runs.models():
            parts += [f"Backbone: `{model}`", ""]
            if runs.table == "table2":
                parts += [table2(runs, model), ""]
            else:
                main, p_table = table3(runs, model)
                parts += [main, "", p_table, ""]
        if runs.table == "table2":
            parts += [f"p: {TEST_NAME}; each variant's Inc@K against the TB-Online row (the base's Sup@K). "
                      "Bold: the best Inc@K of each column. TB-Online's Inc@K is its Sup@K.", ""]
        else:
            parts += [f"p: {TEST_NAME}; each variant against IncRec-NA on the same metric. "
                      "Bold: the best Inc@K and Exposure Hit@K of each column.", ""]
    parts += [paper_block(runs.table), ""]
    if plots:
        parts += ["Plots: " + ", ".join(f"[{p}]({p})" for p in plots), ""]
    return "\n".join(parts)
