"""Markdown pieces every table shares (cells, the header, training and collapse notes) and the paper's
Tables 2 and 3 (layout of the paper, cells in %). Table 1 (protocol v3) is bench.report.table1.

Table 2: base ("TB-Online"), TB-ITG, TB-boost, IncRec-NA on one backbone: Base@K and Inc@K, where
         the TB-Online row's Inc@K is its Sup@K (what extending the base to 2K adds); p and the interval: each
         variant's Inc@K vs the Sup@K its own job measured on the same standalone base (the TB-Online row's values
         for that seed whenever the base is reproduced bit for bit, as on CPU or from the cache).
Table 3: IncRec-NA, IncRec-ori, IncRec: Base@K, Inc@K and Exposure Hit@K; differences and p: vs IncRec-NA.
Tables 2 and 3 end each backbone's rows with the popularity floor: Pop_Base@K as Base@K, Pop_Sup@K as Inc@K.
Every header states the protocol, the ITG share per split, the premise, the record warnings and the
table's statistics (Table 1: protocol v3's design lines; Tables 2 and 3, not yet moved to v3: v2's
minimum detectable difference, bench.report.protocol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.report import paper
from bench.report.collect import Job, TableRuns, paired_arrays
from bench.report.protocol import md_table, mdd_line, pct, protocol_lines
from bench.report.stats import format_p, mean_std, paired_p, two_level_bootstrap

MODEL_ORDER = ("youtube_dnn", "dssm", "sasrec", "comirec_dr", "comirec_sa", "kuaiformer")
TABLE2_ORDER = ("off", "tb_itg", "tb_boost", "na")
TABLE3_ORDER = ("na", "ori", "on")
TITLES = {
    "table1": "Table 1: every backbone, base vs IncRec-NA",
    "table2": "Table 2: ablation of the incremental tower",
    "table3": "Table 3: ablation of the alignment tower",
}
# the popularity row of Tables 2 and 3: Pop_Base in the Base column, Pop_Sup in the Inc column
POP_COLUMNS = {"Base": "Pop_Base", "Sup": "Pop_Sup"}
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0
TRAINING_ROLES = (("base", "base"), ("variant", "variant"), ("seed_base", "seed base"), ("seed2_base", "A/A base"))


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


@dataclass
class Diff:
    """A paired difference a − b: mean over seeds and requests, its bootstrap interval, the Wilcoxon p."""

    mean: float
    low: float
    high: float
    p: float

    def text(self) -> str:
        return f"{100 * self.mean:+.2f} [{100 * self.low:+.2f}, {100 * self.high:+.2f}]"

    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below, 0 when it holds 0."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


def diff_text(d: Diff | None) -> str:
    return "—" if d is None else d.text()


def diff_p(d: Diff | None) -> str:
    return format_p(None if d is None else d.p)


def cell(jobs: list[Job], metric: str) -> Cell:
    values = [j.metric(metric) for j in jobs]
    return Cell(*mean_std([v for v in values if v is not None]))


def measured(jobs: list[Job], metric: str) -> bool:
    return bool(jobs) and all(j.metric(metric) is not None for j in jobs)


def difference(a_jobs: list[Job], a_metric: str, b_jobs: list[Job], b_metric: str) -> Diff | None:
    """a_metric (a_jobs) − b_metric (b_jobs), paired per seed and request over the seeds both have: the
    mean, the 95% two-level bootstrap interval (seeds, then requests) and the Wilcoxon p of the
    per-request values averaged over those seeds. None where a side did not measure its metric."""
    arrays = paired_arrays(a_jobs, a_metric, b_jobs, b_metric)
    if arrays is None:
        return None
    a, b = arrays
    low, high = two_level_bootstrap(a - b, n_boot=BOOTSTRAP_DRAWS, seed=BOOTSTRAP_SEED)
    return Diff(float((a - b).mean()), low, high, paired_p(a.mean(axis=0), b.mean(axis=0)))


def bold_max(cells: list[Cell]) -> None:
    """Mark the cell(s) with the largest mean."""
    means = [c.mean for c in cells if not math.isnan(c.mean)]
    if means:
        for c in cells:
            c.bold = c.mean == max(means)


def ordered(names: list[str], order: tuple[str, ...]) -> list[str]:
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def tuning_line(runs: TableRuns) -> str:
    """Which backbones ran with tuned values (bench.config.tuned), from how many trials, and which did not."""
    tuned: dict[str, str] = {}
    values: dict[str, set[str]] = {}
    untuned: set[str] = set()
    for job in runs.jobs.values():
        applied = job.record["config"].get("tuning_applied")
        if applied:
            prov = applied.get("provenance", {})
            tuned[job.model] = f"{job.model} ({prov.get('n_trials', '?')} trials, {prov.get('metric', '?')} " \
                               f"{prov.get('best_value', float('nan')):.4f})"
            values.setdefault(job.model, set()).add(str(sorted(applied.get("values", {}).items())))
        else:
            untuned.add(job.model)
    mixed = sorted(set(tuned) & untuned)
    differing = sorted(m for m, v in values.items() if len(v) > 1)
    parts = [f"tuned: {', '.join(tuned[m] for m in sorted(tuned))}" if tuned else "",
             f"untuned (the backbone's YAML): {', '.join(sorted(untuned - set(tuned)))}" if untuned - set(tuned) else "",
             f"mixed tuned and untuned runs: {', '.join(mixed)}" if mixed else "",
             f"**runs with different tuned values**: {', '.join(differing)}" if differing else ""]
    return "- Tuning: " + "; ".join(p for p in parts if p) + "."


def machines_text(runs: TableRuns) -> str:
    """The CPU kinds the jobs ran on, with how many jobs each: metrics repeat only on the same kind (README)."""
    kinds: dict[str, int] = {}
    for job in runs.jobs.values():
        m = job.record.get("machine", {})
        kind = f"{m.get('cpu', 'unrecorded CPU')}, {m.get('cores', '?')} cores" + (f", GPU {m['gpu']}" if m.get("gpu") else "")
        kinds[kind] = kinds.get(kind, 0) + 1
    return "; ".join(f"{kind} ({n} jobs)" for kind, n in sorted(kinds.items()))


def dirty_rows(runs: TableRuns) -> str:
    """The rows (backbone / variant: seeds) whose records ran code with uncommitted changes in bench/ or models/
    ("" when none did; README or docs edits never count, bench.pipeline.record.code_version)."""
    rows: dict[tuple[str, str], list[int]] = {}
    for (model, variant, seed), job in sorted(runs.jobs.items()):
        if job.record.get("code_version", {}).get("dirty"):
            rows.setdefault((model, variant), []).append(seed)
    return "; ".join(f"{m}/{v} seeds {', '.join(map(str, s))}" for (m, v), s in rows.items())


def header(runs: TableRuns, command: str, design: list[str] | None = None) -> str:
    """Title and provenance: dataset, pool, K and their scale, seeds, code, command, wall time; then the
    protocol, the ITG share per split, the premise, the record warnings and the table's MDD."""
    rec = runs.any.record
    ks = rec["ks"]
    pool = rec["pool_size"]
    seeds = runs.seeds()
    commits = sorted({str(j.record["code_version"].get("git_commit"))[:10] for j in runs.jobs.values()})
    dirty = dirty_rows(runs)
    seconds = sum(sum(j.record["stage_seconds"].values()) for j in runs.jobs.values())
    events = [e for j in runs.jobs.values() for e in j.record.get("cache", {}).values()]
    hits = sum(e == "hit" for e in events)
    scale = " | ".join(f"1/{pk / k:.3g}" if k < pk else f"{k / pk:.3g}x" for k, pk in zip(ks, paper.PAPER_KS))
    return "\n".join([
        f"# {TITLES[runs.table]} ({runs.dataset}" + ("" if runs.stem == runs.table else f", existing={runs.existing}") + ")",
        "",
        f"- Dataset: `{runs.dataset}`, data fingerprint `{rec['data_fingerprint'][:16]}`, pool {pool:,} items, "
        f"{rec['eval_requests']:,} test requests with a non-empty ITG, existing-system budget {rec['existing_budget']}.",
        f"- K = {' | '.join(map(str, ks))} ({' | '.join(f'{100 * k / pool:.2f}%' for k in ks)} of the pool); "
        f"the paper's K = 1k | 2k, so ours is {scale} the paper's.",
        f"- Seeds: {', '.join(map(str, seeds))}; each cell is the mean ± standard deviation over seeds of the "
        "mean per-request hit rate, in %.",
        tuning_line(runs),
        *protocol_lines(runs),
        *(design if design is not None else [mdd_line(runs)]),
        f"- Regenerate: `{command}`",
        f"- Provenance: code {', '.join(commits)}"
        + (f" (**made with uncommitted changes in bench/ or models/**: {dirty})" if dirty else "") + "; "
        f"job time {seconds / 60:.1f} min summed over {len(runs.jobs)} jobs (a timing: varies run to run); "
        f"stage cache {hits} hits of {len(events)} lookups; machine {machines_text(runs)}.",
        "",
    ])


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
        head += [f"Base@{k}", f"Inc@{k}", f"p@{k}", f"Inc − Sup@{k} [95%]"]
    rows = [[paper.VARIANT_LABELS.get(r.variant, r.variant)]
            + [t for k in ks for t in (r.cells[f"Base@{k}"].text(), r.cells[f"Inc@{k}"].text(),
                                       diff_p(r.diffs[f"Inc@{k}"]), diff_text(r.diffs[f"Inc@{k}"]))]
            for r in ab.rows]
    if ab.popularity is not None:  # the floor: popularity's top K as Base, its ranks K+1..2K in the Inc column (TB-Online's place)
        rows.append(["popularity"] + [t for base, nxt in ab.popularity for t in (base.text(), nxt.text(), "—", "—")])
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
    p_rows = [[paper.VARIANT_LABELS.get(r.variant, r.variant)] + [t for m in tested for t in (diff_text(r.diffs[m]), diff_p(r.diffs[m]))]
              for r in ab.rows if r.variant != "na" and ab.has_reference]
    head = ["vs IncRec-NA"] + [t for m in tested for t in (f"{exposure_label(m)} − NA [95%]", "p")]
    return main, md_table(head, p_rows)


def paper_block(table: str) -> str:
    if table == "table1":
        rows = [[name] + [f"{v:.2f}" for v in vals] for name, vals in paper.TABLE1_KUAIRAND.items()]
        return ("The paper's Table 1 (KuaiRand, K = 1k | 2k, %; one ComiRec row for both extractors):\n\n"
                + md_table(["backbone", "Base@1k", "Sup@1k", "Inc@1k", "Base@2k", "Sup@2k", "Inc@2k"], rows))
    if table == "table2":
        rows = [[name] + [f"{v:.2f}" for v in vals] for name, vals in paper.TABLE2_TAOBAO.items()]
        return ("The paper's Table 2 (Taobao, not KuaiRand: compare the shape, not the values; K = 1k | 2k, %):\n\n"
                + md_table(["variant", "Base@1k", "Inc@1k", "Base@2k", "Inc@2k"], rows))
    rows = [[name] + [f"{v:.2f}" for v in vals] for name, vals in paper.TABLE3_TAOBAO.items()]
    return ("The paper's Table 3 (Taobao, not KuaiRand: compare the shape, not the values; K = 1k | 2k, %):\n\n"
            + md_table(["variant", "Base@1k", "Inc@1k", "Base@2k", "Inc@2k", "Exposure Hit@1k", "Exposure Hit@2k"], rows))


INTERVAL_NOTE = (f"[95%]: the mean difference in percentage points and its 95% two-level bootstrap interval "
                 f"({BOOTSTRAP_DRAWS} draws: seeds resampled with replacement, then test requests with replacement, "
                 "the same requests for every seed of a draw).")


POP_ROW_NOTE = ("The popularity row is the floor, never bold: the training-popularity ranking's top K as Base@K and "
                "its ranks K+1..2K as Inc@K.")
