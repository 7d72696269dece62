"""bench.report on hand-made run records: means, stds, p-values, bold placement, errors, files written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.config import PROJECT_ROOT
from bench.report.__main__ import main as report_main, regenerate_command
from bench.report.collect import ReportError, collect
from bench.metrics import METRIC_NAMES
from bench.report.protocol import render_protocol
from bench.report.stats import mean_std, minimum_detectable_difference, paired_p, two_level_bootstrap
from bench.report.tables import header, render, table1, table1_numbers, table2, table3

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
    """A run.json + per_request.npz pair as bench.run writes them, with the given values.

    The new record (default) holds every declared metric at every K (None where not given), the per-split and
    premise statistics, the protocol block and per-model training logs; `legacy=True` writes a record as it was
    before those fields existed (protocol v1): only the given metrics, no splits, premise, protocol or best epoch."""
    out = root / f"{model}_{variant}_seed{seed}"
    out.mkdir(parents=True)
    arrays = {"rows": ROWS}
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
            training |= {"variant": training_log(2, 6), "seed_base": training_log(4, 8)}
    record = {
        "config": {"experiment_name": table, "model": {"name": model}, "increc": {"name": variant},
                   "dataset": {"name": "handmade"}, "train": {"epochs": 4}},
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


INC_HITS = np.array([1, 2, 3, 4, 4, 4])  # per-request Inc@K hits (size 4 each)
SUPR_HITS = np.ones(R, dtype=int)  # SupR@K: one hit per request
POP = {"Pop_Base@10": 0.08, "Pop_Sup@10": 0.03, "Pop_Base@20": 0.25, "Pop_Sup@20": 0.04}


def make_table1(root: Path, legacy: bool = False, **record_fields) -> None:
    # dssm: Inc > Sup at both K, Seed = Inc request by request; sasrec: Sup > Inc at K = 10, no Seed control.
    # Two seeds each; the popularity floor beats every Base@20.
    sup_hits = np.zeros(R, dtype=int)
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for model, sup10 in (("dssm", 0.04), ("sasrec", 0.30)):
            base = {"Base@10": 0.10 + shift, "Sup@10": sup10 + shift, "Base@20": 0.2 + shift, "Sup@20": 0.05 + shift}
            per = {f"Sup@{k}": sup_hits for k in KS} | {f"Base@{k}": sup_hits for k in KS}
            if not legacy:
                base |= POP | {"SupR@10": 0.15, "SupR@20": 0.15}
                per |= {f"SupR@{k}": SUPR_HITS for k in KS}
            write_record(root, "table1", model, "off", seed, base, per, legacy=legacy, **record_fields)
            inc = {"Inc@10": 0.20 + shift, "Inc@20": 0.25 + shift}
            inc_per = {f"Inc@{k}": INC_HITS for k in KS}
            if not legacy:
                inc |= {"IncR@10": 0.22 + shift, "IncR@20": 0.27 + shift}
                inc_per |= {f"IncR@{k}": INC_HITS for k in KS}
                if model == "dssm":
                    inc |= {"Seed@10": 0.20 + shift, "Seed@20": 0.25 + shift}
                    inc_per |= {f"Seed@{k}": INC_HITS for k in KS}
            write_record(root, "table1", model, "na", seed, base | inc, per | inc_per, legacy=legacy, **record_fields)


def test_table1_cells_bold_p_and_intervals(tmp_path: Path) -> None:
    make_table1(tmp_path)
    (runs,) = collect([tmp_path])
    assert (runs.dataset, runs.table, runs.seeds()) == ("handmade", "table1", [0, 1])
    body, verdicts = table1(runs)
    blocks = body.split("### K = ")[1:]
    assert [b.split("\n")[0] for b in blocks] == ["10", "20"]  # one table per K
    lines = blocks[0].strip().splitlines()[2:]
    assert lines[0] == ("| backbone | Base@10 | Sup@10 | SupR@10 | Inc@10 | IncR@10 | Seed@10 | Inc − Sup@10 [95%] | "
                        "p Inc − Sup | Inc − SupR@10 [95%] | p Inc − SupR | IncR − SupR@10 [95%] | p IncR − SupR | "
                        "Inc − Seed@10 [95%] | p Inc − Seed |")
    dssm, sasrec, pop = (line.split(" | ") for line in lines[2:])
    std = 100 * math.sqrt(0.0002)  # two seeds 0.02 apart
    assert dssm[1] == f"11.00 ± {std:.2f}"  # Base@10: (0.10 + 0.12) / 2
    assert dssm[2] == f"5.00 ± {std:.2f}" and dssm[3] == "15.00 ± 0.00"  # Sup, SupR from the base-only run
    assert dssm[5] == f"**23.00 ± {std:.2f}**"  # IncR is the largest second-K channel: bold
    assert dssm[6] == f"21.00 ± {std:.2f}"  # Seed from the variant's run
    assert sasrec[2] == f"**31.00 ± {std:.2f}**" and sasrec[4] == f"21.00 ± {std:.2f}"  # Sup beats Inc: Sup bold
    assert sasrec[6] == "—" and sasrec[13] == "—" and sasrec[14] == "— |"  # no Seed control: no Seed column, no test
    # Inc − Sup per request = (1,2,3,4,4,4)/4 in both seeds: its mean, the bootstrap interval of those [2, 6]
    # differences and the Wilcoxon p of the seed-averaged values (ties among the 4s, so compare with scipy)
    from scipy.stats import wilcoxon

    d = INC_HITS / 4
    low, high = two_level_bootstrap(np.stack([d, d]), n_boot=2000, seed=0)
    assert dssm[7] == f"{100 * d.mean():+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
    assert dssm[8] == f"{wilcoxon(d).pvalue:.4f}"
    d_r = (INC_HITS - SUPR_HITS) / 4
    low_r, high_r = two_level_bootstrap(np.stack([d_r, d_r]), n_boot=2000, seed=0)
    assert dssm[9] == f"{100 * d_r.mean():+.2f} [{100 * low_r:+.2f}, {100 * high_r:+.2f}]"
    assert dssm[13] == "+0.00 [+0.00, +0.00]" and dssm[14] == "1.0000 |"  # Seed = Inc request by request
    # the popularity floor: Pop_Base in the Base column, Pop_Sup in the Sup column, nothing else
    assert pop[:3] == ["| popularity", "8.00 ± 0.00", "3.00 ± 0.00"] and set(pop[3:-1]) == {"—"}
    assert verdicts[0] == "Inc@10 > Sup@10 (means over seeds) held for 1 of 2 backbones; not for sasrec."
    assert verdicts[1] == "Inc − Sup@10, 95% interval: above 0 for 2 of 2 backbones; below 0 for 0 of 2 backbones; " \
                          "holds 0 for 0 of 2 backbones."
    assert verdicts[3] == "IncR − SupR@10, 95% interval: above 0 for 2 of 2 backbones; below 0 for 0 of 2 backbones; " \
                          "holds 0 for 0 of 2 backbones."
    assert verdicts[4] == "Inc − Seed@10, 95% interval: above 0 for 0 of 1 backbones; below 0 for 0 of 1 backbones; " \
                          "holds 0 for 1 of 1 backbones."
    assert verdicts[5] == "Base@10 beats the popularity floor (8.00) for 2 of 2 backbones."
    assert verdicts[6] == "Inc@20 > Sup@20 (means over seeds) held for 2 of 2 backbones."
    assert verdicts[11].startswith("Base@20 beats the popularity floor (25.00) for 0 of 2 backbones; not for dssm, sasrec")


def test_table1_header_protocol_premise_and_mdd(tmp_path: Path) -> None:
    make_table1(tmp_path)
    for path in tmp_path.glob("sasrec_*/run.json"):  # sasrec's jobs ran on another machine kind
        record = json.loads(path.read_text())
        record["machine"] = {"cpu": "Other CPU", "cores": 16, "gpu": "Some GPU"}
        path.write_text(json.dumps(record))
    (runs,) = collect([tmp_path])
    text = header(runs, "CMD")
    assert "; machine Handmade CPU, 2 cores (4 jobs); Other CPU, 16 cores, GPU Some GPU (4 jobs)." in text
    assert ("- Protocol v2, existing.fit=rolling; 1 validation day(s); early stopping on the validation "
            "requests.") in text
    assert "leak" not in text
    assert ("- ITG share of targets (all requests | requests with a history): train 0.876 | 0.835, valid 0.813 | "
            "0.798, test 0.793 | 0.779.") in text
    assert ("- Premise: 3.0% of test ITG from other scenarios, 95% of training ITG exposed in their request, 12% of "
            "evaluated requests without history, 1.40 ITG items per evaluated request; see [table1_protocol.md](table1_protocol.md).") in text
    assert "- Record warning: handmade warning: train and test ITG shares differ" in text
    assert text.count("handmade warning") == 1  # the same warning of every record, once
    # MDD: both backbones' seed-averaged per-request Inc − Sup is (1,2,3,4,4,4)/4: pooled sd = that sd
    sd = float(np.std(INC_HITS / 4, ddof=1))
    mdd = minimum_detectable_difference(sd, R)
    assert mdd == pytest.approx(2.801585 * sd / math.sqrt(R), rel=1e-6)
    assert f"- Minimum detectable difference (80% power, two-sided α = 0.05): {100 * mdd:.2f} pts at K = 10, " in text
    assert f"sd {sd:.3f} at K = 10" in text and "pooled over the 2 row(s)" in text
    full = render(runs, "CMD", [])
    assert "| dssm | 3.0 / 7.0 | 2.0 / 6.0 | 4.0 / 8.0 |" in full  # best epoch / epochs run per trained model


def test_leaking_protocol_is_flagged(tmp_path: Path) -> None:
    make_table1(tmp_path / "runs", protocol=PROTOCOL | {"existing_fit": "all", "leaks_test_period": True})
    (runs,) = collect([tmp_path / "runs"])
    assert "existing.fit=all; **labels leak the test period (existing.fit=all)**" in header(runs, "CMD")
    text = render_protocol("handmade", [runs])
    assert "**labels leak the test period (existing.fit=all)**" in text
    assert "read every table as an upper bound" in text


def test_protocol_md_from_the_records(tmp_path: Path) -> None:
    make_table1(tmp_path)
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
    # the MDD table at the 6 evaluated requests, and the observed spread of Inc − Sup
    assert f"| MDD (pts) | {100 * minimum_detectable_difference(0.1, R):.2f} |" in text
    sd = float(np.std(INC_HITS / 4, ddof=1))
    mdd = minimum_detectable_difference(sd, R)
    assert f"| table1 | 10 | 2 | {sd:.3f} | {100 * mdd:.2f} |" in text
    # every row's |Inc − Sup| = 75 pts exceeds the MDD of 6 requests
    assert f"table1, K = 10: |Inc − Sup| exceeds the MDD ({100 * mdd:.2f} pts) for every one of the 2 rows." in text


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
    assert ("**Collapsed towers**: the same top K₀ for half the validation requests or more (bench/collapse.py), a global "
            "ranking rather than a personalised one, in dssm base in 1 of 1 seeds (top-K₀ share up to 100%).") in text
    make_table1(tmp_path / "plain")
    assert "Collapsed towers" not in render(collect([tmp_path / "plain"])[0], "CMD", [])


def test_legacy_records_still_render(tmp_path: Path) -> None:
    # records written before the protocol, splits, premise, controls and early stopping existed (protocol v1)
    make_table1(tmp_path / "runs", legacy=True)
    (runs,) = collect([tmp_path / "runs"])
    text = render(runs, "CMD", [])
    assert "- Protocol v1 (record predates the protocol field), fixed 4 epochs." in text
    assert "ITG share of targets: 0.386 over all requests, 0.793 on test (record predates per-split statistics)" in text
    assert "- Premise: not recorded (record predates the premise diagnostics)" in text
    assert "Training: no record holds a best epoch (the records predate early stopping)." in text
    body, verdicts = table1(runs)
    dssm = body.split("### K = ")[1].strip().splitlines()[4].split(" | ")
    assert dssm[3] == "—" and dssm[6] == "—" and dssm[9] == "—"  # SupR, Seed, Inc − SupR: not in the record
    assert dssm[4].endswith("21.00 ± 1.41**") and dssm[7].startswith("+75.00 [")  # Inc and Inc − Sup as before
    assert "Inc − SupR@10: not measured (no record holds SupR@10 beside Inc@10)." in verdicts
    assert not any("popularity floor" in v for v in verdicts)  # no Pop_* in these records
    protocol_md = render_protocol("handmade", [runs])
    assert "predate the protocol field: they ran under protocol v1" in protocol_md
    assert "The premise diagnostics are not recorded (records predate them)" in protocol_md
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0


TB_ITG_INC_HITS = np.array([1, 2, 3, 4, 4, 4])  # TB-ITG's per-request Inc@10 hits in make_ablations (size 4 each)


def make_ablations(root: Path) -> None:
    """Hand-made Table 2 (root/t2) and Table 3 (root/t3) records of dssm, one seed: every per-request array is
    [0, 1, 0, 1, 0, 1] but TB-ITG's Inc@10 (TB_ITG_INC_HITS)."""
    per = {f"{n}@{k}": np.array([0, 1, 0, 1, 0, 1]) for n in ("Base", "Sup", "Inc", "Exposure") for k in KS}
    for variant, inc in (("off", None), ("tb_itg", 0.3), ("tb_boost", 0.4), ("na", 0.2)):
        m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1} | POP
        if inc is not None:
            m |= {"Inc@10": inc, "Inc@20": inc + 0.1}
        extra = {"Inc@10": TB_ITG_INC_HITS} if variant == "tb_itg" else {}
        write_record(root / "t2", "table2", "dssm", variant, 0, m, per | extra)
    for variant, inc, exp in (("na", 0.2, 0.1), ("ori", 0.15, 0.3), ("on", 0.18, 0.35)):
        m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1, "Inc@10": inc, "Inc@20": inc,
             "Exposure@10": exp, "Exposure@20": exp} | POP
        write_record(root / "t3", "table3", "dssm", variant, 0, m, per)


def test_table2_and_table3_layout(tmp_path: Path) -> None:
    make_ablations(tmp_path)
    t2, t3 = collect([tmp_path])
    rows = table2(t2, "dssm").splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| TB-Online", "| TB-ITG", "| TB-boost", "| IncRec-NA", "| popularity"]
    # the floor: Pop_Base@K as Base, Pop_Sup@K in the Inc column, nothing tested, never bold
    assert rows[4] == "| popularity | 8.00 ± 0.00 | 3.00 ± 0.00 | — | — | 25.00 ± 0.00 | 4.00 ± 0.00 | — | — |"
    assert rows[0].split(" | ")[2] == "5.00 ± 0.00"  # TB-Online's Inc@K is its Sup@K
    assert rows[2].split(" | ")[2] == "**40.00 ± 0.00**"  # TB-boost has the best Inc@10
    from scipy.stats import wilcoxon

    # TB-ITG's Inc@10 against the Sup@10 of the same standalone base, request by request
    expected = wilcoxon((np.array([1, 2, 3, 4, 4, 4]) - np.array([0, 1, 0, 1, 0, 1])) / 4).pvalue
    assert rows[0].split(" | ")[3] == "—" and rows[1].split(" | ")[3] == f"{expected:.4f}"
    assert rows[2].split(" | ")[3] == "1.0000"  # TB-boost: the same per-request values as Sup: no difference
    # the interval of Inc − Sup beside p: one seed, so a request bootstrap of the per-request differences
    d = (np.array([1, 2, 3, 4, 4, 4]) - np.array([0, 1, 0, 1, 0, 1])) / 4
    low, high = two_level_bootstrap(d[None, :], n_boot=2000, seed=0)
    assert rows[1].split(" | ")[4] == f"{100 * d.mean():+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
    assert rows[0].split(" | ")[4] == "—" and rows[2].split(" | ")[4] == "+0.00 [+0.00, +0.00]"
    main, p_table = table3(t3, "dssm")
    head = main.splitlines()[0]
    assert head == "| variant | Base@10 | Inc@10 | Base@20 | Inc@20 | Exposure Hit@10 | Exposure Hit@20 |"
    na, ori, on, pop = (r.split(" | ") for r in main.splitlines()[2:])
    assert pop == ["| popularity", "8.00 ± 0.00", "3.00 ± 0.00", "25.00 ± 0.00", "4.00 ± 0.00", "—", "— |"]
    assert na[2] == "**20.00 ± 0.00**" and on[5] == "**35.00 ± 0.00**" and ori[5] == "30.00 ± 0.00"
    assert [r.split(" | ")[0] for r in p_table.splitlines()[2:]] == ["| IncRec-ori", "| IncRec"]
    assert p_table.splitlines()[0].startswith("| vs IncRec-NA | Inc@10 − NA [95%] | p | Inc@20 − NA [95%] | p |")
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
    from bench.metrics import METRICS
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
    with pytest.raises(ReportError, match=r"different seeds \(dssm/na: seeds \[0\]; dssm/off: seeds \[0, 1\]"):
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
