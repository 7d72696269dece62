"""results/FINDINGS.md from the tables' JSON summaries (bench.report.summary): per dataset, its answer in
counts over backbone-K cells, then whether Inc@K > Sup@K holds per backbone with its interval, whether it
survives the controls (Inc vs SupR, Inc vs Seed), the popularity floor, what Tables 2 and 3 find per variant
against their reference, the premise diagnostics and what the data could detect (the minimum detectable
difference); then, for each --protocols pair, protocol v1 against v2 on the backbones both hold. Every number and every
choice of words comes from the summaries, which bench.report wrote from the run records.

Run: python -m bench.report --findings RESULTS [--protocols V1_DIR V2_DIR]...
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.record import write_atomic
from bench.report.collect import ReportError
from bench.report.paper import VARIANT_LABELS
from bench.report.protocol import FIT_MEANING, md_table, premise_rows, warmup_implication, warmup_rows
from bench.report.summary import pair_key, read_summary
from bench.report.tables import (COMPARISONS, MODEL_ORDER, Cell, Diff, ablation_metrics, agreement_text, diff_text,
                                 exposure_label, ordered, under_floor_text)

CONTROLS = (("Inc", "SupR"), ("Inc", "Seed"))  # PROTOCOL 5: the base side given a second budget without R_u / a second seed
assert all(c in COMPARISONS for c in CONTROLS), "a control findings reads is not a difference Table 1 tests"


def _pts(x: float | None) -> str:
    """A value in percentage points (an MDD), "—" where missing."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _interval(d: dict | None) -> str:
    return diff_text(None if d is None else Diff(d["mean"], d["low"], d["high"], d["p"]))


def _side(d: dict | None) -> int | None:
    """+1 when a difference's 95% interval lies above 0, -1 below, 0 when it holds 0; None if not measured."""
    return None if d is None else Diff(d["mean"], d["low"], d["high"], d["p"]).sign()


def _cell(c: dict | None) -> str:
    return "—" if c is None or c.get("mean") is None else Cell(c["mean"], c.get("std") or 0.0).text()


def verdict(row: dict, mdd: float | None) -> str:
    """What one backbone's Table 1 row says of Inc@K > Sup@K (PROTOCOL 5's reading of an interval)."""
    d = row["diffs"].get(pair_key("Inc", "Sup"))
    side = _side(d)
    if side is None:
        return "not measured"
    if side > 0:
        sides = {b: _side(row["diffs"].get(pair_key(a, b))) for a, b in CONTROLS}
        missed = [b for b, v in sides.items() if v in (0, -1)]
        unmeasured = [b for b, v in sides.items() if v is None]
        if missed:
            return f"holds against Sup, not against {' or '.join(missed)}"
        if unmeasured:
            beaten = [b for b, v in sides.items() if v == 1]
            return (f"holds against Sup{' and ' + ', '.join(beaten) if beaten else ''}; "
                    f"{', '.join(unmeasured)} not measured")
        return "holds, and above both controls"
    if side < 0:
        return "reversed: Inc below Sup"
    if mdd is not None and abs(d["mean"]) < mdd:
        return "cannot tell (|difference| below the MDD)"
    return "cannot tell (interval holds 0)"


def _names(models: list[str]) -> str:
    return ", ".join(models) if models else "none"


def table1_section(s: dict, title: str) -> list[str]:
    """The findings of one Table 1 summary: its setup, per K a row per backbone and the counts in words."""
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
    for k, block in s["table1"].items():
        mdd = s["mdd"].get(k, {}).get("mdd")
        rows = block["rows"]  # in table1_numbers' order (MODEL_ORDER first)
        grid = []
        for r in rows:
            grid.append([r["model"], _cell(r["cells"].get("Base")), _cell(r["cells"].get("Sup")), _cell(r["cells"].get("Inc")),
                         _interval(r["diffs"].get(pair_key("Inc", "Sup"))),
                         *[_interval(r["diffs"].get(pair_key(a, b))) for a, b in CONTROLS], verdict(r, mdd)])
        pop = block["popularity"]
        grid.append(["popularity", _cell(pop.get("Base")), _cell(pop.get("Sup")), "—", "—", *["—"] * len(CONTROLS), "the floor"])
        out += [f"K = {k}:", "",
                md_table(["backbone", f"Base@{k}", f"Sup@{k}", f"Inc@{k}", f"Inc − Sup@{k} [95%]",
                          *[f"{a} − {b}@{k} [95%]" for a, b in CONTROLS], "Inc@K > Sup@K?"], grid), ""]
        by = {r["model"]: r for r in rows}
        n = len(rows)
        sides = _sides(rows, "Inc", "Sup")
        above, below, undecided = sides[1], sides[-1], sides[0]
        survive = [m for m in above if all(_side(by[m]["diffs"].get(pair_key(a, b))) == 1 for a, b in CONTROLS)]
        small = [m for m in undecided if mdd is not None and abs(by[m]["diffs"][pair_key("Inc", "Sup")]["mean"]) < mdd]
        out += [f"- K = {k}: Inc − Sup's 95% interval lies above 0 for {len(above)} of {n} backbones ({_names(above)}), "
                f"below 0 for {len(below)} ({_names(below)}) and holds 0 for {len(undecided)} ({_names(undecided)}).",
                f"- K = {k}: above 0 against both controls (SupR and Seed) as well: {len(survive)} of {n} ({_names(survive)}).",
                *[f"- K = {k}: {line}" for line in _control_lines(rows)],
                (f"- K = {k}: the MDD was not computable." if mdd is None else
                 f"- K = {k}: the MDD is {_pts(mdd)} pts; no row is undecided." if not undecided else
                 f"- K = {k}: the MDD is {_pts(mdd)} pts; {len(small)} of the {len(undecided)} undecided rows "
                 f"differ by less ({_names(small)}): there the data cannot tell no difference from one of that size."),
                f"- K = {k}: Base@{k} beats the popularity floor ({_cell(pop.get('Base'))}) for "
                f"{n - len(block['below_popularity'])} of {n} backbones"
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
    """The collapse check's outcome over the table's standalone bases (bench/collapse.py), from the first K's
    block (the check is per base, not per K); no line for summaries that predate it."""
    blocks = list(s["table1"].values())
    if not blocks or "collapsed_in_seeds" not in blocks[0]:
        return []
    checked = blocks[0]["collapsed_in_seeds"]
    models = [r["model"] for r in blocks[0]["rows"]]
    bad = [m for m in models if checked.get(m, [0])[0] > 0]
    clean = [m for m in models if m in checked and m not in bad]
    unchecked = [m for m in models if m not in checked]
    head = ("- Collapse check on the bases (bench/collapse.py: the same top K₀ for half the validation requests or "
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


def _sides(rows: list[dict], a: str, b: str) -> dict[int, list[str]]:
    """Backbones by where the 95% interval of a − b lies: +1 above 0, -1 below, 0 holding 0 (unmeasured left out)."""
    out: dict[int, list[str]] = {1: [], -1: [], 0: []}
    for r in rows:
        side = _side(r["diffs"].get(pair_key(a, b)))
        if side is not None:
            out[side].append(r["model"])
    return out


def _control_lines(rows: list[dict]) -> list[str]:
    """Per control, where Inc − control's interval lies across the backbones that measured it."""
    out = []
    for a, b in CONTROLS:
        sides = _sides(rows, a, b)
        n = sum(map(len, sides.values()))
        out.append(f"{a} − {b}: not measured." if not n else
                   f"{a} − {b}'s 95% interval lies above 0 for {len(sides[1])} of {n} ({_names(sides[1])}), "
                   f"below 0 for {len(sides[-1])} ({_names(sides[-1])}) and holds 0 for {len(sides[0])} "
                   f"({_names(sides[0])}).")
    return out


def answer_lines(dataset: str, ones: dict[str, dict]) -> list[str]:
    """The dataset's answer in a few counts over every (backbone, K) cell of each Table 1: where Inc − Sup's
    interval lies, how many undecided cells are under the MDD, how many cells clear both controls, where
    Inc − SupR and Inc − Seed lie, and how many bases beat the popularity floor."""
    out = []
    for stem, s in ones.items():
        counts = {pair: {1: 0, -1: 0, 0: 0} for pair in (("Inc", "Sup"), *CONTROLS)}
        small = survive = lacking = cells = beat_pop = 0
        for k, block in s["table1"].items():
            mdd = s["mdd"].get(k, {}).get("mdd")
            cells += len(block["rows"])
            beat_pop += len(block["rows"]) - len(block["below_popularity"])
            for r in block["rows"]:
                sides = {pair: _side(r["diffs"].get(pair_key(*pair))) for pair in counts}
                for pair, side in sides.items():
                    if side is not None:
                        counts[pair][side] += 1
                d = r["diffs"].get(pair_key("Inc", "Sup"))
                small += sides[("Inc", "Sup")] == 0 and mdd is not None and abs(d["mean"]) < mdd
                survive += sides[("Inc", "Sup")] == 1 and all(sides[c] == 1 for c in CONTROLS)
                lacking += any(sides[c] is None for c in CONTROLS)
        backbones = len({r["model"] for block in s["table1"].values() for r in block["rows"]})
        main = counts[("Inc", "Sup")]
        controls = "; ".join(f"{a} − {b} lies above 0 in {counts[(a, b)][1]} and below 0 in {counts[(a, b)][-1]} of "
                             f"{sum(counts[(a, b)].values())}" for a, b in CONTROLS)
        out.append(f"- {dataset}/{stem}.md ({backbones} backbones × K = {', '.join(s['table1'])}; existing system "
                   f"{s['existing']['name']}): Inc@K > Sup@K holds (interval above 0) in {main[1]} of {sum(main.values())} "
                   f"backbone-K cells, is reversed (below 0) in {main[-1]}, and cannot be told in {main[0]} "
                   f"({small} of them closer to 0 than the MDD); {survive} cell(s) also clear both controls"
                   + (f" ({lacking} cell(s) lack a control)" if lacking else "")
                   + f". Controls: {controls}. Base@K beats the popularity floor in {beat_pop} of {cells}.")
    return out


def _ablation_reading(d: dict | None) -> str:
    side = _side(d)
    return {None: "—", 1: "higher", -1: "lower", 0: "cannot tell"}[side]


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
    """Protocol v1 against v2 on the backbones both Table 1 summaries hold: the setup fields that differ,
    what each existing.fit means, and per K each backbone's Base, Sup, Inc and Inc − Sup under both."""
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
                    _interval(r["diffs"].get(pair_key("Inc", "Sup"))), verdict(r, s["mdd"].get(k, {}).get("mdd")))]
                for m in common]
        out += [f"K = {k}:", "", md_table(["backbone"] + [f"{v} {c}" for v in ("v1", "v2") for c in
                                                        (f"Base@{k}", f"Sup@{k}", f"Inc@{k}", "Inc − Sup [95%]", "reading")], grid), ""]
    return out


def dataset_summaries(results: Path) -> dict[str, dict[str, dict]]:
    """dataset -> table stem (table1, table1_multi, ...) -> summary, for every results/<dataset>/table*.json."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(results.glob("*/table*.json")):
        out.setdefault(path.parent.name, {})[path.stem] = read_summary(path)
    if not out:
        raise ReportError(f"no table summary (results/<dataset>/table*.json) under {results}; run bench.report first")
    return out


def render_findings(results: Path, command: str, protocols: list[tuple[Path, Path]] | None = None) -> str:
    """FINDINGS.md: per dataset the answer, every Table 1 and ablation read, the premise; then protocol v1
    against v2 for each (v1 folder, v2 folder) pair of `protocols`."""
    parts = ["# Findings", "",
             f"Generated by `{command}` from the JSON summaries beside each table (`<dataset>/table*.json`, written "
             "by bench.report from the run records with the table): no number on this page is typed in. Each "
             "table's own page holds its every cell, p-value and header; this page reads them for the paper's claim.",
             "",
             "Reading an interval: Inc − Sup is the paired difference of hit rates (percentage points) between the "
             "IncRec channel's top K and the base extended by K more items, with its 95% two-level bootstrap "
             "interval; 'holds' needs the interval above 0, 'reversed' below 0, 'cannot tell' when it holds 0. The "
             "controls give the base side the same second budget without R_u (SupR) or a second seed (Seed); a "
             "claim that survives them is not explained by the budget or by seed noise. The MDD is the smallest "
             "true difference the data would detect with 80% power.", ""]
    for dataset, tables in dataset_summaries(results).items():
        parts += [f"## {dataset}", ""]
        ones = {stem: s for stem, s in tables.items() if s["table"] == "table1"}
        if ones:
            parts += ["In short:", "", *answer_lines(dataset, ones), ""]
        for stem, s in ones.items():
            parts += table1_section(s, f"Table 1 ({stem}.md)")
        others = sorted(stem for stem, s in tables.items() if s["table"] != "table1")
        for stem in others:
            parts += ablation_section(stem, tables[stem])
        if others:
            parts += ["Ablations: " + ", ".join(f"[{stem}.md]({dataset}/{stem}.md)" for stem in others)
                      + " (their MDD per K: " + "; ".join(
                          f"{stem} " + ", ".join(f"{_pts(m['mdd'])} pts at K = {k}" for k, m in tables[stem]["mdd"].items())
                          for stem in others) + ").", ""]
        first = next(iter(ones.values()), None) or next(iter(tables.values()))
        parts += premise_section(first)
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
