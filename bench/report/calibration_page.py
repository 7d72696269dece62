"""`<table>_calibration.md` (and `.json`) beside a table: does the verdict rule have the error rates it
claims on this table's own design? (PROTOCOL 5, Calibration.)

The rows calibrated are the differences the table tests (`calibrated_rows`): Table 1's primary comparison (IncR
against SupR) per backbone; Table 2's Inc@K of each variant against the Sup@K of its own base; Table 3's Inc@K
and Exposure@K of IncRec-ori and IncRec against IncRec-NA's.

- Simulation (bench.report.calibration.simulate) at the table's measured variance components: the median over
  its tested rows of σ_seed, σ_request and σ_interaction at each K, for S in {5, 10, 20};
  then v2's bootstrap beside v3 on the same draws at S = 5, at the table's largest σ_seed (where a
  request-only interval fails).
- Planted effects (bench.report.calibration.planted) on the table's real per-request hit arrays of every
  tested row and K, μ in {0, δ, the row's MDD}; the summary reads them over the rows, as a randomisation
  property should be read.
- The end-to-end A/A (aa_check): the table's own A/A comparison (two exchangeable diversity bases, measured by
  the IncRec-NA records of every table), pooled and per backbone. Each "holds" or "reversed" is a calibration
  failure to investigate; the page also states how likely as many rejecting rows are under a calibrated 5% rule
  (binomial tail, rows of different backbones independent).

Run: python -m bench.report --calibrate DIR [--out RESULTS] [--draws N] [--plants N]
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binom

from bench.evaluation.metrics import COMPARISONS
from bench.pipeline.record import write_atomic
from bench.report.calibration import COVERAGE_TARGET, NOMINAL, POWER_TARGET, mc_band, markdown, planted, simulate
from bench.report import paper
from bench.report.ablations import ablation_metrics
from bench.report.collect import Job, TableRuns, paired_arrays, request_users
from bench.report.comparisons import VARIANT, ComparisonsAtK, pts, table1_comparisons
from bench.report.diagnostics import md_table
from bench.report.cells import MODEL_ORDER, TABLE2_ORDER, TABLE3_ORDER, ordered
from bench.report.stats import VERDICTS, CellStats, crossed_stats, delta_of, format_interval

PRIMARY = next(c for c in COMPARISONS if c.role == "primary")
AA = next(c for c in COMPARISONS if c.role == "aa")
REJECTING = VERDICTS[:2]  # holds, reversed: on the A/A, a calibration failure (PROTOCOL 5, End-to-end A/A)
SIM_SEEDS = (5, 10, 20)
V2_SEEDS = (5,)


def calibration_file(stem: str) -> str:
    return f"{stem}_calibration.md"


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def aa_check(at: ComparisonsAtK, models: list[str], alpha: float = round(1 - NOMINAL, 10)) -> dict:
    """The end-to-end A/A at one K (PROTOCOL 5, Calibration): the pooled verdict, each backbone's with an
    interval, the rows that reject (holds or reversed), and P(as many or more | a calibrated rule), the
    binomial tail with each row rejecting with probability `alpha`, independently across backbones."""
    rows = [at.rows[m][AA.name] for m in models]
    measured = [r for r in rows if r.stats is not None and r.stats.n_seeds >= 2
                and math.isfinite(r.stats.low) and math.isfinite(r.stats.high)]  # rows with an interval: they can reject
    rejected = [r.model for r in measured if r.verdict in REJECTING]
    pooled = at.pooled[AA.name]
    n = len(measured)
    return {"comparison": AA.name, "pooled": pooled.to_dict(), "rows": {r.model: r.to_dict() for r in measured},
            "n_rows": n, "rejected": rejected, "alpha": alpha,
            "chance_of_as_many": float(binom.sf(len(rejected) - 1, n, alpha)) if n else None,
            "pooled_rejects": pooled.verdict in REJECTING}


@dataclass
class CalibratedRow:
    """One difference a table tests at one K, with the arrays its planted effects are drawn on (seeds both arms
    have, in seed order, over the same N requests)."""

    label: str  # the backbone (Table 1), or its planted block's heading (Tables 2 and 3), e.g. "dssm, TB-ITG, Inc − Sup@50"
    stats: CellStats  # the difference's v3 statistics, as the table reports them
    delta: float  # δ: 10% of the reference arm's mean
    a_hits: np.ndarray  # [S, N] hits of the tested arm
    a_size: np.ndarray  # [S, N] its |ITG| (or target count) per request
    b_hits: np.ndarray  # [S, N] hits of the reference arm
    b_size: np.ndarray  # [S, N]
    users: np.ndarray | None  # [N] the user of each request


# What each table's calibration checks: the differences it tests (bench.report.ablations for Tables 2 and 3)
TESTED = {"table1": PRIMARY.name,
          "table2": "each variant's Inc@K against the Sup@K of its own base (TB-Online: extending the base to 2K)",
          "table3": "IncRec-ori's and IncRec's Inc@K and Exposure@K against IncRec-NA's"}


def _calibrated_row(label: str, a_jobs: list[Job], a_metric: str, b_jobs: list[Job],
                    b_metric: str) -> CalibratedRow | None:
    """a_metric (a_jobs) − b_metric (b_jobs) over the seeds both have, as bench.report.cells.difference tests it;
    None without an interval (under two seeds, or an arm not measured) or without spread (SE 0: identical arms,
    which a pooled answer leaves out too)."""
    arrays = paired_arrays(a_jobs, a_metric, b_jobs, b_metric)
    if arrays is None or arrays[0].shape[0] < 2:
        return None
    a, b = arrays  # [S, N] per-request values
    users = request_users(a_jobs[0])
    seeds = sorted({j.seed for j in a_jobs} & {j.seed for j in b_jobs})
    a_by, b_by = {j.seed: j for j in a_jobs}, {j.seed: j for j in b_jobs}
    def stack(by: dict[int, Job], metric: str, part: str) -> np.ndarray:
        return np.stack([by[s].arrays[f"{metric}/{part}"] for s in seeds])  # [S, N]
    stats = crossed_stats(a - b, users)
    if not stats.se > 0:
        return None
    return CalibratedRow(label, stats, delta_of(float(b.mean())),
                         stack(a_by, a_metric, "hits"), stack(a_by, a_metric, "size"),
                         stack(b_by, b_metric, "hits"), stack(b_by, b_metric, "size"), users)


def calibrated_rows(runs: TableRuns, at: ComparisonsAtK, models: list[str]) -> list[CalibratedRow]:
    """The differences `runs`' table tests at K = at.k that have an interval (module docstring)."""
    k, rows = at.k, []
    if runs.table == "table1":  # both arms from the IncRec-NA records, as bench.report.comparisons pairs them
        rows = [_calibrated_row(m, jobs, f"{PRIMARY.a}@{k}", jobs, f"{PRIMARY.b}@{k}")
                for m in models for jobs in [runs.select(m, VARIANT)]]
        return [r for r in rows if r is not None]
    order = TABLE2_ORDER if runs.table == "table2" else TABLE3_ORDER
    reference = "off" if runs.table == "table2" else "na"
    _, tested = ablation_metrics(runs.table, runs.any.record["ks"])
    for m in models:
        for v in ordered(runs.variants(), order):
            if v == reference:
                continue
            jobs = runs.select(m, v)
            name = paper.VARIANT_LABELS.get(v, v)
            for metric in (t for t in tested if t.endswith(f"@{k}")):
                if runs.table == "table2":  # its own job's Sup@K: the same standalone base (bench.report.ablations)
                    b_jobs, b_metric, label = jobs, metric.replace("Inc@", "Sup@"), f"{m}, {name}, Inc − Sup@{k}"
                else:
                    b_jobs, b_metric, label = runs.select(m, reference), metric, f"{m}, {name} − IncRec-NA, {metric}"
                rows.append(_calibrated_row(label, jobs, metric, b_jobs, b_metric))
    return [r for r in rows if r is not None]


def table_calibration(runs: TableRuns, draws: int = 1000, plants: int = 200, v2_draws: int = 300,
                      n_boot: int = 500) -> dict:
    """Every calibration result of one table (module docstring), JSON-ready."""
    models = ordered(runs.models(), MODEL_ORDER)
    out: dict = {"dataset": runs.dataset, "stem": runs.stem, "table": runs.table,
                 "comparison": TESTED[runs.table], "ks": {}}
    for at in table1_comparisons(runs, models):
        measured = calibrated_rows(runs, at, models)
        if not measured:
            continue
        comps = {name: _median([getattr(r.stats, name) for r in measured])
                 for name in ("sigma_seed", "sigma_request", "sigma_interaction")}
        delta = _median([r.delta for r in measured])
        n_users = max(r.stats.n_clusters for r in measured)
        sim = simulate(SIM_SEEDS, draws, rng_seed=0, mu_values=(0.0,), n_users=n_users, delta=delta,
                       methods=("v3",), **comps)
        worst = comps | {"sigma_seed": max(r.stats.sigma_seed for r in measured)}  # where the seed term dominates
        v2 = simulate(V2_SEEDS, v2_draws, rng_seed=1, mu_values=(0.0,), n_users=n_users, delta=delta,
                      methods=("v3", "v2_bootstrap"), n_boot=n_boot, **worst)
        plant = {r.label: planted(r.a_hits, r.a_size, r.b_hits, r.b_size, r.users, n_plants=plants, rng_seed=0)
                 for r in measured}
        out["ks"][str(at.k)] = {"components": comps, "delta": delta, "simulation": sim, "v2_simulation": v2,
                                "planted": plant, "aa": aa_check(at, models)}
    return out


def _over_rows(plant: dict[str, dict], label: str) -> dict[str, float]:
    """Coverage, "holds" share and number of plants at the μ labelled `label`, pooled over the table's rows
    (from a result or from its JSON, where a share that was NaN reads None and is left out)."""
    got = [row for res in plant.values() for row in res["rows"] if row["mu_label"] == label]
    n = sum(res["settings"]["n_plants"] for res in plant.values())
    def mean(key: str) -> float:  # math.fsum: the same figure whatever the rows' order (the JSON sorts its keys)
        values = [g[key] for g in got if g[key] is not None]
        return math.fsum(values) / len(values) if values else float("nan")
    return {"coverage": mean("coverage"), "holds": mean("holds"), "n": n}


def _pct(x: float) -> str:
    return "—" if x != x else f"{100 * x:.1f}%"


def _aa_summary(aa: dict) -> list[str]:
    """The A/A's cells of the summary table: the pooled verdict, and the rejecting rows out of those measured."""
    return [aa["pooled"]["verdict"], f"{len(aa['rejected'])} of {aa['n_rows']}" if aa["n_rows"] else "—"]


def calibration_reading(result: dict) -> str:
    """A calibration result (or its JSON) in one sentence per K, for the findings page: the planted coverage and
    "holds" at μ = 0 and the power at the rows' MDD, over the table's rows, then the end-to-end A/A."""
    parts = []
    for k, block in sorted(result["ks"].items(), key=lambda kv: int(kv[0])):
        zero, at_mdd = _over_rows(block["planted"], "0"), _over_rows(block["planted"], "MDD")
        aa = block["aa"]
        if aa["n_rows"] == 1:
            (model, row), = aa["rows"].items()
            aa_text = f"the A/A row ({model}) {row['verdict']}"
        elif aa["n_rows"]:
            aa_text = f"the A/A pooled {aa['pooled']['verdict']}, {len(aa['rejected'])} of {aa['n_rows']} rows rejecting"
        else:
            aa_text = f"the A/A {aa['pooled']['verdict']}"
        parts.append(f"K = {k}: planted coverage at μ = 0 {_pct(zero['coverage'])}, \"holds\" at μ = 0 "
                     f"{_pct(zero['holds'])}, power at the row's MDD {_pct(at_mdd['holds'])} ({zero['n']} plants); {aa_text}")
    return "; ".join(parts) + "." if parts else "nothing calibrated."


def _chance(p: float) -> str:
    """A probability in percent, never printed as 0.0% when it is merely small."""
    return "under 0.1%" if p < 0.0005 else f"{100 * p:.1f}%"


def _aa_section(aa: dict, k: str) -> list[str]:
    """The end-to-end A/A at one K (aa_check): the pooled answer, each row, and what the rejections mean."""
    p = aa["pooled"]["pooled"]
    pooled = (aa["pooled"]["verdict"] if p is None else
              f"{pts(p['estimate'])} {format_interval(p['low'], p['high'])} points, {aa['pooled']['verdict']}")
    rows = [[m, str(r["stats"]["n_seeds"]), pts(r["stats"]["estimate"]),
             format_interval(r["stats"]["low"], r["stats"]["high"]), f"{r['stats']['p']:.4f}",
             f"±{100 * r['delta']:.2f}", r["verdict"]] for m, r in aa["rows"].items()]
    n, bad = aa["n_rows"], aa["rejected"]
    if not n:
        reading = "No A/A row has an interval (two seeds or more with both arms)."
    elif bad:
        reading = (f"{len(bad)} of {n} rows reject ({', '.join(bad)}): calibration failures to investigate "
                   f"(PROTOCOL 5). Were the rule calibrated, each row would reject with probability "
                   f"{100 * aa['alpha']:.0f}%, and {len(bad)} or more of {n} with probability "
                   f"{_chance(aa['chance_of_as_many'])}.")
    else:
        reading = "Its one row does not reject." if n == 1 else f"None of the {n} rows rejects."
    if aa["pooled_rejects"]:
        reading += " The pooled A/A rejects: a calibration failure of the whole table."
    return [f"### End-to-end A/A, K = {k}", "",
            f"{aa['comparison']}@{k}: two bases at seed + 1000 and seed + 2000, exchangeable by construction (true "
            f"difference 0). Pooled over the backbones: {pooled}.", "",
            *([md_table(["backbone", "seeds", "estimate (points)", "95%", "p", "δ", "verdict"], rows), ""] if rows else []),
            reading, ""]


def render_calibration(result: dict, command: str) -> str:
    """The markdown page of table_calibration's result."""
    table1 = result.get("table", "table1") == "table1"
    checked = (f"Checked on {result['comparison']}, the primary comparison." if table1 else
               f"Checked on the differences the table tests: {result['comparison']}.")
    lines = [f"# Calibration of {result['stem']}.md's verdict rule ({result['dataset']})", "",
             f"Generated by `{command}` from the table's run records (PROTOCOL 5, Calibration). The rule: the "
             f"comparison's t interval from the crossed seed × request variance components (requests clustered by "
             f"user); \"holds\" when its 95% interval lies above 0. {checked} Targets: coverage of the true μ "
             f"{_pct(COVERAGE_TARGET[0])}–{_pct(COVERAGE_TARGET[1])}; \"holds\" under μ = 0 at most 5% plus "
             f"Monte-Carlo error; power at the stated sensitivity (MDD) {_pct(POWER_TARGET[0])}–{_pct(POWER_TARGET[1])}. "
             f"Each K's section ends with the table's end-to-end A/A ({AA.name}), whose \"holds\" or \"reversed\" is "
             "a calibration failure to investigate.",
             ""]
    summary = []
    for k, block in result["ks"].items():
        sim = {(r["n_seeds"], r["mu_label"]): r for r in block["simulation"]["rows"]}
        v2 = {(r["method"], r["mu_label"]): r for r in block["v2_simulation"]["rows"]}
        zero, at_mdd = _over_rows(block["planted"], "0"), _over_rows(block["planted"], "MDD")
        summary.append([k] + [_pct(sim[(s, "0")]["coverage"]) for s in SIM_SEEDS]
                       + [_pct(sim[(5, "0")]["holds"]), _pct(sim[(5, "MDD")]["holds"]),
                          _pct(v2[("v2_bootstrap", "0")]["coverage"]), _pct(v2[("v3", "0")]["coverage"]),
                          _pct(zero["coverage"]), _pct(zero["holds"]), _pct(at_mdd["holds"]), str(zero["n"])]
                       + _aa_summary(block["aa"]))
    lines += ["## Summary", "",
              md_table(["K"] + [f"simulated coverage, S = {s}" for s in SIM_SEEDS]
                       + ["simulated holds at μ = 0, S = 5", "simulated power at MDD, S = 5",
                          "v2 bootstrap coverage, S = 5, largest σ_seed", "v3 on the same draws", "planted coverage at μ = 0",
                          "planted holds at μ = 0", "planted power at the row's MDD", "plants",
                          "A/A pooled", "A/A rows rejecting"], summary), "",
              "Planted figures are read over the table's rows (each row's own coverage is a randomisation "
              "property over 2^S seed sign patterns and scatters around the target). Power at a row's stated MDD "
              "falls below 80% on planted effects: the plant adds binomial and per-seed noise that the stated "
              "MDD, measured without an effect, does not hold (bench/report/calibration.py, planted).", ""]
    for k, block in result["ks"].items():
        c = block["components"]
        lines += [f"## K = {k}", "",
                  (f"The table's components (median over backbones of {result['comparison']}@{k}): σ_seed " if table1
                   else f"The table's components (median over its tested rows at K = {k}): σ_seed ")
                  + f"{100 * c['sigma_seed']:.2f}, σ_request {100 * c['sigma_request']:.2f}, σ_interaction "
                  f"{100 * c['sigma_interaction']:.2f} points per request; δ {100 * block['delta']:.2f} points.", "",
                  markdown(block["simulation"], f"Simulation at these components, K = {k}"),
                  markdown(block["v2_simulation"], f"v2's bootstrap against v3 on the same draws, at the table's largest "
                                                   f"σ_seed, K = {k}")]
        plo, phi = mc_band(0.95, next(iter(block["planted"].values()))["settings"]["n_plants"])
        lines += [f"### Planted effects per {'backbone' if table1 else 'tested row'}, K = {k}", "",
                  f"Each row's own coverage at μ = 0 has a Monte-Carlo band of {_pct(plo)}–{_pct(phi)} around 95%.", ""]
        for label, res in block["planted"].items():
            title = f"{label}, {result['comparison']}@{k}" if table1 else label
            lines.append(markdown(res, title).replace("### ", "#### ", 1))
        lines += _aa_section(block["aa"], k)
    return "\n".join(lines)


def _finite_json(x):
    """NaN and infinities as None (JSON has neither), recursively."""
    if isinstance(x, dict):
        return {k: _finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_json(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_calibration(runs: TableRuns, folder: Path, command: str, **kwargs) -> list[Path]:
    """`<stem>_calibration.md` and `.json` in `folder` for one table; nothing (and a note on stderr) when no
    difference it tests has an interval at any K (one seed, or arms not measured)."""
    result = table_calibration(runs, **kwargs)
    if not result["ks"]:
        print(f"{runs.dataset} {runs.stem}: no calibration page: no difference the table tests has two seeds "
              "with both arms", file=sys.stderr)
        return []
    md = folder / calibration_file(runs.stem)
    text = render_calibration(result, command)
    write_atomic(md, lambda f: f.write(text))
    js = md.with_suffix(".json")
    payload = json.dumps(_finite_json(result), indent=1, sort_keys=True, default=float, allow_nan=False) + "\n"
    write_atomic(js, lambda f: f.write(payload))
    return [md, js]
