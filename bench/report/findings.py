"""results/FINDINGS.md from the tables' JSON summaries (bench.report.summary). Under protocol v3 the page opens,
per dataset, with one line per Table 1 and K: the primary comparison's (IncR − SupR) pooled estimate over the
backbones, its interval and its verdict; the mechanism, diversity and A/A rows and the paper's own comparison
follow. Per-backbone rows come after, then what Tables 2 and 3 find per variant against their reference, each
table's calibration in one line (from its `<stem>_calibration.json`, when the table has one), the premise
diagnostics, and, for each --protocols pair, protocol v1 against the current tables on the backbones both hold.
No sentence counts cells as votes. Every number and every choice of words comes from the summaries, which
bench.report wrote from the run records.

Run: python -m bench.report --findings RESULTS [--protocols V1_DIR V2_DIR]...
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.pipeline.record import write_atomic
from bench.report.collect import ReportError
from bench.report.paper import VARIANT_LABELS
from bench.report.diagnostics import FIT_MEANING, md_table, premise_rows, warmup_implication, warmup_rows
from bench.evaluation.metrics import COMPARISONS
from bench.report.stats import format_interval
from bench.report.summary import read_summary
from bench.report.ablations import ablation_metrics, exposure_label
from bench.report.cells import MODEL_ORDER, Cell, Diff, diff_text, ordered
from bench.report.checks import agreement_text, under_floor_text
from bench.report.calibration_page import calibration_file, calibration_reading

ROLE_WORDS = {"primary": "primary", "paper": "the paper's", "control": "control", "aa": "A/A"}


def _pts(x: float | None) -> str:
    """A value in percentage points (an MDD), "—" where missing."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _interval(d: dict | None) -> str:
    return diff_text(None if d is None else _as_diff(d))


def _cell(c: dict | None) -> str:
    return "—" if c is None or c.get("mean") is None else Cell(c["mean"], c.get("std") or 0.0).text()


def _names(models: list[str]) -> str:
    return ", ".join(models) if models else "none"


def _comparison(row: dict, name: str) -> str:
    """One backbone's comparison as 'estimate [95%] verdict' in points ("—" where not measured)."""
    c = (row.get("comparisons") or {}).get(name)
    st = None if c is None else c.get("stats")
    if st is None:
        return "—"
    if st.get("low") is None:
        return f"{100 * st['estimate']:+.2f} (one seed: no interval)"
    return f"{100 * st['estimate']:+.2f} {format_interval(st['low'], st['high'])} {c['verdict']}"


def pooled_line(name: str, role: str, answer: dict, k: str) -> str:
    """One pooled answer in words: estimate, 95% interval, verdict, δ, τ, sensitivity and the seeds it needs."""
    p = answer.get("pooled")
    if p is None:
        return f"{name}@{k} ({ROLE_WORDS[role]}): {answer['verdict']}."
    seeds = answer.get("seeds_needed")
    return (f"{name}@{k} ({ROLE_WORDS[role]}): {100 * p['estimate']:+.2f} points {format_interval(p['low'], p['high'])} "
            f"over {p['k']} backbones, **{answer['verdict']}** (δ = ±{100 * answer['delta']:.2f}, τ = "
            f"{100 * p['tau']:.2f}, sensitivity {100 * p['mdd']:.2f}; "
            + (f"δ is within reach at {seeds} seeds per backbone" if seeds is not None else "seeds alone cannot reach δ")
            + ").")


def table1_section(s: dict, title: str) -> list[str]:
    """The findings of one Table 1 summary: its setup, per K the pooled answers, then a row per backbone."""
    prot = s.get("protocol") or {}
    existing = s["existing"]
    channels = existing.get("channels")
    system = existing["name"] + (f" ({', '.join(f'{n} {b}' for n, b in channels.items())})" if channels else "")
    tuned = sorted(m for m, t in s["tuning"].items() if t)
    untuned = sorted(m for m, t in s["tuning"].items() if not t)
    out = [f"### {title}", "",
           f"- Setup: data fingerprint `{s['data_fingerprint'][:16]}`, pool {s['pool_size']:,} items, "
           f"{int(s['eval_requests'] or 0):,} evaluated test requests, seeds {', '.join(map(str, s['seeds']))}, "
           f"existing system {system} with budget {existing['budget']}; protocol {prot.get('version', 'v1 (unrecorded)')}"
           + (f", existing.fit={prot.get('existing_fit')}, {prot.get('valid_days')} validation day(s), "
              f"{'early stopping' if prot.get('early_stopping') else 'fixed epochs'}" if prot else "") + ".",
           f"- Tuning: {len(tuned)} of {len(s['tuning'])} backbones tuned ({_names(tuned)})"
           + (f"; untuned: {_names(untuned)}" if untuned else "") + ".",
           *_collapse_lines(s),
           f"- Regenerate the table: `{s['command']}`.", ""]
    names = [c.name for c in COMPARISONS]
    for k, block in s["table1"].items():
        rows = block["rows"]  # in table1_numbers' order (MODEL_ORDER first)
        out += [f"K = {k}, pooled over the backbones:", ""]
        out += [f"- {pooled_line(n, block['roles'][n], block['pooled'][n], k)}" for n in names]
        grid = [[r["model"], str(r.get("seeds", "—")), _cell(r["cells"].get("Base")), _cell(r["cells"].get("SupR")),
                 _cell(r["cells"].get("IncR"))] + [_comparison(r, n) for n in names] for r in rows]
        pop = block["popularity"]
        grid.append(["popularity", "—", _cell(pop.get("Base")), "—", "—"] + ["—"] * len(names))
        out += ["", f"K = {k}, per backbone (differences in points, 95% t interval, verdict):", "",
                md_table(["backbone", "seeds", f"Base@{k}", f"SupR@{k}", f"IncR@{k}"] + [f"{n}@{k}" for n in names], grid),
                ""]
        n = len(rows)
        popr = pop.get("PopR_Base")
        out += [f"- K = {k}: Base@{k} beats the popularity floor ({_cell(pop.get('Base'))}"
                + (f"; after removing R_u, PopR_Base@{k} {_cell(popr)}" if popr and popr.get("mean") is not None else "")
                + f") for {n - len(block['below_popularity'])} of {n} backbones"
                + (f"; not for {_names(block['below_popularity'])}"
                   + agreement_text(int(k), block["below_popularity"], block.get("popularity_agreement") or {})
                   + _untuned_text(block["below_popularity"], untuned)
                   + _collapsed_text(block["below_popularity"], block.get("collapsed_in_seeds") or {}) + "."
                   if block["below_popularity"] else ".")
                + under_floor_text(int(k), block.get("under_popularity_in_seeds") or {}), ""]
    return out


def _untuned_text(below: list[str], untuned: list[str]) -> str:
    """Which of the backbones under the floor ran on their YAML's values rather than a search's ("" when none)."""
    found = [m for m in below if m in untuned]
    if not found:
        return ""
    return f"; {len(found)} of these {len(below)} ran untuned ({_names(found)}), on their YAML's values"


def _collapse_lines(s: dict) -> list[str]:
    """The collapse check's outcome over the table's standalone bases (bench/evaluation/collapse.py), from the first K's
    block (the check is per base, not per K); no line for summaries that predate it."""
    blocks = list(s["table1"].values())
    if not blocks or "collapsed_in_seeds" not in blocks[0]:
        return []
    checked = blocks[0]["collapsed_in_seeds"]
    models = [r["model"] for r in blocks[0]["rows"]]
    bad = [m for m in models if checked.get(m, [0])[0] > 0]
    clean = [m for m in models if m in checked and m not in bad]
    unchecked = [m for m in models if m not in checked]
    head = ("- Collapse check on the bases (bench/evaluation/collapse.py: the same top K₀ for half the validation requests or "
            "more, one ranking for every request): ")
    seed_control = _seed_base_lines(blocks[0].get("seed_base_collapsed_in_seeds") or {})
    if not checked:
        return [head + "not recorded (the records predate the check)."] + seed_control
    return [head + (", ".join(f"{m} collapsed in {checked[m][0]} of {checked[m][1]} seeds" for m in bad) if bad
                    else f"no base collapsed in {len(clean)} checked backbone(s)")
            + (f"; no checked seed collapsed for {len(clean)} backbone(s) ({_names(clean)})" if bad and clean else "")
            + (f"; not checked for {len(unchecked)} ({_names(unchecked)}): their records predate the check"
               if unchecked else "") + "."] + seed_control


def _seed_base_lines(checked: dict[str, list[int]]) -> list[str]:
    """A line naming the backbones whose Seed control's second base (seed + 1000) collapsed in some seeds: their
    Inc − Seed then compares the channel with a global ranking ([] when none did, or no record holds the check)."""
    bad = {m: v for m, v in checked.items() if v[0] > 0}
    if not bad:
        return []
    return ["- The Seed control's second base (seed + 1000) collapsed for "
            + ", ".join(f"{m} in {n_bad} of {n} seeds" for m, (n_bad, n) in bad.items())
            + ": there Inc − Seed compares the channel with one ranking for every request, not with a second "
            "draw of the backbone."]


def _collapsed_text(below: list[str], collapsed: dict[str, list[int]]) -> str:
    """Which of the backbones under the floor had collapsed bases, in how many seeds ("" when none did)."""
    found = [m for m in below if collapsed.get(m, [0])[0] > 0]
    if not found:
        return ""
    return "; the base collapsed (one ranking for every request) in " + ", ".join(
        f"{collapsed[m][0]} of {collapsed[m][1]} seeds for {m}" for m in found)


def _answer_rank(c) -> int:
    """Where a comparison sits in the answer: primary, the mechanism control (the permuted-label twin), the A/A,
    the other controls, the paper's."""
    if c.role == "control":
        return 1 if c.b_from == "twin" else 3
    return {"primary": 0, "aa": 2, "paper": 4}[c.role]


ANSWER_ORDER = sorted(COMPARISONS, key=_answer_rank)


def answer_lines(dataset: str, ones: dict[str, dict]) -> list[str]:
    """The dataset's answer: per Table 1 and K, the primary comparison's pooled estimate, interval and verdict
    first, then the mechanism control's, the A/A's, the diversity control's and the paper's comparison (PROTOCOL 5)."""
    out = []
    order = ANSWER_ORDER
    for stem, s in ones.items():
        for k, block in s["table1"].items():
            lines = [pooled_line(c.name, block["roles"][c.name], block["pooled"][c.name], k) for c in order]
            out.append(f"- {dataset}/{stem}.md, K = {k}: {lines[0]}")
            out += [f"  - {line}" for line in lines[1:]]
    return out


def _primary_verdicts(tables: dict[str, dict]) -> str:
    """'holds at K = 20, cannot tell at K = 40' for the primary comparison of a dataset's Table 1 (table1.md)."""
    s = tables.get("table1")
    if s is None:
        return "no Table 1"
    name = ANSWER_ORDER[0].name
    return ", ".join(f"{s['table1'][k]['pooled'][name]['verdict']} at K = {k}" for k in s["table1"])


def positive_control_lines(summaries: dict[str, dict[str, dict]]) -> list[str]:
    """The synthetic data as the harness's positive control: their planted effect, what the primary comparison
    finds there and on the real data, and how to read the two together."""
    synthetic = [d for d in summaries if d.startswith("synthetic")]
    real = [d for d in summaries if not d.startswith("synthetic")]
    if not synthetic:
        return []
    found = "; ".join(f"{d}: {_primary_verdicts(summaries[d])}" for d in synthetic)
    other = "; ".join(f"{d}: {_primary_verdicts(summaries[d])}" for d in real)
    return ["**The positive control.** The synthetic data plant a cross-scenario effect by construction "
            "(bench/data/synthetic: each user's niche topics, which the profile and earlier activity outside the main "
            "feed predict, are engaged with outside the feed and sit in a long tail that a co-visitation item-CF "
            "budget covers poorly), so their Table 1 is the harness's positive control: a harness "
            "that finds no gain there is broken. One that finds it there and none on the real data has shown both "
            "that it can see an effect and that its null is honest. The primary comparison (IncR − SupR, pooled) "
            f"finds: {found}" + (f"; and on the real data: {other}." if other else "."), ""]


def _as_diff(d: dict) -> Diff:
    """A summary's tested difference back as a Diff (a missing interval bound is nan)."""
    nan = float("nan")
    return Diff(d["mean"], nan if d["low"] is None else d["low"], nan if d["high"] is None else d["high"], d["p"],
                d.get("verdict"), d.get("delta"))


def _ablation_reading(d: dict | None) -> str:
    """The verdict of a tested difference against δ (protocol v3)."""
    return "—" if d is None else d.get("verdict") or "—"


def ablation_section(stem: str, s: dict) -> list[str]:
    """Table 2 or 3 read for the findings page: per backbone and tested metric, each variant's value and its
    difference from the table's reference with the interval's reading."""
    _, tested = ablation_metrics(s["table"], s["ks"])
    out = [f"### {'Table 2' if s['table'] == 'table2' else 'Table 3'} ({stem}.md)", "",
           f"Each variant is tested against {s['reference']}; seeds {', '.join(map(str, s['seeds']))}."
           + (" TB-Online's Inc@K is its Sup@K." if s["table"] == "table2" else "")
           + f" Regenerate: `{s['command']}`.", ""]
    for model, block in s["ablation"].items():
        grid = [[VARIANT_LABELS.get(r["variant"], r["variant"])]
                + [t for m in tested for t in (_cell(r["cells"].get(m)), _interval(r["diffs"].get(m)),
                                               _ablation_reading(r["diffs"].get(m)))]
                for r in block["rows"]]
        out += [f"Backbone `{model}`:", "",
                md_table(["variant"] + [t for m in tested for t in (exposure_label(m), f"{exposure_label(m)} − reference [95%]",
                                                                    "variant vs reference")], grid), ""]
    return out


def premise_section(s: dict) -> list[str]:
    pr = s.get("premise")
    if not pr:
        return ["### Premise diagnostics", "", "Not recorded.", ""]
    w = s.get("warmup")
    return ["### Premise diagnostics", "", "PROTOCOL 5's diagnostics, from the Table 1 records:", "",
            md_table(["diagnostic", "value"], premise_rows(pr) + (warmup_rows(w) if w else [])), "",
            *([warmup_implication(w), ""] if w else [])]


def _itg_share(s: dict, split: str) -> str:
    sp = (s.get("splits") or {}).get(split)
    return "—" if not sp or sp.get("itg_share") is None else f"{sp['itg_share']:.3f}"


def protocols_section(v1: dict, v2: dict) -> list[str]:
    """Protocol v1 against the current tables on the backbones both Table 1 summaries hold: the setup fields that
    differ, what each existing.fit means, and per K each backbone's Base, Sup, Inc and Inc − Sup (protocol v3's
    statistics on both sets of records) under both."""
    p1, p2 = v1.get("protocol") or {}, v2.get("protocol") or {}
    changed = sorted(k for k in set(p1) | set(p2) if p1.get(k) != p2.get(k))
    out = [f"## Protocol v1 against v2 ({v2['dataset']})", "",
           "Setup fields that differ: " + ("; ".join(f"{k}: {p1.get(k)!r} → {p2.get(k)!r}" for k in changed) or "none") + ".",
           "", f"- v1 regenerates with `{v1['command']}`.", f"- v2 regenerates with `{v2['command']}`."]
    for label, s in (("v1", v1), ("v2", v2)):
        fit = str((s.get("protocol") or {}).get("existing_fit"))
        out.append(f"- {label}: existing.fit={fit}: {FIT_MEANING.get(fit, 'not described')}; ITG share of training "
                   f"targets {_itg_share(s, 'train')}, of test targets {_itg_share(s, 'test')}; seeds "
                   f"{', '.join(map(str, s['seeds']))}; tuned backbones: {_names(sorted(m for m, t in s['tuning'].items() if t))}.")
    out.append("")
    for k in v2["table1"]:
        if k not in v1["table1"]:
            continue
        r1 = {r["model"]: r for r in v1["table1"][k]["rows"]}
        r2 = {r["model"]: r for r in v2["table1"][k]["rows"]}
        common = ordered(sorted(set(r1) & set(r2)), MODEL_ORDER)
        grid = [[m] + [t for r, s in ((r1[m], v1), (r2[m], v2)) for t in (
                    _cell(r["cells"].get("Base")), _cell(r["cells"].get("Sup")), _cell(r["cells"].get("Inc")),
                    _comparison(r, "Inc − Sup"))]
                for m in common]
        out += [f"K = {k}:", "", md_table(["backbone"] + [f"{v} {c}" for v in ("v1", "v2") for c in
                                                        (f"Base@{k}", f"Sup@{k}", f"Inc@{k}", "Inc − Sup [95%]")], grid), ""]
    return out


def dataset_summaries(results: Path) -> dict[str, dict[str, dict]]:
    """dataset -> table stem (table1, table1_multi, ...) -> summary, for every results/<dataset>/table*.json."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(results.glob("*/table*.json")):
        if path.stem.endswith("_calibration"):  # a calibration page's numbers, not a table's summary
            continue
        out.setdefault(path.parent.name, {})[path.stem] = read_summary(path)
    if not out:
        raise ReportError(f"no table summary (results/<dataset>/table*.json) under {results}; run bench.report first")
    return out


def calibration_lines(results: Path, dataset: str, stem: str) -> list[str]:
    """The table's calibration (its `<stem>_calibration.json`, bench.report.calibration_page) in one line; none
    when the table has no calibration page."""
    path = results / dataset / calibration_file(stem)
    js = path.with_suffix(".json")
    if not js.exists():
        return []
    return [f"- Calibration of {stem}.md's verdict rule ([{path.name}]({dataset}/{path.name})): "
            + calibration_reading(json.loads(js.read_text())), ""]


def render_findings(results: Path, command: str, protocols: list[tuple[Path, Path]] | None = None) -> str:
    """FINDINGS.md: per dataset the answer, every Table 1 and ablation read, the premise; then protocol v1
    against v2 for each (v1 folder, v2 folder) pair of `protocols`."""
    summaries = dataset_summaries(results)
    answers = [line for dataset, tables in summaries.items()
               for line in answer_lines(dataset, {stem: t for stem, t in tables.items() if t["table"] == "table1"})]
    parts = ["# Findings", "",
             "The answer, per dataset, Table 1 and K: the primary comparison (IncR − SupR) pooled over the backbones, "
             "then the mechanism control (IncR − ShufR), the A/A (SeedR − Seed2R), the diversity control "
             "(IncR − SeedR) and the paper's own comparison (Inc − Sup):", "", *answers, "",
             *positive_control_lines(summaries),
             f"Generated by `{command}` from the JSON summaries beside each table (`<dataset>/table*.json`, written "
             "by bench.report from the run records with the table, and its calibration's `*_calibration.json`): no "
             "number on this page is typed in. Each table's own page holds its every cell, interval and header; "
             "this page reads them for the paper's claim.",
             "",
             "Reading a verdict (protocol v3, PROTOCOL 5): each comparison is a paired difference of hit rates "
             "(percentage points) over seeds and test requests, a − b. The primary one, IncR − SupR, asks whether the "
             "IncRec channel beats extending the base model when both skip what the existing system already "
             "retrieves (R_u); Inc − Sup is the paper's (neither skips R_u); IncR − ShufR asks whether the gain "
             "needs the incremental labels (the twin trained with the flags permuted within each day); IncR − SeedR "
             "whether it is any second model's diversity; SeedR − Seed2R is an A/A (two exchangeable bases), where "
             "'holds' or 'reversed' is a calibration failure, not a finding. Intervals are t intervals from the "
             "crossed seed × request variance components (requests clustered by user); the pooled answer is a "
             "random-effects estimate over the table's backbones. 'holds': 95% interval above 0; 'reversed': below "
             "0; 'equivalent': the 90% interval inside ±δ, δ = 10% of the reference arm; 'cannot tell': otherwise. "
             "The sensitivity is the smallest true difference the design detects with 80% power.", ""]
    for dataset, tables in summaries.items():
        parts += [f"## {dataset}", ""]
        ones = {stem: s for stem, s in tables.items() if s["table"] == "table1"}
        first = next(iter(ones.values()), None) or next(iter(tables.values()))
        parts += premise_section(first)  # what the data can and cannot show, before the per-backbone rows
        for stem, s in ones.items():
            parts += table1_section(s, f"Table 1 ({stem}.md)") + calibration_lines(results, dataset, stem)
        others = sorted(stem for stem, s in tables.items() if s["table"] != "table1")
        for stem in others:
            parts += ablation_section(stem, tables[stem]) + calibration_lines(results, dataset, stem)
        if others:
            parts += ["Ablations: " + ", ".join(f"[{stem}.md]({dataset}/{stem}.md)" for stem in others)
                      + " (their largest sensitivity per K: " + "; ".join(
                          f"{stem} " + ", ".join(f"{_pts(m['mdd'])} pts at K = {k}" for k, m in tables[stem]["mdd"].items())
                          for stem in others) + ").", ""]
    for v1_dir, v2_dir in protocols or []:
        v1, v2 = (read_summary(Path(d) / "table1.json") for d in (v1_dir, v2_dir))
        if v1["dataset"] != v2["dataset"]:
            raise ReportError(f"--protocols {v1_dir} {v2_dir}: the two folders hold different datasets "
                              f"({v1['dataset']} and {v2['dataset']}); compare one dataset's v1 and v2 tables")
        parts += protocols_section(v1, v2)
    return "\n".join(parts)


def write_findings(results: Path, command: str, protocols: list[tuple[Path, Path]] | None = None) -> Path:
    text = render_findings(results, command, protocols)
    path = results / "FINDINGS.md"
    write_atomic(path, lambda f: f.write(text))
    return path
