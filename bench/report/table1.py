"""Table 1 under protocol v3 (PROTOCOL 5): per K, the pooled answer of every declared comparison over the
table's backbones, then per backbone the hit rates (mean ± sd over seeds), each comparison's estimate, 95%
t interval and verdict, and the variance components behind them.

Base-model hit rates come from the base-only runs when they recorded them (else IncRec-NA's); the
comparisons are within IncRec-NA's runs, request by request, except the mechanism control, whose reference
arm (ShufR) is the IncR of the permuted-label twin (`na_permuted`) of the same backbone and seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.evaluation.metrics import COMPARISONS, METRICS, TWIN_VARIANT, metric as declared
from bench.report.collect import Job, TableRuns
from bench.report.comparisons import ComparisonsAtK, PooledComparison, RowComparison, pts, table1_comparisons
from bench.report.diagnostics import md_table
from bench.report.stats import POOLED_METHOD, format_interval
from bench.report.cells import MODEL_ORDER, Cell, bold_max, cell, measured, ordered
from bench.report.checks import agreement_text, popularity_agreement, seeds_collapsed, seeds_under_floor, under_floor_text



def _columns() -> tuple[str, ...]:
    """The hit-rate columns: the ITG metrics in declaration order (the popularity floor aside), each twin arm
    (ShufR) right after the arm it is compared with."""
    cols: list[str] = []
    for m in METRICS:
        if m.truth == "itg" and not m.name.startswith(("Pop_", "PopR_")):
            cols.append(m.name)
            cols += [c.reference for c in COMPARISONS if c.b_from == "twin" and c.a == m.name]
    return tuple(cols)


TABLE1_COLUMNS = _columns()
POP_COLUMNS = {"Base": "Pop_Base", "Sup": "Pop_Sup"}  # the popularity row: its top K as Base, ranks K+1..2K as Sup
POPR = "PopR_Base"  # popularity's top K after R_u, stated beside the row (PROTOCOL 5)
TWIN_ARMS = {c.reference: c.b for c in COMPARISONS if c.b_from == "twin"}  # ShufR -> the twin's IncR
ROLE_LABEL = {"primary": "primary", "paper": "paper's", "control": "control", "aa": "A/A"}


@dataclass
class Table1Row:
    """One backbone's Table 1 numbers at one K."""

    model: str
    n_seeds: int
    cells: dict[str, Cell]  # column -> mean ± sd over seeds
    comparisons: dict[str, RowComparison]  # comparison name -> its statistics
    pop_agreement: float | None = None  # popularity_agreement of the base's runs
    under_floor: tuple[int, int] | None = None  # seeds_under_floor of the base's runs
    collapsed: tuple[int, int] | None = None  # seeds_collapsed of the base's runs
    seed_collapsed: tuple[int, int] | None = None  # seeds_collapsed of the diversity control's base


@dataclass
class Table1K:
    """Table 1 at one K: a row per backbone, the floor's cells, and the pooled answers."""

    k: int
    rows: list[Table1Row]
    popularity: dict[str, Cell]  # Base, Sup (the popularity row) and PopR_Base
    answers: dict[str, PooledComparison]  # comparison name -> pooled over the backbones

    def below_popularity(self) -> list[str]:
        """The backbones whose Base@K does not beat the popularity floor's (none when no floor was recorded)."""
        pop = self.popularity.get("Base")
        if pop is None or math.isnan(pop.mean):
            return []
        return [r.model for r in self.rows if not r.cells["Base"].mean > pop.mean]

    def agreements(self) -> dict[str, float | None]:
        return {r.model: r.pop_agreement for r in self.rows}

    def under_floor_in_seeds(self) -> dict[str, list[int]]:
        below = self.below_popularity()
        return {r.model: list(r.under_floor) for r in self.rows
                if r.under_floor is not None and r.under_floor[0] > 0 and r.model not in below}

    def collapsed_in_seeds(self) -> dict[str, list[int]]:
        return {r.model: list(r.collapsed) for r in self.rows if r.collapsed is not None}

    def seed_base_collapsed_in_seeds(self) -> dict[str, list[int]]:
        return {r.model: list(r.seed_collapsed) for r in self.rows if r.seed_collapsed is not None}


def _source(metric: str, base_jobs: list[Job], inc_jobs: list[Job]) -> list[Job]:
    """Where a base-side cell comes from: the base-only run when it recorded the metric, else the variant's."""
    return base_jobs if measured(base_jobs, metric) else inc_jobs


def table1_numbers(runs: TableRuns) -> list[Table1K]:
    """Every number Table 1 shows, per K (module docstring)."""
    models = ordered(runs.models(), MODEL_ORDER)
    compared: list[ComparisonsAtK] = table1_comparisons(runs, models)
    all_jobs = [runs.jobs[key] for key in sorted(runs.jobs)]
    out = []
    for at in compared:
        k = at.k
        rows = []
        for model in models:
            base_jobs = runs.select(model, "off") or runs.select(model, "na")
            inc_jobs = runs.select(model, "na")
            twin_jobs = runs.select(model, TWIN_VARIANT)
            cells = {c: cell(twin_jobs, f"{TWIN_ARMS[c]}@{k}") if c in TWIN_ARMS
                     else cell(_source(f"{c}@{k}", base_jobs, inc_jobs), f"{c}@{k}") for c in TABLE1_COLUMNS}
            bold_max([v for c, v in cells.items() if c != "Base"])  # the second-K channels: what a budget of 2K buys
            base_source = _source(f"Base@{k}", base_jobs, inc_jobs)
            n_seeds = len({j.seed for j in base_jobs + inc_jobs})
            rows.append(Table1Row(model, n_seeds, cells, at.rows[model], popularity_agreement(base_source, k),
                                  seeds_under_floor(base_source, k), seeds_collapsed(base_source),
                                  seeds_collapsed(inc_jobs, "seed_base")))
        popularity = {c: cell(all_jobs, f"{name}@{k}") for c, name in POP_COLUMNS.items()}
        popularity[POPR] = cell([j for j in all_jobs if j.metric(f"{POPR}@{k}") is not None], f"{POPR}@{k}")
        out.append(Table1K(k, rows, popularity, at.pooled))
    return out


def _sigma(x: float | None) -> str:
    return "—" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def _range(lo: float, hi: float) -> str:
    a, b = f"{100 * lo:.2f}", f"{100 * hi:.2f}"
    return a if a == b else f"{a}–{b}"


def answer_rows(at: Table1K) -> list[list[str]]:
    """The pooled answer of every comparison at one K (PROTOCOL 5, Pooled answer)."""
    rows = []
    for c in COMPARISONS:
        a = at.answers[c.name]
        p = a.result
        seeds = ("—" if p is None else f"{a.seeds}" if a.seeds is not None else "not reachable by seeds alone")
        rows.append([f"{c.name}@{at.k}", ROLE_LABEL[c.role],
                     "—" if p is None else f"{pts(p.estimate)} {format_interval(p.low, p.high)}",
                     "—" if p is None else format_interval(p.low90, p.high90),
                     "—" if p is None else f"{100 * p.tau:.2f}",
                     "—" if a.delta is None else f"±{100 * a.delta:.2f}",
                     f"**{a.verdict}**" if p is not None else a.verdict,
                     "—" if p is None else f"{100 * p.mdd:.2f}", seeds,
                     str(len(a.to_dict()["backbones"]))])  # rows with an interval (pooled when two or more)
    return rows


ANSWER_HEAD = ["comparison", "role", "pooled [95%]", "90%", "τ", "δ", "verdict", "sensitivity", "seeds for δ",
               "backbones"]


def _comparison_cell(r: RowComparison) -> str:
    if r.stats is None:
        return "—"
    if r.stats.n_seeds < 2:
        return f"{pts(r.stats.estimate)} (one seed: no interval)"
    return f"{pts(r.stats.estimate)} {format_interval(r.stats.low, r.stats.high)} {r.verdict}"


def _missing_lines(at: Table1K) -> list[str]:
    """Per comparison, the backbones whose records lack an arm, and why."""
    out = []
    for c in COMPARISONS:
        why: dict[str, list[str]] = {}
        for r in at.rows:
            rc = r.comparisons[c.name]
            if rc.stats is None:
                why.setdefault(rc.missing, []).append(r.model)
        for reason, models in why.items():
            who = "every backbone" if len(models) == len(at.rows) else ", ".join(models)
            out.append(f"{c.name}@{at.k} not measured for {who}: {reason}.")
    return out


def table1(runs: TableRuns, numbers: list[Table1K] | None = None) -> tuple[str, list[str]]:
    """Markdown of Table 1 (per K: the pooled answers, the hit rates, the comparisons per backbone, the variance
    components) and the sentences under it (missing arms, the popularity floor)."""
    blocks, notes = [], []
    for at in table1_numbers(runs) if numbers is None else numbers:
        k = at.k
        hit_head = ["backbone", "seeds"] + [f"{c}@{k}" for c in TABLE1_COLUMNS]
        hit_rows = [[r.model, str(r.n_seeds)] + [r.cells[c].text() for c in TABLE1_COLUMNS] for r in at.rows]
        hit_rows.append(["popularity", "—"] + [at.popularity[c].text() if c in POP_COLUMNS else "—"
                                                for c in TABLE1_COLUMNS])
        cmp_head = ["backbone"] + [f"{c.name}@{k} [95%] ({ROLE_LABEL[c.role]})" for c in COMPARISONS]
        cmp_rows = [[r.model] + [_comparison_cell(r.comparisons[c.name]) for c in COMPARISONS] for r in at.rows]
        var_rows = []
        for r in at.rows:
            for c in COMPARISONS:
                s = r.comparisons[c.name].stats
                if s is None:
                    continue
                var_rows.append([r.model, c.name, str(s.n_seeds), _sigma(s.sigma_seed), _sigma(s.sigma_request),
                                 _sigma(s.sigma_interaction), "—" if math.isnan(s.df) else f"{s.df:.1f}",
                                 _sigma(s.se), "—" if math.isnan(s.p) else f"{s.p:.4f}", _sigma(s.mdd),
                                 _sigma(r.comparisons[c.name].delta)])
        popr = at.popularity.get(POPR)
        popr_text = ("" if popr is None or math.isnan(popr.mean) else
                     f" Popularity after removing R_u (PopR_Base@{k}, the floor treated as the R-channels are): "
                     f"{popr.text()}.")
        blocks.append("\n\n".join([
            f"### K = {k}",
            "The answer, pooled over the backbones (random effects; δ = 10% of the reference arm, the "
            "backbones' mean; sensitivity = the pooled design's minimum detectable difference at 80% power; all in "
            "points):",
            md_table(ANSWER_HEAD, answer_rows(at)),
            f"Hit rates (mean ± sd over seeds, %; ShufR@{k} is the permuted-label twin's IncR@{k}).{popr_text}",
            md_table(hit_head, hit_rows),
            "Comparisons per backbone (mean difference in points over seeds and requests, 95% t interval, verdict):",
            md_table(cmp_head, cmp_rows),
            "Variance components per backbone (points per request; df: Satterthwaite; SE, sensitivity and δ in points):",
            md_table(["backbone", "comparison", "seeds", "σ_seed", "σ_request", "σ_interaction", "df", "SE", "p",
                      "sensitivity", "δ"], var_rows) if var_rows else "(no comparison measured)",
        ]))
        notes += _missing_lines(at)
        unclustered = [r.model for r in at.rows if any(rc.stats is not None and not rc.clustered
                                                       for rc in r.comparisons.values())]
        if unclustered:
            notes.append(f"Requests not clustered by user at K = {k} for {', '.join(unclustered)}: the records predate "
                         "per-request users and their data are not here to rebuild them (each request its own cluster).")
        pop_base = at.popularity.get("Base")
        if pop_base is not None and not math.isnan(pop_base.mean):
            below = at.below_popularity()
            n = len(at.rows)
            notes.append(f"Base@{k} beats the popularity floor ({100 * pop_base.mean:.2f}) for {n - len(below)} of {n} "
                         "backbones" + (f"; not for {', '.join(below)}{agreement_text(k, below, at.agreements())}: a "
                                        "trained backbone that does not beat popularity is a bug to find, not a result."
                                        if below else ".") + under_floor_text(k, at.under_floor_in_seeds()))
    return "\n\n".join(blocks), notes


def design_lines(numbers: list[Table1K]) -> list[str]:
    """The header's statistics lines: how the intervals are made, and per K the primary and paper comparisons'
    variance components and the seeds their pooled sensitivity needs to reach δ (PROTOCOL 5, Seeds)."""
    lines = ["- Statistics (protocol v3, PROTOCOL 5): each comparison's cell is the mean of D[s, r] = a − b over the "
             "seeds s and test requests r; its standard error comes from the crossed seed × request variance "
             "components (two-way ANOVA mean squares, the request term clustered by user), with Satterthwaite's "
             "degrees of freedom, a t interval and t test; one seed gives no interval. The pooled answer: "
             f"{POOLED_METHOD}. Verdicts: holds (95% interval above 0), reversed (below 0), equivalent (90% interval "
             "inside ±δ), cannot tell."]
    for at in numbers:
        for c in COMPARISONS:
            if c.role not in ("primary", "paper"):
                continue
            a = at.answers[c.name]
            comp = a.components()
            if a.result is None or not comp:
                continue
            seeds = (f"δ is reached at {a.seeds} seeds per backbone" if a.seeds is not None
                     else "seeds alone do not reach δ")
            seeds += ("; at the rows' own seeds, δ needs no more users" if a.users is not None and a.users <= 1.0 else
                      f"; at the rows' own seeds, {a.users:.2f}× the test users would" if a.users is not None else
                      "; users alone do not reach δ")
            lines.append(f"- Design, {c.name}@{at.k}: σ_seed {_range(*comp['sigma_seed'])}, σ_request "
                         f"{_range(*comp['sigma_request'])}, σ_interaction {_range(*comp['sigma_interaction'])} points "
                         f"per request over the backbones; pooled sensitivity {100 * a.result.mdd:.2f} points against "
                         f"δ {100 * a.delta:.2f}: {seeds}.")
    return lines


def column_note() -> str:
    """What each Table 1 column and comparison measures, from the declarations."""
    described = [f"{c}@K: {declared(c).description}" if c not in TWIN_ARMS else
                 f"{c}@K: the permuted-label twin ({TWIN_VARIANT}, same backbone and seed) 's {TWIN_ARMS[c]}@K"
                 for c in TABLE1_COLUMNS]
    pop = [f"{c} of the popularity row: {declared(n).description}" for c, n in POP_COLUMNS.items()]
    questions = [f"{c.name} ({ROLE_LABEL[c.role]}): {c.question}" for c in COMPARISONS]
    return "Columns: " + "; ".join(described + pop) + ". Comparisons: " + "; ".join(questions) + "."
