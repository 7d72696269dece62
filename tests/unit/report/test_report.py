"""bench.report on hand-made run records: means, stds, bold placement, protocol v3's comparisons (crossed seed ×
request statistics, requests clustered by user, pooled over backbones), errors, files written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.config import PROJECT_ROOT
from bench.report.__main__ import main as report_main, regenerate_command
from bench.report.collect import ReportError, collect
from bench.evaluation.metrics import METRIC_NAMES
from bench.report.diagnostics import render_protocol
from bench.report.summary import table_summary
from bench.report.stats import (crossed_stats, delta_of, format_interval, mean_std, minimum_detectable_difference, paired_p,
                                pooled, seeds_needed, users_factor_needed)
from bench.report.page import render
from bench.report.table1 import table1, table1_numbers
from bench.report.ablations import table2, table3
from bench.report.header import header

KS = [10, 20]
R = 6  # test requests per record
ROWS = np.array([3, 5, 8, 13, 21, 34])
SPLITS = {"train": {"requests": 100, "requests_nonempty_targets": 60, "targets": 80, "itg_share": 0.876,
                    "itg_share_with_history": 0.835, "requests_nonempty_itg": 50},
          "valid": {"requests": 10, "requests_nonempty_targets": 7, "targets": 9, "itg_share": 0.813,
                    "itg_share_with_history": 0.798, "requests_nonempty_itg": 5},
          "test": {"requests": 12, "requests_nonempty_targets": 8, "targets": 10, "itg_share": 0.793,
                   "itg_share_with_history": 0.779, "requests_nonempty_itg": R}}
PREMISE = {"test_itg_non_primary_share": 0.03, "train_itg_exposed_share": 0.95, "eval_empty_history_share": 0.12,
           "eval_mean_itg": 1.4, "eval_requests": R}
PROTOCOL = {"version": "v2", "existing_fit": "rolling", "leaks_test_period": False, "valid_days": 1,
            "early_stopping": True, "warnings": ["handmade warning: train and test ITG shares differ"]}


def training_log(best: int, run: int) -> dict:
    return {"epoch_seconds": [0.5] * run, "valid_curve": [0.1] * run, "best_epoch": best, "epochs_run": run}


def write_record(root: Path, table: str, model: str, variant: str, seed: int, metrics: dict[str, float],
                 per_request: dict[str, np.ndarray], overrides: list[str] | None = None, legacy: bool = False,
                 protocol: dict | None = None, premise: dict | None = None, splits: dict | None = None,
                 existing_fits: dict | None = None) -> Path:
    """A run.json + per_request.npz pair as bench.pipeline.run writes them, with the given values.

    The new record (default) holds every declared metric at every K (None where not given), the per-split and
    premise statistics, the protocol block, per-model training logs and each evaluated request's user (USERS) in
    per_request.npz; `legacy=True` writes a record as it was before those fields existed (protocol v1): only the
    given metrics, no splits, premise, protocol, best epoch or users. The dataset and requests config are there as in
    real records: request_users reads them to rebuild a legacy record's users, and finds no data at that root."""
    out = root / f"{model}_{variant}_seed{seed}"
    out.mkdir(parents=True)
    arrays = {"rows": ROWS} | ({} if legacy else {"users": USERS})
    for name, hits in per_request.items():
        arrays[f"{name}/hits"] = np.asarray(hits, dtype=np.int64)
        arrays[f"{name}/size"] = np.full(R, 4, dtype=np.int64)
    np.savez(out / "per_request.npz", **arrays)
    if legacy:
        all_metrics = dict(metrics)
        sample_stats = {"requests": 122, "itg_share": 0.386, "itg_share_test": 0.793}
        training = {"base": {"epoch_seconds": [0.5] * 4, "loss": [1.0] * 4}}
    else:
        all_metrics = {f"{p}{n}@{k}": None for n in METRIC_NAMES for k in KS for p in ("", "micro_")} | metrics
        sample_stats = {"requests": 122, "splits": splits or SPLITS, "premise": premise or PREMISE}
        training = {"base": training_log(3, 7)}
        if variant != "off":
            training |= {"variant": training_log(2, 6), "seed_base": training_log(4, 8),
                         "seed2_base": training_log(5, 9)}
    record = {
        "config": {"experiment_name": table, "model": {"name": model}, "increc": {"name": variant},
                   "dataset": {"name": "handmade", "kind": "kuairand", "root": "/nonexistent/handmade",
                               "include_random": False},
                   "requests": {"max_len": 50}, "train": {"epochs": 4}},
        "seed": seed, "overrides": overrides or [f"experiment={table}", f"model={model}", f"increc={variant}", f"seed={seed}"],
        "data_fingerprint": "f" * 64, "code_version": {"git_commit": "abc1234def", "dirty": False},
        "machine": {"cpu": "Handmade CPU", "cores": 2},
        "stage_seconds": {"train_base": 1.5}, "pool_size": 600, "ks": KS, "existing_budget": 16, "eval_requests": R,
        "sample_stats": sample_stats, "training": training,
        "metrics": all_metrics, "curve": {"Base": {"10": 0.1, "20": 0.2}, "Sup": {"10": 0.05, "20": 0.1}},
        "hits_by_tab": {"ITG": [1, 5, 0, 2], **{f"{n}@20": [0, 2, 0, 1] for n in ("Base", "Sup", "Inc")}},
        "per_request": "per_request.npz",
    }
    if not legacy:
        record["protocol"] = protocol or PROTOCOL
    if existing_fits is not None:
        record["existing_fits"] = existing_fits
    (out / "run.json").write_text(json.dumps(record))
    return out / "run.json"


def test_mean_std_and_paired_p_by_hand() -> None:
    assert mean_std([0.1, 0.3]) == pytest.approx((0.2, math.sqrt(0.02)))  # sample std, ddof = 1
    assert mean_std([0.25]) == (0.25, 0.0)
    # five positive differences of distinct size: exact two-sided Wilcoxon p = 2 / 2^5
    assert paired_p(np.array([1.0, 2, 3, 4, 5]), np.zeros(5)) == pytest.approx(0.0625)
    assert paired_p(np.ones(4), np.ones(4)) == 1.0  # no difference at all: no evidence


USERS = np.array([40, 41, 40, 42, 41, 42])  # the user of each evaluated request: three users, two requests each
# Per-request hits (|ITG| = 4 each) of the arms Table 1 compares, one row per seed (0, 1, 2), the same at both K.
# Inc's hits are IncR's, Seed's are SeedR's, Base's and Sup's are 0 (so Inc − Sup is IncR's hits / 4); ShufR is the
# permuted-label twin's IncR; sasrec's SupR has one more hit per request (at most 4) than dssm's.
ARM_HITS = {
    "IncR": [[1, 2, 3, 4, 4, 4], [2, 2, 3, 3, 4, 4], [1, 3, 3, 4, 3, 4]],
    "SupR": [[1, 1, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1], [0, 1, 1, 1, 1, 0]],
    "ShufR": [[1, 1, 2, 2, 1, 1], [0, 1, 2, 1, 1, 2], [1, 1, 1, 2, 2, 1]],
    "SeedR": [[1, 1, 2, 3, 2, 2], [2, 1, 2, 2, 3, 1], [1, 2, 2, 2, 1, 2]],
    "Seed2R": [[2, 1, 1, 3, 2, 2], [1, 1, 2, 3, 2, 1], [2, 1, 2, 2, 2, 1]],
}
POP = {"Pop_Base@10": 0.08, "Pop_Sup@10": 0.03, "Pop_Base@20": 0.25, "Pop_Sup@20": 0.04}
POPR = {"PopR_Base@10": 0.07, "PopR_Base@20": 0.21}  # popularity's top K after removing R_u
BOTH = ("dssm", "sasrec")


def arm_hits(model: str, arm: str, seed: int) -> np.ndarray:
    """[R] the per-request hits of one arm (ARM_HITS) in one backbone's record of one seed."""
    hits = np.array(ARM_HITS[arm][seed])
    return np.minimum(hits + 1, 4) if (model, arm) == ("sasrec", "SupR") else hits


def arm_array(model: str, arm: str, seeds: tuple[int, ...] = (0, 1)) -> np.ndarray:
    """[S, R] the per-request hit rates of one arm over `seeds`, as the report reads them."""
    return np.stack([arm_hits(model, arm, s) / 4 for s in seeds])


# Table 1's comparisons and the ARM_HITS arms they subtract (None: Sup, whose hits are 0)
COMPARED = {"IncR − SupR": ("IncR", "SupR"), "Inc − Sup": ("IncR", None), "IncR − ShufR": ("IncR", "ShufR"),
            "IncR − SeedR": ("IncR", "SeedR"), "SeedR − Seed2R": ("SeedR", "Seed2R")}


def compared(model: str, name: str, seeds: tuple[int, ...] = (0, 1)) -> tuple[np.ndarray, np.ndarray]:
    """[S, R] the two arms of comparison `name` in make_table1's records of `model` (a − b is its D)."""
    a, b = COMPARED[name]
    a_arr = arm_array(model, a, seeds)
    return a_arr, np.zeros_like(a_arr) if b is None else arm_array(model, b, seeds)


def make_table1(root: Path, legacy: bool = False, twin: tuple[str, ...] = BOTH, seed_arms: tuple[str, ...] = BOTH,
                seeds: dict[str, tuple[int, ...]] | None = None, **record_fields) -> None:
    """Table 1's records of dssm and sasrec: a base-only run (off) and IncRec-NA (na) per seed, and the permuted-label
    twin (na_permuted) for the backbones of `twin`; the diversity and A/A arms (Seed, SeedR, Seed2R) only in the
    records of `seed_arms`. `seeds`: per backbone (default: 0 and 1 for both). Record metrics (the cells) are
    0.02·seed apart; per-request hits follow ARM_HITS. dssm: Inc@10 > Sup@10; sasrec: Sup@10 > Inc@10; the popularity
    floor beats every Base@20. legacy: records as written before protocol v2 (Base, Sup, Inc only, no users)."""
    zeros = np.zeros(R, dtype=int)
    for model in BOTH:
        sup10 = {"dssm": 0.04, "sasrec": 0.30}[model]
        for seed in (seeds or {}).get(model, (0, 1)):
            shift = 0.02 * seed
            base = {"Base@10": 0.10 + shift, "Sup@10": sup10 + shift, "Base@20": 0.2 + shift, "Sup@20": 0.05 + shift}
            per = {f"{m}@{k}": zeros for m in ("Base", "Sup") for k in KS}
            if not legacy:
                base |= POP | POPR | {"SupR@10": 0.15, "SupR@20": 0.15}
                per |= {f"SupR@{k}": arm_hits(model, "SupR", seed) for k in KS}
            write_record(root, "table1", model, "off", seed, base, per, legacy=legacy, **record_fields)
            inc = {"Inc@10": 0.20 + shift, "Inc@20": 0.25 + shift}
            inc_per = {f"Inc@{k}": arm_hits(model, "IncR", seed) for k in KS}
            if not legacy:
                inc |= {"IncR@10": 0.22 + shift, "IncR@20": 0.27 + shift}
                inc_per |= {f"IncR@{k}": arm_hits(model, "IncR", seed) for k in KS}
                if model in seed_arms:
                    inc |= {"Seed@10": 0.20 + shift, "Seed@20": 0.25 + shift, "SeedR@10": 0.19 + shift,
                            "SeedR@20": 0.24 + shift, "Seed2R@10": 0.18 + shift, "Seed2R@20": 0.23 + shift}
                    inc_per |= {f"{m}@{k}": arm_hits(model, arm, seed) for m, arm in
                                (("Seed", "SeedR"), ("SeedR", "SeedR"), ("Seed2R", "Seed2R")) for k in KS}
            write_record(root, "table1", model, "na", seed, base | inc, per | inc_per, legacy=legacy, **record_fields)
            if model in twin and not legacy:
                shuf = {"Inc@10": 0.17 + shift, "Inc@20": 0.21 + shift, "IncR@10": 0.16 + shift,
                        "IncR@20": 0.20 + shift}
                shuf_per = {f"{m}@{k}": arm_hits(model, "ShufR", seed) for m in ("Inc", "IncR") for k in KS}
                write_record(root, "table1", model, "na_permuted", seed, base | shuf, per | shuf_per, **record_fields)


def md_tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in `text`, in order: its rows (the header first, the rule left out) as lists of cells."""
    tables: list[list[list[str]]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("| "):
            if not previous.startswith("| "):
                tables.append([])
            cells = line[2:-2].split(" | ")
            if set(cells) != {"---"}:
                tables[-1].append(cells)
        previous = line
    return tables


def column(table: list[list[str]], row: str, name: str) -> str:
    """The cell of `table` in the row whose first cell is `row`, under the header `name`."""
    return next(r for r in table if r[0] == row)[table[0].index(name)]


def test_table1_cells_bold_and_popularity(tmp_path: Path) -> None:
    make_table1(tmp_path)
    (runs,) = collect([tmp_path])
    assert (runs.dataset, runs.table, runs.seeds()) == ("handmade", "table1", [0, 1])
    body, notes = table1(runs)
    blocks = body.split("### K = ")[1:]
    assert [b.split("\n")[0] for b in blocks] == ["10", "20"]  # one section per K
    answers, hits, comparisons, components = md_tables(blocks[0])  # the four tables of a K, in this order
    assert hits[0] == ["backbone", "seeds", "Base@10", "Sup@10", "SupR@10", "Inc@10", "IncR@10", "ShufR@10", "Seed@10",
                       "SeedR@10", "Seed2R@10"]
    dssm, sasrec, pop = hits[1:]
    std = f"{100 * math.sqrt(0.0002):.2f}"  # two seeds 0.02 apart
    assert dssm[:4] == ["dssm", "2", f"11.00 ± {std}", f"5.00 ± {std}"]  # Base@10: (0.10 + 0.12) / 2
    assert dssm[4] == "15.00 ± 0.00"  # SupR from the base-only run
    assert dssm[6] == f"**23.00 ± {std}**"  # IncR is the largest second-K channel: bold
    assert dssm[7] == f"17.00 ± {std}"  # ShufR: the na_permuted twin's IncR@10 (0.16, 0.18)
    assert dssm[8:] == [f"21.00 ± {std}", f"20.00 ± {std}", f"19.00 ± {std}"]  # Seed, SeedR, Seed2R from the variant
    assert sasrec[3] == f"**31.00 ± {std}**" and sasrec[6] == f"23.00 ± {std}"  # Sup beats every other channel: bold
    # the popularity floor: Pop_Base in the Base column, Pop_Sup in the Sup column, nothing else; PopR_Base beside
    assert pop[:4] == ["popularity", "—", "8.00 ± 0.00", "3.00 ± 0.00"] and set(pop[4:]) == {"—"}
    assert ("Popularity after removing R_u (PopR_Base@10, the floor treated as the R-channels are): 7.00 ± 0.00."
            in blocks[0])
    assert "(PopR_Base@20, the floor treated as the R-channels are): 21.00 ± 0.00." in blocks[1]
    assert [a[0] for a in answers[1:]] == ["IncR − SupR@10", "Inc − Sup@10", "IncR − ShufR@10", "IncR − SeedR@10",
                                         "SeedR − Seed2R@10"]  # every declared comparison, in COMPARISONS' order
    assert [a[1] for a in answers[1:]] == ["primary", "paper's", "control", "control", "A/A"]
    assert comparisons[0] == ["backbone", "IncR − SupR@10 [95%] (primary)", "Inc − Sup@10 [95%] (paper's)",
                              "IncR − ShufR@10 [95%] (control)", "IncR − SeedR@10 [95%] (control)",
                              "SeedR − Seed2R@10 [95%] (A/A)"]
    assert all("—" not in c for r in comparisons[1:] for c in r)  # every comparison measured for both backbones
    assert {(r[0], r[1]) for r in components[1:]} == {(m, c) for m in BOTH for c in COMPARED}
    assert "Inc − SupR" not in body and "p Inc" not in body  # v2's mixed comparison and Wilcoxon columns are gone
    assert notes == ["Base@10 beats the popularity floor (8.00) for 2 of 2 backbones.",
                     "Base@20 beats the popularity floor (25.00) for 0 of 2 backbones; not for dssm, sasrec: a trained "
                     "backbone that does not beat popularity is a bug to find, not a result."]


def test_table1_comparison_is_crossed_stats_with_users_as_clusters(tmp_path: Path) -> None:
    """A comparison's cell is crossed_stats of the per-request differences with the requests' users as clusters, and
    the pooled answer is stats.pooled over the backbones' cells."""
    make_table1(tmp_path)
    (runs,) = collect([tmp_path])
    body, _ = table1(runs)
    answers, _, comparisons, components = md_tables(body.split("### K = ")[1])
    d = arm_array("dssm", "IncR") - arm_array("dssm", "SupR")  # [2 seeds, 6 requests]
    st = crossed_stats(d, USERS)
    assert (st.n_seeds, st.n_requests, st.n_clusters) == (2, R, 3)
    assert st.estimate == pytest.approx((36 - 10) / 48)  # IncR's hits 18 + 18, SupR's 6 + 4, over 2 · 6 · 4
    delta = 0.1 * arm_array("dssm", "SupR").mean()  # δ: 10% of the reference arm (SupR)
    cell = column(comparisons, "dssm", "IncR − SupR@10 [95%] (primary)")
    assert cell == f"+54.17 {format_interval(st.low, st.high)} {st.verdict(delta)}"
    unclustered = crossed_stats(d)  # each request its own cluster: another interval, so the users were used
    assert format_interval(unclustered.low, unclustered.high) not in cell
    row = next(r for r in components if r[:2] == ["dssm", "IncR − SupR"])
    assert row[2:] == ["2", f"{100 * st.sigma_seed:.2f}", f"{100 * st.sigma_request:.2f}",
                       f"{100 * st.sigma_interaction:.2f}", f"{st.df:.1f}", f"{100 * st.se:.2f}", f"{st.p:.4f}",
                       f"{100 * st.mdd:.2f}", f"{100 * delta:.2f}"]
    # the mechanism control reads the permuted-label twin's IncR (ShufR: 8 + 7 hits)
    shuf = crossed_stats(arm_array("dssm", "IncR") - arm_array("dssm", "ShufR"), USERS)
    assert shuf.estimate == pytest.approx((36 - 15) / 48)
    assert column(comparisons, "dssm", "IncR − ShufR@10 [95%] (control)").startswith(
        f"+43.75 {format_interval(shuf.low, shuf.high)} ")
    # the pooled answer: stats.pooled over the two backbones' cells, δ the backbones' mean δ
    rows = [crossed_stats(arm_array(m, "IncR") - arm_array(m, "SupR"), USERS) for m in BOTH]
    pool = pooled(rows)
    mean_delta = 0.1 * (arm_array("dssm", "SupR").mean() + arm_array("sasrec", "SupR").mean()) / 2
    assert f"±{100 * mean_delta:.2f}" == "±3.33"  # SupR: 10 and 22 hits of 48
    seeds = seeds_needed(rows, mean_delta)
    answer = next(a for a in answers if a[0] == "IncR − SupR@10")
    assert answer == ["IncR − SupR@10", "primary",
                      f"{100 * pool.estimate:+.2f} {format_interval(pool.low, pool.high)}",
                      format_interval(pool.low90, pool.high90), f"{100 * pool.tau:.2f}", "±3.33",
                      f"**{pool.verdict(mean_delta)}**", f"{100 * pool.mdd:.2f}",
                      "not reachable by seeds alone" if seeds is None else str(seeds), "2"]
    assert pool.estimate == pytest.approx(((36 - 10) + (36 - 22)) / 96)  # equal SEs: the plain mean of the rows
    at10 = table1_numbers(runs)[0]
    assert at10.answers["IncR − SupR"].result == pool


def test_table1_header_protocol_premise_and_design(tmp_path: Path) -> None:
    make_table1(tmp_path)
    for path in tmp_path.glob("sasrec_*/run.json"):  # sasrec's jobs ran on another machine kind
        record = json.loads(path.read_text())
        record["machine"] = {"cpu": "Other CPU", "cores": 16, "gpu": "Some GPU"}
        path.write_text(json.dumps(record))
    (runs,) = collect([tmp_path])
    text = header(runs, "CMD")
    assert "; machine Handmade CPU, 2 cores (6 jobs); Other CPU, 16 cores, GPU Some GPU (6 jobs)." in text
    assert ("- Protocol v2, existing.fit=rolling; 1 validation day(s); early stopping on the validation "
            "requests.") in text
    assert "leak" not in text
    assert ("- ITG share of targets (all requests | requests with a history): train 0.876 | 0.835, valid 0.813 | "
            "0.798, test 0.793 | 0.779.") in text
    assert ("- Premise: 3.0% of test ITG from other scenarios, 95% of training ITG exposed in their request, 12% of "
            "evaluated requests without history, 1.40 ITG items per evaluated request; see [table1_protocol.md](table1_protocol.md).") in text
    assert "- Record warning: handmade warning: train and test ITG shares differ" in text
    assert text.count("handmade warning") == 1  # the same warning of every record, once
    # Table 1's page states protocol v3's design, not v2's normal-approximation MDD
    full = render(runs, "CMD", [])
    head = full.split("### K = ")[0]
    assert "Minimum detectable difference" not in head and "(z_0.975 + z_0.8)" not in head
    assert "- Statistics (protocol v3, PROTOCOL 5): each comparison's cell is the mean of D[s, r] = a − b" in head
    assert "the request term clustered by user" in head and "Hartung–Knapp–Sidik–Jonkman" in head
    rows = [crossed_stats(arm_array(m, "IncR") - arm_array(m, "SupR"), USERS) for m in BOTH]
    pool, delta = pooled(rows), 0.1 * (arm_array("dssm", "SupR").mean() + arm_array("sasrec", "SupR").mean()) / 2
    seeds = seeds_needed(rows, delta)
    users = users_factor_needed(rows, delta)

    def span(name: str) -> str:
        low, high = (f"{100 * f(getattr(r, name) for r in rows):.2f}" for f in (min, max))
        return low if low == high else f"{low}–{high}"

    assert (f"- Design, IncR − SupR@10: σ_seed {span('sigma_seed')}, σ_request {span('sigma_request')}, "
            f"σ_interaction {span('sigma_interaction')} points per request over the backbones; pooled sensitivity "
            f"{100 * pool.mdd:.2f} points against δ 3.33: "
            + (f"δ is reached at {seeds} seeds per backbone" if seeds else "seeds alone do not reach δ")
            + (f"; at the rows' own seeds, {users:.2f}× the test users would." if users else
               "; users alone do not reach δ.")) in head
    assert "- Design, Inc − Sup@20: " in head and "- Design, IncR − ShufR" not in head  # primary and paper's only
    # best epoch / epochs run per trained model (base, variant, seed base, A/A base)
    assert "| dssm | 3.0 / 7.0 | 2.0 / 6.0 | 4.0 / 8.0 | 5.0 / 9.0 |" in full


def test_a_record_with_uncommitted_code_is_named_in_the_provenance(tmp_path: Path) -> None:
    make_table1(tmp_path)
    (clean,) = collect([tmp_path])
    assert "uncommitted" not in render(clean, "CMD", [])
    for name in ("dssm_na_seed0", "dssm_na_seed1", "sasrec_off_seed1"):
        path = tmp_path / name / "run.json"
        record = json.loads(path.read_text())
        record["code_version"] = {"git_commit": "abc1234def", "dirty": True}
        path.write_text(json.dumps(record))
    (runs,) = collect([tmp_path])
    (provenance,) = [line for line in render(runs, "CMD", []).splitlines() if line.startswith("- Provenance:")]
    assert provenance.startswith("- Provenance: code abc1234def (**made with uncommitted changes in bench/ or models/**: "
                                 "dssm/na seeds 0, 1; sasrec/off seeds 1); job time ")


def test_leaking_protocol_is_flagged(tmp_path: Path) -> None:
    make_table1(tmp_path / "runs", protocol=PROTOCOL | {"existing_fit": "all", "leaks_test_period": True})
    (runs,) = collect([tmp_path / "runs"])
    assert "existing.fit=all; **labels leak the test period (existing.fit=all)**" in header(runs, "CMD")
    text = render_protocol("handmade", [runs])
    assert "**labels leak the test period (existing.fit=all)**" in text
    assert "read every table as an upper bound" in text


def test_protocol_md_from_the_records(tmp_path: Path) -> None:
    make_table1(tmp_path, twin=())  # no permuted-label twin: see the next test
    text = render_protocol("handmade", collect([tmp_path]))
    assert text.startswith("# Protocol and premise diagnostics (handmade: table1)")
    assert "| train | 100 | 60 | 80 | 0.876 | 0.835 | 50 |" in text and "| test | 12 | 8 | 10 | 0.793 | 0.779 | 6 |" in text
    assert "| test ITG targets from a scenario other than the primary one | 3.0% |" in text
    assert ("Only 3.0% of test ITG targets come from a scenario other than the primary one (under 10%): on this "
            "dataset \"incremental\" mostly means missed by the existing system in the main feed") in text
    assert "95% of training ITG items were exposed in their own request: eq. 7's nearest exposed item" in text
    assert "12% of evaluated requests have an empty history" in text and "the other 88%" in text
    assert "holds 1.40 ITG items on average, so at least 60% of them hold a single one" in text
    assert "differs by 0.083 (0.876 against 0.793), within 0.10" in text
    assert "existing.fit=rolling: R_u of a request on day d comes from the existing system fit" in text
    # the MDD table at the 6 evaluated requests, and the observed spread of Inc − Sup (its seed average per request)
    assert f"| MDD (pts) | {100 * minimum_detectable_difference(0.1, R):.2f} |" in text
    # Table 1's sensitivity is protocol v3's, in its header: the request-only MDD rows are left to Tables 2 and 3
    assert "| table1 | 10 |" not in text and "table1: see the Design lines of [table1.md](table1.md) (protocol v3)." in text
    assert "it leaves out the seed term" in text


def test_the_request_only_spread_reads_increc_na_beside_its_twin(tmp_path: Path) -> None:
    """inc_sup_spread (v2's MDD, still used by Tables 2 and 3 and the fallback header line) reads IncRec-NA's
    rows of Table 1, never its permuted twin's (which would overwrite them under the same backbone label)."""
    from bench.report.diagnostics import inc_sup_spread

    make_table1(tmp_path)  # with the na_permuted twin (its Inc's hits: ShufR's)
    (runs,) = collect([tmp_path])
    spread = inc_sup_spread(runs, 10)
    sd = float(np.std(arm_array("dssm", "IncR").mean(axis=0), ddof=1))  # IncRec-NA's Inc − Sup, as without the twin
    assert spread.sds["dssm"] == pytest.approx(sd) and spread.means["dssm"] == pytest.approx(0.75)


def test_new_record_under_protocol_v1(tmp_path: Path) -> None:
    # protocol v1 written by the new harness: no validation split, item-CF fit on the training period
    v1 = {"version": "v1", "existing_fit": "train_period", "leaks_test_period": False, "valid_days": 0,
          "early_stopping": False, "warnings": []}
    splits = {"train": SPLITS["train"] | {"itg_share": 0.368, "itg_share_with_history": 0.160}, "test": SPLITS["test"]}
    make_table1(tmp_path, protocol=v1, splits=splits)
    (runs,) = collect([tmp_path])
    text = header(runs, "CMD")
    assert "- Protocol v1, existing.fit=train_period; 0 validation day(s); no early stopping." in text
    assert "train 0.368 | 0.160, test 0.793 | 0.779." in text and "valid 0." not in text and "Record warning" not in text
    md = render_protocol("handmade", [runs])
    assert "| valid |" not in md
    assert "(overall) differs by 0.425 (0.368 against 0.793), more than 0.10: the incremental tower learns" in md
    assert "existing.fit=train_period: R_u of every request comes from the existing system fit on every positive before" in md


def test_protocol_md_words_follow_the_numbers(tmp_path: Path) -> None:
    premise = PREMISE | {"test_itg_non_primary_share": 0.6, "train_itg_exposed_share": 0.2, "eval_mean_itg": 3.5}
    make_table1(tmp_path, premise=premise)
    text = render_protocol("handmade", collect([tmp_path]))
    assert "60% of test ITG targets come from a scenario other than the primary one: ITG is mostly cross-scenario" in text
    assert "mostly means missed by the existing system" not in text
    assert "20% of training ITG items were exposed in their own request: most were not, as eq. 7 assumes." in text
    assert "holds 3.50 ITG items on average: per-request hit rates take several values" in text


DAY = 86_400_000


def rolling_fits(positives: list[int], requests: list[int], without: int) -> dict:
    """existing_fits as bench.existing.fit records it under rolling: one fit per day from day 1 (cutoff = the
    day's start); sample_stats' first_valid_ms is not set by write_record, so every fit counts as training's."""
    return {"mode": "rolling", "n_fits": len(positives), "positives_per_fit": positives, "requests_per_fit": requests,
            "cutoffs_ms": [DAY * (d + 1) for d in range(len(positives))], "requests_without_fit": without}


def test_protocol_md_states_the_rolling_fits_warm_up(tmp_path: Path) -> None:
    # 100 training requests: 5 before any fit, 30 + 20 on fits under half the last fit's 1,000 positives
    make_table1(tmp_path / "warm", existing_fits=rolling_fits([10, 400, 600, 1000], [30, 20, 25, 25], 5))
    text = render_protocol("handmade", collect([tmp_path / "warm"]))
    assert "| positives in the first and the last of the 4 daily fits of the existing system | 10 → 1,000 |" in text
    assert "| training requests before any fit (empty R_u: every target ITG) | 5 (5.0% of 100) |" in text
    assert ("| training requests labelled by a fit with under 50% of the last fit's positives, or by none | "
            "55 (55% of 100) |") in text
    assert "55% of training requests got R_u from an existing system fit on under 50% of the positives" in text
    assert "not only from the log changing between periods" in text
    # a system that is nearly warm from the start: the words say the warm-up barely matters
    make_table1(tmp_path / "cold", existing_fits=rolling_fits([900, 950, 1000], [40, 30, 30], 2))
    text = render_protocol("handmade", collect([tmp_path / "cold"]))
    assert "Only 2.0% of training requests got R_u from an existing system fit on under 50%" in text
    # one fit on the training period: no warm-up to state
    fits = {"mode": "train_period", "n_fits": 1, "positives_per_fit": [1000], "requests_per_fit": [122],
            "cutoffs_ms": [DAY], "requests_without_fit": 0}
    make_table1(tmp_path / "v1", existing_fits=fits)
    assert "daily fits" not in render_protocol("handmade", collect([tmp_path / "v1"]))


def make_under_floor(root: Path, sasrec_base20: tuple[float, float] = (0.50, 0.50)) -> None:
    """Base-only records, two seeds: dssm hits requests 0, 1 and 4 at K = 20, all of which popularity's top 20
    hits too; sasrec hits 2 and 3, which popularity misses; only dssm (Base@20 10%) is under the floor (25%).
    sasrec_base20: sasrec's Base@20 in seeds 0 and 1."""
    pop20 = np.array([1, 1, 0, 0, 1, 1])
    for seed in (0, 1):
        for model, hits20, base20 in (("dssm", np.array([1, 1, 0, 0, 1, 0]), 0.10),
                                      ("sasrec", np.array([0, 0, 1, 1, 0, 0]), sasrec_base20[seed])):
            metrics = POP | {"Base@10": 0.10, "Sup@10": 0.05, "Base@20": base20, "Sup@20": 0.05, "SupR@10": 0.1, "SupR@20": 0.1}
            per = {"Base@10": hits20, "Base@20": hits20, "Pop_Base@10": pop20, "Pop_Base@20": pop20,
                   **{f"{c}@{k}": np.zeros(R, dtype=int) for c in ("Sup", "SupR") for k in KS}}
            write_record(root, "table1", model, "off", seed, metrics, per)


def test_a_backbone_under_the_floor_gets_its_popularity_agreement(tmp_path: Path) -> None:
    make_under_floor(tmp_path)
    (runs,) = collect([tmp_path])
    at20 = table1_numbers(runs)[1]
    assert at20.agreements() == {"dssm": 1.0, "sasrec": 0.0}
    _, verdicts = table1(runs)
    assert ("Base@20 beats the popularity floor (25.00) for 1 of 2 backbones; not for dssm (of the test requests its "
            "Base@20 hits, popularity's top 20 hits too 100% for dssm; for the backbones above it 0.0%): a trained "
            "backbone that does not beat popularity is a bug to find, not a result.") in verdicts


def test_a_seed_under_the_floor_is_named_when_the_mean_is_above_it(tmp_path: Path) -> None:
    make_under_floor(tmp_path / "one", sasrec_base20=(0.60, 0.20))  # mean 40% above the floor (25%), seed 1 under it
    (runs,) = collect([tmp_path / "one"])
    at20 = table1_numbers(runs)[1]
    assert at20.below_popularity() == ["dssm"]
    assert at20.under_floor_in_seeds() == {"sasrec": [1, 2]}  # dssm is under on the mean: named there, not here
    _, verdicts = table1(runs)
    assert any(v.startswith("Base@20 beats the popularity floor (25.00) for 1 of 2 backbones;")
               and v.endswith("not a result. Seed by seed, Base@20 is not above the floor for sasrec in 1 of 2 seeds.")
               for v in verdicts)
    make_under_floor(tmp_path / "none")  # both of sasrec's seeds above: no sentence
    (runs,) = collect([tmp_path / "none"])
    assert table1_numbers(runs)[1].under_floor_in_seeds() == {}
    assert not any("Seed by seed" in v for v in table1(runs)[1])


def test_a_collapsed_base_is_named_under_the_training_table(tmp_path: Path) -> None:
    make_table1(tmp_path)
    for path in tmp_path.glob("dssm_*_seed0/run.json"):  # dssm's seed-0 base collapsed; every other base did not
        record = json.loads(path.read_text())
        for role, log in record["training"].items():
            if role in ("base", "seed_base"):
                log["ranking"] = {"requests": 6, "k": 10, "modal_top_share": 1.0 if role == "base" else 0.2,
                                  "collapsed": role == "base"}
        path.write_text(json.dumps(record))
    (runs,) = collect([tmp_path])
    text = render(runs, "CMD", [])
    assert ("**Collapsed towers**: the same top K₀ for half the validation requests or more (bench/evaluation/collapse.py), a global "
            "ranking rather than a personalised one, in dssm base in 1 of 1 seeds (top-K₀ share up to 100%).") in text
    make_table1(tmp_path / "plain")
    assert "Collapsed towers" not in render(collect([tmp_path / "plain"])[0], "CMD", [])


def test_legacy_records_still_render(tmp_path: Path) -> None:
    # records written before the protocol, splits, premise, controls, users and early stopping existed (protocol v1)
    make_table1(tmp_path / "runs", legacy=True)
    (runs,) = collect([tmp_path / "runs"])
    text = render(runs, "CMD", [])
    assert "- Protocol v1 (record predates the protocol field), fixed 4 epochs." in text
    assert "ITG share of targets: 0.386 over all requests, 0.793 on test (record predates per-split statistics)" in text
    assert "- Premise: not recorded (record predates the premise diagnostics)" in text
    assert "Training: no record holds a best epoch (the records predate early stopping)." in text
    body, notes = table1(runs)
    answers, hits, comparisons, _ = md_tables(body.split("### K = ")[1])
    dssm = hits[1]
    assert dssm[4] == "—" and dssm[7:] == ["—"] * 4  # SupR, ShufR, Seed, SeedR, Seed2R: not in the records
    assert dssm[5] == "**21.00 ± 1.41**"  # Inc is the largest second-K channel
    # Inc − Sup as before; no users in the records and their data are not here: each request its own cluster
    st = crossed_stats(arm_array("dssm", "IncR"))  # Inc − Sup: Inc's hits are IncR's, Sup's are 0
    assert st.n_clusters == R and st.estimate == pytest.approx(0.75)
    assert column(comparisons, "dssm", "Inc − Sup@10 [95%] (paper's)") == (
        f"+75.00 {format_interval(st.low, st.high)} {st.verdict(0.0)}")
    assert [column(comparisons, "dssm", f"{c}@10 [95%] ({role})") for c, role in
            (("IncR − SupR", "primary"), ("IncR − ShufR", "control"), ("IncR − SeedR", "control"),
             ("SeedR − Seed2R", "A/A"))] == ["—"] * 4
    assert column(answers, "IncR − SupR@10", "verdict") == "not measured: the records predate IncR@10"
    assert "IncR − SupR@10 not measured for every backbone: the records predate IncR@10." in notes
    assert "IncR − ShufR@10 not measured for every backbone: no na_permuted records (the permuted-label twin)." in notes
    assert "SeedR − Seed2R@10 not measured for every backbone: the records predate SeedR@10." in notes
    assert ("Requests not clustered by user at K = 10 for dssm, sasrec: the records predate per-request users and "
            "their data are not here to rebuild them (each request its own cluster).") in notes
    assert not any("popularity floor" in v for v in notes)  # no Pop_* in these records
    protocol_md = render_protocol("handmade", [runs])
    assert "predate the protocol field: they ran under protocol v1" in protocol_md
    assert "The premise diagnostics are not recorded (records predate them)" in protocol_md
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0


def test_rows_without_the_new_arms_say_why(tmp_path: Path) -> None:
    """sasrec has no permuted-label twin and its records predate SeedR; dssm's predate Seed2R only: each comparison
    that lacks an arm is '—' with the reason under the table, and the pooled answer says it could not pool."""
    make_table1(tmp_path, twin=("dssm",), seed_arms=("dssm",))
    for path in tmp_path.glob("dssm_na_seed*/run.json"):
        record = json.loads(path.read_text())
        record["metrics"] |= {f"Seed2R@{k}": None for k in KS}
        path.write_text(json.dumps(record))
    (runs,) = collect([tmp_path])
    body, notes = table1(runs)
    answers, hits, comparisons, components = md_tables(body.split("### K = ")[1])
    assert column(hits, "sasrec", "ShufR@10") == "—" and column(hits, "sasrec", "SeedR@10") == "—"
    assert column(hits, "dssm", "ShufR@10") == f"17.00 ± {100 * math.sqrt(0.0002):.2f}"
    assert column(comparisons, "sasrec", "IncR − ShufR@10 [95%] (control)") == "—"
    assert column(comparisons, "sasrec", "IncR − SeedR@10 [95%] (control)") == "—"
    assert column(comparisons, "dssm", "SeedR − Seed2R@10 [95%] (A/A)") == "—"
    assert column(comparisons, "dssm", "IncR − ShufR@10 [95%] (control)").startswith("+43.75 [")  # dssm's twin is there
    assert column(comparisons, "sasrec", "IncR − SupR@10 [95%] (primary)").startswith("+29.17 [")
    assert ("sasrec", "IncR − ShufR") not in {(r[0], r[1]) for r in components}
    for name in ("IncR − ShufR@10", "IncR − SeedR@10"):  # one backbone measured each: nothing to pool
        assert column(answers, name, "verdict") == "not pooled (fewer than two backbones with an interval)"
        assert column(answers, name, "backbones") == "1"
    assert column(answers, "SeedR − Seed2R@10", "verdict") == (  # no backbone measured it: the reasons
        "not measured: the records predate Seed2R@10; the records predate SeedR@10")
    assert column(answers, "SeedR − Seed2R@10", "backbones") == "0"
    assert column(answers, "IncR − SupR@10", "backbones") == "2"
    assert "IncR − ShufR@10 not measured for sasrec: no na_permuted records (the permuted-label twin)." in notes
    assert "IncR − SeedR@10 not measured for sasrec: the records predate SeedR@10." in notes
    assert "SeedR − Seed2R@10 not measured for dssm: the records predate Seed2R@10." in notes
    assert "SeedR − Seed2R@10 not measured for sasrec: the records predate SeedR@10." in notes
    assert "IncR − ShufR@20 not measured for sasrec: no na_permuted records (the permuted-label twin)." in notes
    assert not any(n.startswith(("IncR − SupR", "Inc − Sup")) for n in notes)  # both measured for both backbones
    assert not any("not clustered" in n for n in notes)  # every record holds its users


def test_backbones_with_different_seed_counts_pool(tmp_path: Path) -> None:
    """A headline backbone with 3 seeds beside one with 2: each row's statistics over its own seeds, pooled as
    stats.pooled pools those rows; within one backbone, arms with different seeds are still refused."""
    make_table1(tmp_path / "runs", seeds={"dssm": (0, 1, 2), "sasrec": (0, 1)})
    (runs,) = collect([tmp_path / "runs"])
    assert runs.seeds() == [0, 1, 2]
    at10 = table1_numbers(runs)[0]
    assert [(r.model, r.n_seeds) for r in at10.rows] == [("dssm", 3), ("sasrec", 2)]
    own = {"dssm": (0, 1, 2), "sasrec": (0, 1)}
    for name in COMPARED:
        rows = [crossed_stats(np.subtract(*compared(m, name, own[m])), USERS) for m in BOTH]
        assert [r.comparisons[name].stats for r in at10.rows] == rows
        assert [s.n_seeds for s in rows] == [3, 2]
        assert at10.answers[name].result == pooled(rows)
        assert at10.answers[name].result.k == 2
    body, _ = table1(runs)
    _, hits, _, components = md_tables(body.split("### K = ")[1])
    assert [r[:3] for r in hits[1:3]] == [["dssm", "3", "12.00 ± 2.00"], ["sasrec", "2", "11.00 ± 1.41"]]
    assert {(r[0], r[2]) for r in components[1:]} == {("dssm", "3"), ("sasrec", "2")}
    summary = table_summary(runs, "CMD")
    assert [(r["model"], r["seeds"]) for r in summary["table1"]["10"]["rows"]] == [("dssm", 3), ("sasrec", 2)]
    assert summary["table1"]["10"]["pooled"]["IncR − SupR"]["pooled"]["k"] == 2
    (tmp_path / "runs" / "sasrec_na_permuted_seed1" / "run.json").unlink()  # one of sasrec's arms lacks a seed
    with pytest.raises(ReportError, match=r"the arms of sasrec have different seeds \(sasrec/na: seeds \[0, 1\]; "
                                          r"sasrec/na_permuted: seeds \[0\]; sasrec/off: seeds \[0, 1\]\)"):
        collect([tmp_path / "runs"])


TB_ITG_INC_HITS = np.array([1, 2, 3, 4, 4, 4])  # TB-ITG's per-request Inc@10 hits in make_ablations (size 4 each), seed 0
TB_ITG_INC_HITS_SEED1 = np.array([1, 2, 2, 4, 3, 4])  # and seed 1: two seeds give protocol v3 an interval
SUP_HITS = np.array([0, 1, 0, 1, 0, 1])  # every other per-request array of make_ablations


def make_ablations(root: Path) -> None:
    """Hand-made Table 2 (root/t2) and Table 3 (root/t3) records of dssm, seeds 0 and 1: every per-request array is
    SUP_HITS but TB-ITG's Inc@10 (TB_ITG_INC_HITS, TB_ITG_INC_HITS_SEED1)."""
    per = {f"{n}@{k}": SUP_HITS for n in ("Base", "Sup", "Inc", "Exposure") for k in KS}
    for seed, itg_hits in ((0, TB_ITG_INC_HITS), (1, TB_ITG_INC_HITS_SEED1)):
        for variant, inc in (("off", None), ("tb_itg", 0.3), ("tb_boost", 0.4), ("na", 0.2)):
            m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1} | POP
            if inc is not None:
                m |= {"Inc@10": inc, "Inc@20": inc + 0.1}
            extra = {"Inc@10": itg_hits} if variant == "tb_itg" else {}
            write_record(root / "t2", "table2", "dssm", variant, seed, m, per | extra)
        for variant, inc, exp in (("na", 0.2, 0.1), ("ori", 0.15, 0.3), ("on", 0.18, 0.35)):
            m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1, "Inc@10": inc, "Inc@20": inc,
                 "Exposure@10": exp, "Exposure@20": exp} | POP
            write_record(root / "t3", "table3", "dssm", variant, seed, m, per)


def tb_itg_stats():
    """Protocol v3's statistics of TB-ITG's Inc@10 − Sup@10 in make_ablations: [2 seeds, 6 requests], by user."""
    d = (np.stack([TB_ITG_INC_HITS, TB_ITG_INC_HITS_SEED1]) - SUP_HITS) / 4
    return d, crossed_stats(d, USERS)


def test_table2_and_table3_layout(tmp_path: Path) -> None:
    make_ablations(tmp_path)
    t2, t3 = collect([tmp_path])
    rows = table2(t2, "dssm").splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| TB-Online", "| TB-ITG", "| TB-boost", "| IncRec-NA", "| popularity"]
    # the floor: Pop_Base@K as Base, Pop_Sup@K in the Inc column, nothing tested, never bold
    assert rows[4] == ("| popularity | 8.00 ± 0.00 | 3.00 ± 0.00 | — | — | — | 25.00 ± 0.00 | 4.00 ± 0.00 | — | — | — |")
    assert rows[0].split(" | ")[2] == "5.00 ± 0.00"  # TB-Online's Inc@K is its Sup@K
    assert rows[2].split(" | ")[2] == "**40.00 ± 0.00**"  # TB-boost has the best Inc@10
    # TB-ITG's Inc@10 against the Sup@10 of the same standalone base, per seed and request: protocol v3's t interval
    d, s = tb_itg_stats()
    cells = rows[1].split(" | ")
    assert cells[3] == f"{s.p:.4f}" and cells[4] == f"{100 * d.mean():+.2f} [{100 * s.low:+.2f}, {100 * s.high:+.2f}]"
    assert cells[5] == s.verdict(delta_of(float((SUP_HITS / 4).mean())))  # δ = 10% of the reference arm, Sup@10
    assert rows[0].split(" | ")[3] == "—" and rows[0].split(" | ")[4] == "—"
    tb_boost = rows[2].split(" | ")  # the same per-request values as Sup: no difference, no spread
    assert tb_boost[3] == "1.0000" and tb_boost[4] == "+0.00 [+0.00, +0.00]" and tb_boost[5] == "equivalent"
    main, p_table = table3(t3, "dssm")
    head = main.splitlines()[0]
    assert head == "| variant | Base@10 | Inc@10 | Base@20 | Inc@20 | Exposure Hit@10 | Exposure Hit@20 |"
    na, ori, on, pop = (r.split(" | ") for r in main.splitlines()[2:])
    assert pop == ["| popularity", "8.00 ± 0.00", "3.00 ± 0.00", "25.00 ± 0.00", "4.00 ± 0.00", "—", "— |"]
    assert na[2] == "**20.00 ± 0.00**" and on[5] == "**35.00 ± 0.00**" and ori[5] == "30.00 ± 0.00"
    assert [r.split(" | ")[0] for r in p_table.splitlines()[2:]] == ["| IncRec-ori", "| IncRec"]
    assert p_table.splitlines()[0].startswith("| vs IncRec-NA | Inc@10 − NA [95%] | p | verdict | Inc@20 − NA [95%] | p |")
    ori_p = p_table.splitlines()[2].split(" | ")
    assert ori_p[1] == "+0.00 [+0.00, +0.00]" and ori_p[2] == "1.0000"  # the same per-request values as IncRec-NA


def test_table3_backbone_without_increc_na_tests_nothing(tmp_path: Path) -> None:
    """A backbone with no IncRec-NA runs has nothing to test its variants against, even when another backbone
    of the same table has them; its popularity row comes from the first variant it does have."""
    make_ablations(tmp_path)
    m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1, "Inc@10": 0.2, "Inc@20": 0.2,
         "Exposure@10": 0.3, "Exposure@20": 0.3} | POP
    write_record(tmp_path / "t3", "table3", "sasrec", "ori", 0, m, {})
    t3 = next(t for t in collect([tmp_path]) if t.table == "table3")
    main, p_table = table3(t3, "sasrec")
    assert p_table.count("\n") == 1  # the header and its rule only
    assert main.splitlines()[2].startswith("| IncRec-NA | — |") and "| popularity | 8.00 ± 0.00 |" in main
    _, dssm_p = table3(t3, "dssm")
    assert len(dssm_p.splitlines()) == 4  # dssm still tests IncRec-ori and IncRec against its IncRec-NA


@pytest.mark.slow
def test_report_cli_writes_tables_and_plots(tmp_path: Path) -> None:
    make_table1(tmp_path / "runs")
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    folder = tmp_path / "results" / "handmade"
    text = (folder / "table1.md").read_text()
    assert text.startswith("# Table 1: every backbone, base vs IncRec-NA (handmade)")
    assert "K = 10 | 20 (1.67% | 3.33% of the pool); the paper's K = 1k | 2k, so ours is 1/100 | 1/100 the paper's." in text
    assert "- Seeds: 0, 1;" in text and "| YouTube-DNN | 1.33 |" in text
    assert (folder / "table1_protocol.md").read_text().startswith("# Protocol and premise diagnostics (handmade: table1)")
    assert "see [table1_protocol.md](table1_protocol.md)." in text  # the header links its own diagnostics page
    for png in ("table1_hit_vs_k.png", "table1_itg_hits_by_tab.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # reporting another table of the dataset leaves this table's diagnostics page alone
    diagnostics = (folder / "table1_protocol.md").read_bytes()
    make_ablations(tmp_path / "ablations")
    assert report_main([str(tmp_path / "ablations"), "--out", str(tmp_path / "results")]) == 0
    assert (folder / "table2_protocol.md").exists() and (folder / "table1_protocol.md").read_bytes() == diagnostics
    # a second report gives the same bytes: nothing but the data decides the output
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first


def test_plots_take_their_metrics_from_metrics(tmp_path: Path) -> None:
    from bench.evaluation.metrics import METRICS
    from bench.report.plots import CURVE_METRICS, panels, tab_series

    assert CURVE_METRICS == tuple(m.name for m in METRICS if m.curve)
    make_table1(tmp_path)
    (runs,) = collect([tmp_path])
    for job in runs.jobs.values():  # a record that also counts a control's and the floor's hits per tab
        job.record["hits_by_tab"] |= {"SupR@20": [0, 1, 0, 0], "Pop_Base@20": [1, 1, 0, 0]}
    (_, base_jobs, variant_jobs), _ = panels(runs, [("dssm", "na"), ("sasrec", "na")])
    series = tab_series(base_jobs, variant_jobs, 20)
    assert [label for label, _ in series] == ["Base@20", "Sup@20", "SupR@20", "Inc@20", "Pop_Base@20"]
    assert series[2][1].tolist() == [0, 2, 0, 0]  # summed over the two seeds


def test_regenerate_command_keeps_shared_overrides_only(tmp_path: Path) -> None:
    for table, models, variants in (("table1", ("dssm", "sasrec"), ("off", "na")), ("table2", ("sasrec",), ("off", "tb_itg"))):
        for model in models:
            for seed in (0, 1, 2):
                for variant in variants:
                    write_record(tmp_path / table, table, model, variant, seed, {}, {},
                                 overrides=[f"experiment={table}", "dataset=kuairand_sample", f"increc={variant}",
                                            f"seed={seed}", f"model={model}", "train.epochs=2", "cache.dir=/tmp/x",
                                            "train.progress=false"])
    t1, t2 = collect([tmp_path])
    # what varies by job (increc, seed) and what cannot change a result (cache, progress) go; Table 1 swept two of
    # the six backbones, so it names them; the folder is not the experiment's default, so the sweep is pointed at it
    assert regenerate_command(t1) == (f"python -m bench -m experiment=table1 dataset=kuairand_sample train.epochs=2 "
                                      f"model=dssm,sasrec seeds=3 hydra.sweep.dir={tmp_path / 'table1'} && "
                                      f"python -m bench.report {tmp_path / 'table1'}")
    assert regenerate_command(t2).startswith("python -m bench -m experiment=table2 dataset=kuairand_sample model=sasrec "
                                             "train.epochs=2 seeds=3 hydra.sweep.dir=")  # Table 2's backbone is kept
    # a report written elsewhere than results/ names its --out, so the command does not overwrite results/
    assert regenerate_command(t1, tmp_path / "v1").endswith(f"python -m bench.report {tmp_path / 'table1'} --out {tmp_path / 'v1'}")
    assert regenerate_command(t1, PROJECT_ROOT / "results") == regenerate_command(t1)
    assert regenerate_command(t1, PROJECT_ROOT / "results" / "v1").endswith(" --out results/v1")


def test_incomplete_sweep_is_refused(tmp_path: Path) -> None:
    make_table1(tmp_path)
    for name in ("run.json", "per_request.npz"):
        (tmp_path / "dssm_na_seed1" / name).unlink()
    with pytest.raises(ReportError, match=r"the arms of dssm have different seeds \(dssm/na: seeds \[0\]; "
                                          r"dssm/na_permuted: seeds \[0, 1\]; dssm/off: seeds \[0, 1\]\)"):
        collect([tmp_path])


def test_single_runs_beside_a_table_are_ignored(tmp_path: Path) -> None:
    make_table1(tmp_path / "t")
    single = tmp_path / "single"
    single.mkdir()
    (single / "run.json").write_text(json.dumps({"config": {"experiment_name": None}}))  # no per_request.npz
    (runs,) = collect([tmp_path])
    assert runs.table == "table1"


def test_collect_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a directory"):
        collect([tmp_path / "nope"])
    with pytest.raises(ReportError, match="no run record"):
        collect([tmp_path])
    write_record(tmp_path / "a", "table1", "dssm", "off", 0, {}, {})
    write_record(tmp_path / "b", "table1", "dssm", "off", 0, {}, {})
    with pytest.raises(ReportError, match="two records of"):
        collect([tmp_path])
    (tmp_path / "b" / "dssm_off_seed0" / "per_request.npz").unlink()
    with pytest.raises(ReportError, match="per-request values missing"):
        collect([tmp_path / "b"])


def test_regenerate_command_of_recbole_and_builtin_backbones_in_one_table(tmp_path: Path) -> None:
    for model, extra in (("unified", []), ("recbole_NARM", ["model.recbole_model=NARM"]),
                         ("recbole_SINE", ["model.recbole_model=SINE"])):
        for variant in ("off", "na"):
            write_record(tmp_path, "table1", model, variant, 0, {}, {},
                         overrides=["experiment=table1", f"increc={variant}", "seed=0",
                                    f"model={'recbole' if extra else model}", *extra, "dataset=kuairand_sample"])
    (t1,) = collect([tmp_path])
    # one Hydra sweep cannot give only some jobs a RecBole model name: two sweeps into the same folder
    assert regenerate_command(t1) == (
        f"python -m bench -m experiment=table1 dataset=kuairand_sample model=unified seeds=1 hydra.sweep.dir={tmp_path} && "
        f"python -m bench -m experiment=table1 dataset=kuairand_sample model=recbole model.recbole_model=NARM,SINE seeds=1 "
        f"hydra.sweep.dir={tmp_path} && python -m bench.report {tmp_path}")


def test_a_twin_on_another_base_is_not_compared(tmp_path: Path) -> None:
    """IncR − ShufR needs the twin to skip the same base top K as IncRec-NA: a twin record whose Base@K hits differ
    from IncRec-NA's for a seed (its base retrained differently) is named, not compared."""
    make_table1(tmp_path)
    npz = tmp_path / "dssm_na_permuted_seed1" / "per_request.npz"
    arrays = dict(np.load(npz))
    arrays["Base@10/hits"] = 1 - arrays["Base@10/hits"]  # another base for this seed
    np.savez(npz, **arrays)
    at10 = table1_numbers(collect([tmp_path])[0])[0]
    row = next(r for r in at10.rows if r.model == "dssm").comparisons["IncR − ShufR"]
    assert row.stats is None and row.missing.startswith("the twin's base differs from IncRec-NA's (Base@10 hits")
    assert next(r for r in at10.rows if r.model == "sasrec").comparisons["IncR − ShufR"].stats is not None


def test_a_table_of_several_cpu_kinds_is_refused_unless_told(tmp_path: Path, capsys) -> None:
    """Dropout masks differ by CPU vendor and train.precision=auto by native bf16: a mixed table regenerates on no
    one machine (issue 42). The report refuses it, names the kinds, and with --mixed-cpu says so in the header and
    in its own regenerate command."""
    make_table1(tmp_path / "runs")
    for path in (tmp_path / "runs").glob("*/run.json"):
        record = json.loads(path.read_text())
        intel = "seed1" in path.parent.name
        record["machine"] |= {"cpu_vendor": "GenuineIntel" if intel else "AuthenticAMD", "native_bf16": intel}
        path.write_text(json.dumps(record))
    out = ["--out", str(tmp_path / "results")]
    assert report_main([str(tmp_path / "runs"), *out]) == 2
    err = capsys.readouterr().err
    assert "2 CPU kinds (AuthenticAMD, no native bf16: 6 jobs; GenuineIntel, native bf16: 6 jobs)" in err
    assert "--mixed-cpu" in err and not (tmp_path / "results" / "handmade" / "table1.md").exists()
    assert report_main([str(tmp_path / "runs"), *out, "--mixed-cpu"]) == 0
    text = (tmp_path / "results" / "handmade" / "table1.md").read_text()
    assert "- CPU kind: **mixed** (reported with --mixed-cpu" in text
    assert f"python -m bench.report {tmp_path / 'runs'} --out {tmp_path / 'results'} --mixed-cpu`" in text

    for path in (tmp_path / "runs").glob("*/run.json"):  # one kind: the header names it
        record = json.loads(path.read_text())
        record["machine"] |= {"cpu_vendor": "AuthenticAMD", "native_bf16": False}
        path.write_text(json.dumps(record))
    assert report_main([str(tmp_path / "runs"), *out]) == 0
    text = (tmp_path / "results" / "handmade" / "table1.md").read_text()
    assert "- CPU kind: AuthenticAMD, no native bf16 (every record" in text and "--mixed-cpu" not in text

    gpu = next((tmp_path / "runs").glob("*seed1*/run.json"))  # one record trained on a GPU: another kind
    record = json.loads(gpu.read_text())
    record["device"] = "cuda:0"
    record["machine"] |= {"gpu": "NVIDIA H100", "cuda": "12.6", "cudnn": 90100}
    gpu.write_text(json.dumps(record))
    assert report_main([str(tmp_path / "runs"), *out]) == 2
    assert "AuthenticAMD, no native bf16, GPU NVIDIA H100 (CUDA 12.6, cuDNN 90100): 1 jobs" in capsys.readouterr().err


def test_a_backbone_whose_records_ran_different_settings_is_refused(tmp_path: Path, capsys) -> None:
    """A tuned file that changed between two launches of a sweep leaves one backbone's seeds built or trained
    differently (this happened to the sample's Table 1 in a session of 2026-12-06): the report names the backbone,
    the keys and the jobs, and writes nothing. The threads and the progress bars are not settings."""
    make_table1(tmp_path / "runs")
    out = ["--out", str(tmp_path / "results")]
    for path in (tmp_path / "runs").glob("*/run.json"):
        record = json.loads(path.read_text())
        record["config"]["train"] |= {"threads": 1 if "seed0" in path.parent.name else 2, "progress": False}
        path.write_text(json.dumps(record))
    assert report_main([str(tmp_path / "runs"), *out]) == 0
    path = tmp_path / "runs" / "dssm_na_seed1" / "run.json"
    record = json.loads(path.read_text())
    record["config"]["train"]["lr"] = 0.5
    path.write_text(json.dumps(record))
    assert report_main([str(tmp_path / "runs"), *out, "--mixed-cpu"]) == 2
    err = capsys.readouterr().err
    assert "dssm's records differ in train.lr (5 jobs like dssm_na_seed0; 1 jobs like dssm_na_seed1)" in err


def test_the_non_primary_projection_follows_seeds_and_requests(tmp_path: Path) -> None:
    from bench.report.target_tabs import THRESHOLD, projected, render

    make_table1(tmp_path / "runs", seeds={"dssm": (0, 1, 2), "sasrec": (0, 1, 2)})
    full, few, many_seeds = (projected(tmp_path / "runs", f, s) for f, s in ((1.0, 3), (0.1, 3), (0.1, 30)))
    assert [r["model"] for r in full] == ["dssm", "dssm", "sasrec", "sasrec"]
    for a, b, c in zip(full, few, many_seeds):
        assert a["sensitivity"] < b["sensitivity"] and c["sensitivity"] < b["sensitivity"]
    counts = {s: {"target_tabs": s, "test_requests": 50, "evaluated_test_requests": n, "evaluated_test_users": n,
                  "evaluated_valid_requests": n} for s, n in (("all", 40), ("non_primary", 4))}
    text = render(counts, few, "cmd", "runs")
    verdict = "**No run:**" if min(r["sensitivity"] for r in few) >= THRESHOLD else "**Runs:**"
    assert verdict in text and "non_primary keeps 10.0% of the evaluated test requests." in text
