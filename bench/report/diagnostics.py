"""The protocol and premise diagnostics of PROTOCOL sections 2 and 5, read from run records.

Every table's header states the protocol a record ran under (version, existing.fit and its leak
status, validation days, early stopping), the ITG share of each split, the premise in one line, the
record warnings and the table's minimum detectable difference (MDD); `results/<dataset>/<table>_protocol.md`
(render_protocol) spells the premise diagnostics out, with what they imply in words. Every number and
every sentence's choice comes from the records; records written before the protocol fields existed
(protocol v1) render with what they have.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from bench.pipeline.protocol_record import ITG_SHARE_GAP
from bench.report.collect import Job, TableRuns, existing_name, paired_arrays
from bench.report.stats import minimum_detectable_difference

SPLITS = ("train", "valid", "test")
MDD_SDS = (0.1, 0.2, 0.3, 0.4, 0.5)  # per-request sd of a paired difference at which <table>_protocol.md tabulates the MDD
NON_PRIMARY_FEW = 0.10  # under this share of test ITG from other scenarios, ITG is mostly "missed in the main feed"
NON_PRIMARY_MOST = 0.50
EXPOSED_MOST = 0.50  # over this share of training ITG exposed in its own request, eq. 7's nearest exposed item is the item
SHARE_GAP = ITG_SHARE_GAP  # train / test ITG shares further apart than this: the run warned (bench.pipeline.protocol_record)
WARM_FIT = 0.5  # a rolling fit holding under this share of the last fit's positives is still warming up
WARMUP_MANY = 0.10  # over this share of training requests labelled while warming up, the warm-up bends the training labels
COARSE_ITG = 2.0  # under this mean |ITG| per evaluated request, at least 2 - mean of them hold one ITG item (hit rate 0 or 1)
FIT_MEANING = {
    "rolling": "R_u of a request on day d comes from the existing system fit on every positive before day d "
               "(the system as it stood at the request, refit daily)",
    "train_period": "R_u of every request comes from the existing system fit on every positive before the test period, so a "
                    "training request's own targets are in its system's fit",
    "all": "R_u comes from the existing system fit on every positive of the log, test period included",
}
LEAK_WARNING = "labels leak the test period (existing.fit=all)"


def pct(x: float | None) -> str:
    """A share as a percentage: one decimal under 10%, none above."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    v = 100 * float(x)
    return f"{v:.1f}%" if abs(v) < 10 else f"{v:.0f}%"


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def share(x: float | None) -> str:
    return "—" if x is None else f"{float(x):.3f}"


def protocol(record: dict) -> dict | None:
    """The record's protocol block, None for a record that predates it (protocol v1)."""
    return record.get("protocol")


def protocol_text(record: dict) -> str:
    """One line: version, existing.fit (with the leak warning), validation days, early stopping."""
    p = protocol(record)
    if p is None:
        epochs = record.get("config", {}).get("train", {}).get("epochs")
        fixed = f", fixed {epochs} epochs" if epochs is not None else ""
        return f"protocol v1 (record predates the protocol field){fixed}"
    parts = [f"protocol {p.get('version', '?')}, existing.fit={p.get('existing_fit', '?')}"]
    if p.get("leaks_test_period"):
        parts.append(f"**{LEAK_WARNING}**")
    parts.append(f"{p.get('valid_days', '?')} validation day(s)")
    parts.append("early stopping on the validation requests" if p.get("early_stopping") else "no early stopping")
    return "; ".join(parts)


def protocol_key(record: dict) -> str:
    p = protocol(record)
    return "v1-legacy" if p is None else json.dumps({k: v for k, v in p.items() if k != "warnings"}, sort_keys=True)


def splits(record: dict) -> dict[str, dict] | None:
    return record.get("sample_stats", {}).get("splits")


def premise(record: dict) -> dict | None:
    return record.get("sample_stats", {}).get("premise")


def split_shares_text(record: dict) -> str:
    """ITG share of the targets of each split, over all its requests and over those with a history."""
    sp = splits(record)
    if sp is None:
        st = record.get("sample_stats", {})
        known = [f"{share(st[k])} {label}" for k, label in (("itg_share", "over all requests"),
                                                            ("itg_share_test", "on test")) if st.get(k) is not None]
        return ("ITG share of targets: " + (", ".join(known) if known else "not recorded")
                + " (record predates per-split statistics)")
    cells = [f"{name} {share(sp[name].get('itg_share'))} | {share(sp[name].get('itg_share_with_history'))}"
             for name in SPLITS if name in sp]
    return "ITG share of targets (all requests | requests with a history): " + ", ".join(cells)


def warmup(record: dict) -> dict | None:
    """Under existing.fit=rolling, how far the existing system that labelled the training requests was from the
    one that labels the test requests (PROTOCOL 2): the log's first days are fit on the few positives logged
    before them (the system from before the log is unknown), so their R_u is weaker and more of their targets
    count as ITG. None for another fit mode or a record without the fit details."""
    fits = record.get("existing_fits") or {}
    pos, reqs, cuts = (fits.get(k) or [] for k in ("positives_per_fit", "requests_per_fit", "cutoffs_ms"))
    if fits.get("mode") != "rolling" or not pos or not (len(pos) == len(reqs) == len(cuts)):
        return None
    first_valid = record.get("sample_stats", {}).get("first_valid_ms")
    without = int(fits.get("requests_without_fit") or 0)
    warming = without + sum(int(r) for p, r, c in zip(pos, reqs, cuts)
                            if p < WARM_FIT * pos[-1] and (first_valid is None or c < first_valid))
    train = ((splits(record) or {}).get("train") or {}).get("requests")
    return {"fits": len(pos), "first_fit_positives": int(pos[0]), "last_fit_positives": int(pos[-1]),
            "requests_without_fit": without, "train_requests": None if train is None else int(train),
            "train_requests_warming": warming}


def _of_train(n: int, w: dict) -> str:
    train = w.get("train_requests")
    return f"{n:,}" + ("" if not train else f" ({pct(n / train)} of {train:,})")


def warmup_rows(w: dict) -> list[list[str]]:
    """The rolling existing system's warm-up (warmup) as (diagnostic, value) table rows."""
    return [[f"positives in the first and the last of the {w['fits']} daily fits of the existing system",
             f"{w['first_fit_positives']:,} → {w['last_fit_positives']:,}"],
            ["training requests before any fit (empty R_u: every target ITG)", _of_train(w["requests_without_fit"], w)],
            [f"training requests labelled by a fit with under {pct(WARM_FIT)} of the last fit's positives, or by none",
             _of_train(w["train_requests_warming"], w)]]


def warmup_implication(w: dict) -> str:
    """What the rolling fits' growth implies for the training labels, in words chosen by the numbers."""
    train = w.get("train_requests") or 0
    share = w["train_requests_warming"] / train if train else 0.0
    if share > WARMUP_MANY:
        return (f"{pct(share)} of training requests got R_u from an existing system fit on under {pct(WARM_FIT)} of "
                "the positives of the one that labels the test requests, or from none (the log holds no system "
                f"from before its first day; the first fit holds {w['first_fit_positives']:,} positives, the last "
                f"{w['last_fit_positives']:,}). Such an R_u is weaker, so more of those requests' targets count as "
                "ITG: the incremental tower partly learns from targets a system fit on the whole history would "
                "have retrieved, and a higher ITG share in training than in test comes at least partly from this "
                "warm-up of the rolling fits, not only from the log changing between periods.")
    return (f"Only {pct(share)} of training requests got R_u from an existing system fit on under {pct(WARM_FIT)} of "
            "the last fit's positives, or from none: the warm-up of the rolling fits barely touches the training "
            "labels.")


def premise_summary(record: dict) -> str:
    """The premise in one line (PROTOCOL 5)."""
    pr = premise(record)
    if pr is None:
        return "premise: not recorded (record predates the premise diagnostics)"
    mean_itg = pr.get("eval_mean_itg")
    return (f"premise: {pct(pr.get('test_itg_non_primary_share'))} of test ITG from other scenarios, "
            f"{pct(pr.get('train_itg_exposed_share'))} of training ITG exposed in their request, "
            f"{pct(pr.get('eval_empty_history_share'))} of evaluated requests without history, "
            f"{'—' if mean_itg is None else f'{mean_itg:.2f}'} ITG items per evaluated request")


def premise_rows(pr: dict) -> list[list[str]]:
    """The four premise diagnostics of PROTOCOL 5 as (diagnostic, value) table rows."""
    return [["test ITG targets from a scenario other than the primary one", pct(pr.get("test_itg_non_primary_share"))],
            ["training ITG items exposed in their own request", pct(pr.get("train_itg_exposed_share"))],
            ["evaluated requests with an empty history", pct(pr.get("eval_empty_history_share"))],
            ["ITG items per evaluated request (mean)",
             "—" if pr.get("eval_mean_itg") is None else f"{pr['eval_mean_itg']:.2f}"]]


def record_warnings(jobs: list[Job]) -> list[str]:
    """Every distinct warning of the records, in first-seen order."""
    seen: dict[str, None] = {}
    for j in jobs:
        for w in (protocol(j.record) or {}).get("warnings", []) or []:
            seen.setdefault(str(w), None)
    return list(seen)


def protocol_lines(runs: TableRuns) -> list[str]:
    """The protocol part of a table's header (markdown bullet lines)."""
    jobs = [runs.jobs[k] for k in sorted(runs.jobs)]
    rec = runs.any.record
    keys = {protocol_key(j.record) for j in jobs}
    lines = [f"- {capital(protocol_text(rec))}."]
    if len(keys) > 1:
        kinds: dict[str, int] = {}
        for j in jobs:
            kinds[protocol_text(j.record)] = kinds.get(protocol_text(j.record), 0) + 1
        lines.append("- **Warning: the records of this table ran under different protocols**: "
                     + "; ".join(f"{t} ({n} records)" for t, n in kinds.items()) + ".")
    leaking = [j for j in jobs if (protocol(j.record) or {}).get("leaks_test_period")]
    if leaking and len(leaking) < len(jobs):
        lines.append(f"- **Warning: {len(leaking)} of {len(jobs)} records: {LEAK_WARNING}.**")
    lines.append(f"- {split_shares_text(rec)}.")
    lines.append(f"- {capital(premise_summary(rec))}; see [{protocol_file(runs.stem)}]({protocol_file(runs.stem)}).")
    for w in record_warnings(jobs):
        lines.append(f"- Record warning: {w}")
    return lines


# ---------------------------------------------------------------- minimum detectable difference


def comparison_groups(runs: TableRuns) -> list[tuple[str, list[Job]]]:
    """(label, jobs) of every row of a table that serves a variant (every (model, variant) but the
    base-only runs): the rows whose Inc − Sup the table tests."""
    pairs = sorted({(m, v) for m, v, _ in runs.jobs if v != "off"
                    and (runs.table != "table1" or v == "na")})  # Table 1: IncRec-NA's rows, not its permuted twin
    return [(m if runs.table == "table1" else f"{m}/{v}", runs.select(m, v)) for m, v in pairs]


@dataclass
class Spread:
    """The per-request spread of Inc − Sup at one K over a table's rows, and the MDD it implies."""

    k: int
    n: int  # evaluated requests
    sds: dict[str, float]  # row label -> sd (ddof 1) of the per-request difference averaged over seeds
    means: dict[str, float]  # row label -> mean difference

    @property
    def pooled_sd(self) -> float:
        """Root mean variance over the rows (each row weighs the same: they share the requests)."""
        return float(math.sqrt(np.mean([s * s for s in self.sds.values()]))) if self.sds else math.nan

    @property
    def mdd(self) -> float:
        return minimum_detectable_difference(self.pooled_sd, self.n)

    def row_mdd(self, label: str) -> float:
        return minimum_detectable_difference(self.sds[label], self.n)


def inc_sup_spread(runs: TableRuns, k: int, a: str = "Inc", b: str = "Sup") -> Spread:
    """Per row of the table, the sd over requests of a@k − b@k, each request's difference averaged over
    the seeds (the values the paired test reads), from the variant's own job (its base's Sup)."""
    sds, means, n = {}, {}, 0
    for label, jobs in comparison_groups(runs):
        arrays = paired_arrays(jobs, f"{a}@{k}", jobs, f"{b}@{k}")
        if arrays is None:
            continue
        d = (arrays[0] - arrays[1]).mean(axis=0)
        n = len(d)
        sds[label] = float(d.std(ddof=1)) if len(d) > 1 else 0.0
        means[label] = float(d.mean())
    return Spread(k, n, sds, means)


def mdd_line(runs: TableRuns) -> str:
    """The table's MDD per K (one header line), and how it is computed."""
    spreads = [inc_sup_spread(runs, k) for k in runs.any.record["ks"]]
    measured = [s for s in spreads if s.sds]
    if not measured:
        return "- Minimum detectable difference: not computable (no row measured both Inc@K and Sup@K)."
    def per_row(s: Spread) -> str:
        low, high = (f"{100 * f([s.row_mdd(r) for r in s.sds]):.2f}" for f in (min, max))
        return low if low == high else f"{low}–{high}"
    n_rows = max(len(s.sds) for s in measured)
    return ("- Minimum detectable difference (80% power, two-sided α = 0.05): "
            + ", ".join(f"{100 * s.mdd:.2f} pts at K = {s.k}" for s in measured)
            + f". Computed as (z_0.975 + z_0.8)·sd/√n for a paired difference over the n = {measured[0].n:,} "
            "evaluated requests (normal approximation), with sd the per-request standard deviation of Inc − Sup "
            "(each request averaged over the seeds, the values the p-value's test reads), pooled over the "
            f"{n_rows} row(s) of the table as the root mean variance: "
            + ", ".join(f"sd {s.pooled_sd:.3f} at K = {s.k}" for s in measured)
            + ("; per row " + ", ".join(f"{per_row(s)} pts at K = {s.k}" for s in measured) if n_rows > 1 else "")
            + ".")


# ---------------------------------------------------------------- <table>_protocol.md
def protocol_file(stem: str) -> str:
    """The premise-diagnostics page of one table (table1 -> table1_protocol.md): one per table, so that
    reporting one table never rewrites what another table's header links to."""
    return f"{stem}_protocol.md"


def _setup_key(record: dict) -> str:
    st = record.get("sample_stats", {})
    return json.dumps({"protocol": protocol_key(record), "existing": existing_name(record),
                       "splits": st.get("splits"), "premise": st.get("premise"),
                       "eval_requests": record.get("eval_requests"), "budget": record.get("existing_budget"),
                       "data": record.get("data_fingerprint")}, sort_keys=True, default=str)


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def implications(record: dict) -> list[str]:
    """What the recorded premise diagnostics imply, in words chosen by the numbers."""
    out: list[str] = []
    p, pr, sp = protocol(record), premise(record), splits(record)
    if p is None:
        out.append("The records predate the protocol field: they ran under protocol v1 (existing.fit=train_period, "
                   "no validation split, fixed epochs), where a training request's own targets are in its existing "
                   "system's fit, so training and test labels come from different processes (PROTOCOL 2).")
    else:
        fit = str(p.get("existing_fit"))
        meaning = FIT_MEANING.get(fit, f"existing.fit={fit}")
        if p.get("leaks_test_period"):
            out.append(f"existing.fit={fit}: {meaning}. The {LEAK_WARNING}: R_u and so RTG / ITG are computed with "
                       "knowledge of test-period positives; read every table as an upper bound, not a clean test.")
        else:
            out.append(f"existing.fit={fit}: {meaning}; the labels do not see the test period.")
    if sp is not None and "train" in sp and "test" in sp:
        for key, label in (("itg_share", "overall"), ("itg_share_with_history", "on requests with a history")):
            tr, te = sp["train"].get(key), sp["test"].get(key)
            if tr is None or te is None:
                continue
            gap = abs(tr - te)
            if gap > SHARE_GAP:
                out.append(f"The ITG share of training and test targets ({label}) differs by {gap:.3f} "
                           f"({tr:.3f} against {te:.3f}), more than {SHARE_GAP:.2f}: the incremental tower learns "
                           "RTG / ITG labels from one population and is tested on another.")
            else:
                out.append(f"The ITG share of training and test targets ({label}) differs by {gap:.3f} "
                           f"({tr:.3f} against {te:.3f}), within {SHARE_GAP:.2f}: by this measure training and test "
                           "targets hold alike RTG / ITG mixes.")
    if (w := warmup(record)) is not None:
        out.append(warmup_implication(w))
    if pr is None:
        out.append("The premise diagnostics are not recorded (records predate them): re-run the table with the "
                   "current harness to measure them.")
        return out
    non_primary = pr.get("test_itg_non_primary_share")
    if non_primary is not None:
        if non_primary < NON_PRIMARY_FEW:
            out.append(f"Only {pct(non_primary)} of test ITG targets come from a scenario other than the primary one "
                       f"(under {pct(NON_PRIMARY_FEW)}): on this dataset \"incremental\" mostly means missed by the existing system "
                       "in the main feed, not a cross-scenario interest, so the paper's premise (interests shown in "
                       "other scenarios) is tested only weakly here.")
        elif non_primary < NON_PRIMARY_MOST:
            out.append(f"{pct(non_primary)} of test ITG targets come from a scenario other than the primary one: ITG "
                       "mixes items missed by the existing system in the main feed with cross-scenario interests; the hits-by-"
                       "scenario plot tells which of the two a channel retrieves.")
        else:
            out.append(f"{pct(non_primary)} of test ITG targets come from a scenario other than the primary one: ITG "
                       "is mostly cross-scenario interest, as the paper's premise assumes.")
    exposed = pr.get("train_itg_exposed_share")
    if exposed is not None:
        if exposed > EXPOSED_MOST:
            out.append(f"{pct(exposed)} of training ITG items were exposed in their own request: eq. 7's nearest "
                       "exposed item is then mostly the item itself, so IncRec's α equals IncRec-ori's unless "
                       "increc.alpha_exclude_self is set (the paper's ITG were not exposed).")
        else:
            out.append(f"{pct(exposed)} of training ITG items were exposed in their own request: most were not, as "
                       "eq. 7 assumes.")
    empty = pr.get("eval_empty_history_share")
    if empty is not None:
        out.append(f"{pct(empty)} of evaluated requests have an empty history: on those the user towers see only the "
                   f"profile, so differences between history encoders are carried by the other {pct(1 - empty)}.")
    mean_itg = pr.get("eval_mean_itg")
    if mean_itg is not None:
        if mean_itg < COARSE_ITG:
            # every evaluated request holds at least one ITG item, so mean - 1 >= P(|ITG| >= 2)
            out.append(f"An evaluated request holds {mean_itg:.2f} ITG items on average, so at least "
                       f"{pct(max(0.0, 2.0 - mean_itg))} of them hold a single one, whose hit rate is 0 or 1: "
                       "per-request differences are coarse and their standard deviation is large next to the mean "
                       "differences a table reports (hence the MDD below).")
        else:
            out.append(f"An evaluated request holds {mean_itg:.2f} ITG items on average: per-request hit rates take "
                       "several values, so per-request differences are less coarse than with one ITG item each.")
    return out


def _split_table(sp: dict[str, dict]) -> str:
    rows = []
    for name in SPLITS:
        if name not in sp:
            continue
        s = sp[name]
        rows.append([name, f"{s.get('requests', 0):,}", f"{s.get('requests_nonempty_targets', 0):,}",
                     f"{s.get('targets', 0):,}", share(s.get("itg_share")), share(s.get("itg_share_with_history")),
                     f"{s.get('requests_nonempty_itg', 0):,}"])
    return md_table(["split", "requests", "with targets", "targets", "ITG share", "ITG share (with history)",
                "with ITG"], rows)


def _mdd_section(record: dict, tables: list[TableRuns]) -> list[str]:
    n = int(record.get("eval_requests") or 0)
    out = [f"Minimum detectable difference (80% power, two-sided α = 0.05; (z_0.975 + z_0.8)·sd/√n, the normal "
           f"approximation of a paired test) at the n = {n:,} evaluated requests, in percentage points of hit rate. "
           "It counts the requests only: it leaves out the seed term, which dominates at 5 seeds (PROTOCOL 5), so "
           "Table 1 states its protocol v3 sensitivity (seed, request and interaction variance) in its own header "
           "and per row instead; the figures below serve Tables 2 and 3, not yet moved to v3:", ""]
    out += [md_table(["per-request sd of the difference"] + [f"{sd:.1f}" for sd in MDD_SDS],
                [["MDD (pts)"] + [f"{100 * minimum_detectable_difference(sd, n):.2f}" for sd in MDD_SDS]]), ""]
    observed = []
    notes = []
    for runs in tables:
        if runs.table == "table1":  # protocol v3: its sensitivity is in its header (bench.report.table1.design_lines)
            notes.append(f"{runs.stem}: see the Design lines of [{runs.stem}.md]({runs.stem}.md) (protocol v3).")
            continue
        for k in runs.any.record["ks"]:
            s = inc_sup_spread(runs, k)
            if not s.sds:
                continue
            observed.append([runs.table, str(k), str(len(s.sds)), f"{s.pooled_sd:.3f}", f"{100 * s.mdd:.2f}",
                             f"{100 * min(s.means.values()):+.2f} … {100 * max(s.means.values()):+.2f}"])
            below = sorted(r for r, m in s.means.items() if abs(m) < s.mdd)
            if below:
                notes.append(f"{runs.stem}, K = {k}: |Inc − Sup| is below the MDD ({100 * s.mdd:.2f} pts) for "
                             f"{len(below)} of {len(s.sds)} rows ({', '.join(below)}): there the data cannot tell "
                             f"\"no difference\" from a true difference of up to about {100 * s.mdd:.2f} pts.")
            else:
                notes.append(f"{runs.stem}, K = {k}: |Inc − Sup| exceeds the MDD ({100 * s.mdd:.2f} pts) for every "
                             f"one of the {len(s.sds)} rows.")
    if observed:
        out += ["Observed per-request sd of Inc − Sup (each request averaged over the seeds; pooled over the rows of "
                "the table as the root mean variance) and the MDD it implies:", "",
                md_table(["table", "K", "rows", "sd", "MDD (pts)", "mean Inc − Sup over rows (pts)"], observed), ""]
    if notes:
        out += [f"- {t}" for t in notes] + [""]
    return out


def render_protocol(dataset: str, tables: list[TableRuns]) -> str:
    """results/<dataset>/<table>_protocol.md: the premise diagnostics of PROTOCOL 5 from the records of
    the given tables, one section per distinct setup (protocol, splits, premise) among them."""
    setups: dict[str, list[tuple[TableRuns, Job]]] = {}
    for runs in tables:
        for key in sorted(runs.jobs):
            job = runs.jobs[key]
            setups.setdefault(_setup_key(job.record), []).append((runs, job))
    stems = sorted({runs.stem for runs in tables})
    parts = [f"# Protocol and premise diagnostics ({dataset}: {', '.join(stems)})", "",
             "What the claim Inc@K > Sup@K needs the data to hold (PROTOCOL sections 2 and 5), measured by the "
             f"records that made {', '.join(f'[{s}.md]({s}.md)' for s in stems)}. Every figure and every sentence "
             "below is computed from those records.", ""]
    for i, members in enumerate(setups.values()):
        record = members[0][1].record
        names = sorted({r.stem for r, _ in members})
        its_tables = [r for r in tables if r.stem in names]
        if len(setups) > 1:
            parts += [f"## Setup {i + 1}: {', '.join(names)}", ""]
        parts += [f"- Records: {len(members)} ({', '.join(names)}); data fingerprint "
                  f"`{str(record.get('data_fingerprint', ''))[:16]}`; existing system `{existing_name(record)}`, budget "
                  f"{record.get('existing_budget')}.",
                  f"- {capital(protocol_text(record))}."]
        p = protocol(record)
        if p is not None:
            fit = str(p.get("existing_fit"))
            parts.append(f"- Existing system: existing.fit={fit}: {FIT_MEANING.get(fit, 'not described')}; "
                         + (f"**{LEAK_WARNING}**." if p.get("leaks_test_period") else "no leak of the test period."))
        parts.append(f"- {split_shares_text(record)}.")
        warnings = record_warnings([j for _, j in members])
        parts += [f"- Record warning: {w}" for w in warnings]
        parts.append("")
        sp = splits(record)
        if sp is not None:
            parts += ["ITG share per split, over all requests and over requests with a non-empty history:", "",
                      _split_table(sp), ""]
        pr = premise(record)
        if pr is not None:
            rows = premise_rows(pr) + [["evaluated requests (test requests with a non-empty ITG)",
                                        f"{int(pr.get('eval_requests', 0)):,}"]]
            if (w := warmup(record)) is not None:
                rows += warmup_rows(w)
            parts += ["Premise diagnostics:", "", md_table(["diagnostic", "value"], rows), ""]
        parts += ["What these imply:", ""] + [f"- {t}" for t in implications(record)] + [""]
        parts += _mdd_section(record, its_tables)
    return "\n".join(parts)
