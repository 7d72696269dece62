"""The header every table page opens with (dataset, K and its scale, seeds, tuning, protocol, statistics, the
regenerating command, provenance) and the paper's own table that closes it."""

from __future__ import annotations



from bench.report import paper
from bench.report.collect import TableRuns
from bench.report.diagnostics import md_table, mdd_line, protocol_lines


TITLES = {
    "table1": "Table 1: every backbone, base vs IncRec-NA",
    "table2": "Table 2: ablation of the incremental tower",
    "table3": "Table 3: ablation of the alignment tower",
}


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
    """The CPU kinds the jobs ran on, with how many jobs each: metrics repeat only on the same kind (docs/running.md)."""
    kinds: dict[str, int] = {}
    for job in runs.jobs.values():
        m = job.record.get("machine", {})
        kind = f"{m.get('cpu', 'unrecorded CPU')}, {m.get('cores', '?')} cores" + (f", GPU {m['gpu']}" if m.get("gpu") else "")
        kinds[kind] = kinds.get(kind, 0) + 1
    return "; ".join(f"{kind} ({n} jobs)" for kind, n in sorted(kinds.items()))


def cpu_kind_line(runs: TableRuns) -> str:
    """The CPU kind every record ran on (bench.report.collect.cpu_kind), or the kinds of a table let through
    with --mixed-cpu."""
    kinds = runs.cpu_kinds()
    if len(kinds) == 1:
        return f"- CPU kind: {next(iter(kinds))} (every record; its metrics repeat on this kind of CPU)."
    return ("- CPU kind: **mixed** (reported with --mixed-cpu; this table regenerates on no one machine): "
            + "; ".join(f"{k} ({n} jobs)" for k, n in kinds.items()) + ".")


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
        cpu_kind_line(runs),
        "",
    ])


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
