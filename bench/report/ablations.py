"""The paper's Tables 2 and 3 (layout of the paper, cells in %), under protocol v3's statistics (PROTOCOL 5).

Table 2: base ("TB-Online"), TB-ITG, TB-boost, IncRec-NA on one backbone: Base@K and Inc@K, where
         the TB-Online row's Inc@K is its Sup@K (what extending the base to 2K adds); p and the interval: each
         variant's Inc@K vs the Sup@K its own job measured on the same standalone base (the TB-Online row's values
         for that seed whenever the base is reproduced bit for bit, as on CPU or from the cache).
Table 3: IncRec-NA, IncRec-ori, IncRec: Base@K, Inc@K and Exposure Hit@K; differences and p: vs IncRec-NA.
Tables 2 and 3 end each backbone's rows with the popularity floor: Pop_Base@K as Base@K, Pop_Sup@K as Inc@K."""

from __future__ import annotations

import math
from dataclasses import dataclass


from bench.report import paper
from bench.report.collect import Job, TableRuns
from bench.report.diagnostics import md_table
from bench.report.cells import (Cell, Diff, TABLE2_ORDER, TABLE3_ORDER, bold_max, cell, diff_p, diff_text, diff_verdict,
                                difference, measured, ordered)


# the popularity row of Tables 2 and 3: Pop_Base in the Base column, Pop_Sup in the Inc column
POP_COLUMNS = {"Base": "Pop_Base", "Sup": "Pop_Sup"}


@dataclass
class AblationRow:
    """One variant's row of Table 2 or 3 on one backbone: its cells (metric "Base@K" / "Inc@K" / "Exposure@K" ->
    mean ± std over seeds; TB-Online's Inc@K cell is its Sup@K) and its tested differences (metric -> the variant
    minus its reference on that metric, request by request; None for the reference row itself)."""

    variant: str
    cells: dict[str, Cell]
    diffs: dict[str, Diff | None]


@dataclass
class Ablation:
    """Table 2 or 3 on one backbone: a row per variant of the table (in its order), whether this backbone has
    the reference the variants are tested against (Table 3: IncRec-NA runs), and the popularity floor's cells
    per K ((Pop_Base@K, Pop_Sup@K), from this backbone's first variant that has runs; None when its records
    predate the floor)."""

    model: str
    rows: list[AblationRow]
    has_reference: bool
    popularity: list[tuple[Cell, Cell]] | None


# What each ablation tests (PROTOCOL 4, paper Tables 2 and 3): the reference a variant is tested against
ABLATION_REFERENCE = {"table2": "the base's Sup@K (TB-Online: extending the base model to 2K)",
                      "table3": "IncRec-NA on the same metric"}


def ablation_metrics(table: str, ks: list[int]) -> tuple[list[str], list[str]]:
    """The metrics Table 2 or 3 shows, in its column order, and those it tests against the reference."""
    base_inc = [m for k in ks for m in (f"Base@{k}", f"Inc@{k}")]
    inc = [f"Inc@{k}" for k in ks]
    if table == "table2":
        return base_inc, inc
    exposure = [f"Exposure@{k}" for k in ks]  # Table 3 adds Exposure Hit@K after every K's Base and Inc
    return base_inc + exposure, inc + exposure


def ablation_of(runs: TableRuns, model: str) -> Ablation:
    """Every number Table 2 or 3 shows for one backbone. Table 2: Base@K and Inc@K per variant (TB-Online's
    Inc@K is its Sup@K), each variant's Inc@K tested against the Sup@K its own job measured on the same
    standalone base. Table 3: Base@K, Inc@K and Exposure@K, IncRec-ori and IncRec tested against IncRec-NA."""
    ks = runs.any.record["ks"]
    variants = ordered(runs.variants(), TABLE2_ORDER if runs.table == "table2" else TABLE3_ORDER)
    shown, tested = ablation_metrics(runs.table, ks)
    ref = runs.select(model, "na")
    rows = []
    for v in variants:
        jobs = runs.select(model, v)
        if runs.table == "table2":
            cells = {m: cell(jobs, m.replace("Inc@", "Sup@") if v == "off" else m) for m in shown}
            diffs = {m: None if v == "off" else difference(jobs, m, jobs, m.replace("Inc@", "Sup@")) for m in tested}
        else:
            cells = {m: cell(jobs, m) for m in shown}
            diffs = {m: None if v == "na" or not ref else difference(jobs, m, ref, m) for m in tested}
        rows.append(AblationRow(v, cells, diffs))
    for m in tested:
        bold_max([r.cells[m] for r in rows])
    floor_jobs = next((jobs for v in variants if (jobs := runs.select(model, v))), [])
    return Ablation(model, rows, runs.table == "table2" or bool(ref), popularity_cells(floor_jobs, ks))


def sensitivities(numbers: list[Ablation], ks: list[int]) -> dict[int, list[float]]:
    """Per K, the design sensitivity of every tested difference of the table (protocol v3; seeds ≥ 2)."""
    out: dict[int, list[float]] = {}
    for k in ks:
        out[k] = [d.mdd for ab in numbers for r in ab.rows for m, d in r.diffs.items()
                  if d is not None and d.mdd is not None and not math.isnan(d.mdd) and m.endswith(f"@{k}")]
    return out


def sensitivity_line(numbers: list[Ablation], ks: list[int]) -> str:
    """The header's statistics line of Table 2 or 3 under protocol v3."""
    per_k = sensitivities(numbers, ks)
    if not any(per_k.values()):
        return "- Sensitivity: none (one seed gives no interval)."
    def span(values: list[float]) -> str:
        low, high = (f"{100 * f(values):.2f}" for f in (min, max))
        return low if low == high else f"{low}–{high}"
    return ("- Sensitivity (protocol v3, 80% power, two-sided α = 0.05): "
            + ", ".join(f"{span(v)} pts at K = {k}" for k, v in per_k.items() if v)
            + " over the tested differences: (t_0.975 + t_0.80)·SE with each difference's SE from its crossed "
            "seed × request variance components (requests clustered by user) and Satterthwaite's df.")


def ablation_numbers(runs: TableRuns) -> list[Ablation]:
    """ablation_of for every backbone of Table 2 or 3."""
    return [ablation_of(runs, model) for model in runs.models()]


def _ablation(runs: TableRuns, model: str, numbers: list[Ablation] | None) -> Ablation:
    """This backbone's numbers: from `numbers` when given, else computed for it alone."""
    return ablation_of(runs, model) if numbers is None else next(a for a in numbers if a.model == model)


def table2(runs: TableRuns, model: str, numbers: list[Ablation] | None = None) -> str:
    ks = runs.any.record["ks"]
    ab = _ablation(runs, model, numbers)
    head = ["variant"]
    for k in ks:
        head += [f"Base@{k}", f"Inc@{k}", f"p@{k}", f"Inc − Sup@{k} [95%]", f"verdict@{k}"]
    rows = [[paper.VARIANT_LABELS.get(r.variant, r.variant)]
            + [t for k in ks for t in (r.cells[f"Base@{k}"].text(), r.cells[f"Inc@{k}"].text(),
                                       diff_p(r.diffs[f"Inc@{k}"]), diff_text(r.diffs[f"Inc@{k}"]),
                                       diff_verdict(r.diffs[f"Inc@{k}"]))]
            for r in ab.rows]
    if ab.popularity is not None:  # the floor: popularity's top K as Base, its ranks K+1..2K in the Inc column (TB-Online's place)
        rows.append(["popularity"] + [t for base, nxt in ab.popularity for t in (base.text(), nxt.text(), "—", "—", "—")])
    return md_table(head, rows)


def popularity_cells(jobs: list[Job], ks: list[int]) -> list[tuple[Cell, Cell]] | None:
    """Per K, the popularity floor's (Pop_Base@K, Pop_Sup@K) cells over `jobs`; None when no record holds them
    (records that predate the floor)."""
    if not any(measured(jobs, f"{name}@{k}") for name in POP_COLUMNS.values() for k in ks):
        return None
    return [(cell(jobs, f"{POP_COLUMNS['Base']}@{k}"), cell(jobs, f"{POP_COLUMNS['Sup']}@{k}")) for k in ks]


def exposure_label(metric: str) -> str:
    """A Table 3 column's name: Exposure@K is the paper's Exposure Hit@K."""
    return metric.replace("Exposure", "Exposure Hit")


def table3(runs: TableRuns, model: str, numbers: list[Ablation] | None = None) -> tuple[str, str]:
    ks = runs.any.record["ks"]
    ab = _ablation(runs, model, numbers)
    metrics, tested = ablation_metrics(runs.table, ks)
    rows = [[paper.VARIANT_LABELS.get(r.variant, r.variant)] + [r.cells[m].text() for m in metrics] for r in ab.rows]
    if ab.popularity is not None:  # the floor, as in Table 2: its top K as Base, its next K in the Inc column; no exposure
        rows.append(["popularity"] + [t for base, nxt in ab.popularity for t in (base.text(), nxt.text())] + ["—"] * len(ks))
    main = md_table(["variant"] + [exposure_label(m) for m in metrics], rows)
    p_rows = [[paper.VARIANT_LABELS.get(r.variant, r.variant)]
              + [t for m in tested for t in (diff_text(r.diffs[m]), diff_p(r.diffs[m]), diff_verdict(r.diffs[m]))]
              for r in ab.rows if r.variant != "na" and ab.has_reference]
    head = ["vs IncRec-NA"] + [t for m in tested for t in (f"{exposure_label(m)} − NA [95%]", "p", "verdict")]
    return main, md_table(head, p_rows)


INTERVAL_NOTE = ("[95%]: the mean difference in percentage points and its 95% t interval from the crossed seed × "
                 "request variance components, requests clustered by user (protocol v3, PROTOCOL 5); p: the matching "
                 "t-test of a zero mean. Verdict, against δ = 10% of the reference arm's mean: holds (interval above "
                 "0), reversed (below 0), equivalent (the 90% interval inside ±δ), cannot tell (otherwise).")


POP_ROW_NOTE = ("The popularity row is the floor, never bold: the training-popularity ranking's top K as Base@K and "
                "its ranks K+1..2K as Inc@K.")
