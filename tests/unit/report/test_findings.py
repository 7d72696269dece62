"""bench.report.summary (tableN.json beside tableN.md) and bench.report.findings (FINDINGS.md from those
summaries) on the hand-made records of test_report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bench.report.__main__ import main as report_main
from bench.report.collect import ReportError, collect
from bench.report.findings import pooled_line, render_findings
from bench.report.stats import crossed_stats, format_interval, pooled, seeds_needed
from bench.report.summary import SUMMARY_VERSION, read_summary, table_summary
from bench.report.table1 import table1_numbers
from tests.unit.report.test_report import (BOTH, COMPARED, KS, R, TB_ITG_INC_HITS, TB_ITG_INC_HITS_SEED1, USERS, compared, make_ablations, make_table1,
                               make_under_floor, rolling_fits)


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reports these tests write skip their plots (most of a hand-made report's time; test_report's CLI test
    checks them): the summaries and FINDINGS.md do not read them."""
    monkeypatch.setattr("bench.report.__main__.hit_vs_k", lambda *args, **kwargs: None)
    monkeypatch.setattr("bench.report.__main__.itg_hits_by_tab", lambda *args, **kwargs: None)


def _report(tmp_path: Path, name: str = "results", **fields) -> Path:
    make_table1(tmp_path / f"runs_{name}", **fields)
    assert report_main([str(tmp_path / f"runs_{name}"), "--out", str(tmp_path / name)]) == 0
    return tmp_path / name


def test_summary_holds_the_numbers_of_the_markdown(tmp_path: Path) -> None:
    results = _report(tmp_path)
    s = read_summary(results / "handmade" / "table1.json")
    assert s["summary_version"] == SUMMARY_VERSION and s["table"] == "table1" and s["ks"] == KS
    assert s["seeds"] == [0, 1] and s["eval_requests"] == R and s["existing"] == {"name": "itemcf", "budget": 16}
    assert s["protocol"]["existing_fit"] == "rolling" and "warnings" not in s["protocol"]
    assert "mdd" not in s  # Table 1 states protocol v3's sensitivity per comparison, not v2's MDD
    assert s["variants"] == ["na", "na_permuted", "off"]
    dssm = next(r for r in s["table1"]["10"]["rows"] if r["model"] == "dssm")
    assert dssm["cells"]["Base"]["mean"] == pytest.approx(0.11)  # (0.10 + 0.12) / 2, as the markdown shows
    assert dssm["cells"]["ShufR"]["mean"] == pytest.approx(0.17)  # the twin's IncR@10
    inc_sup = dssm["comparisons"]["Inc − Sup"]["stats"]
    assert inc_sup["estimate"] == pytest.approx(0.75)  # Inc's hits (18 + 18 of 48), Sup's 0
    md = (results / "handmade" / "table1.md").read_text()
    assert "| dssm | +54.17 [" in md
    assert (f"| +75.00 {format_interval(inc_sup['low'], inc_sup['high'])} "
            f"{dssm['comparisons']['Inc − Sup']['verdict']} |") in md
    assert s["table1"]["20"]["below_popularity"] == ["dssm", "sasrec"] and s["table1"]["10"]["below_popularity"] == []
    assert "inc_above_sup" not in s["table1"]["10"]  # v2's count of means is gone
    # the same records give the same summary (table_summary recomputes it)
    (runs,) = collect([tmp_path / "runs_results"])
    again = json.loads(json.dumps(table_summary(runs, s["command"], table1_numbers(runs))))
    assert again == s


STAT_FIELDS = ("estimate", "sigma_seed", "sigma_request", "sigma_interaction", "df", "se", "low", "high", "low90",
               "high90", "p", "mdd")


def test_summary_holds_every_v3_field(tmp_path: Path) -> None:
    """Per row and comparison: crossed_stats' fields, δ, the verdict and whether requests were clustered by user;
    per K and comparison: the pooled answer, its δ, verdict and the seeds it needs; the roles; PopR_Base."""
    results = _report(tmp_path)
    s = read_summary(results / "handmade" / "table1.json")
    for k, block in s["table1"].items():
        assert block["roles"] == {"IncR − SupR": "primary", "Inc − Sup": "paper", "IncR − ShufR": "control",
                                  "IncR − SeedR": "control", "SeedR − Seed2R": "aa"}
        assert block["popularity"]["PopR_Base"]["mean"] == pytest.approx({"10": 0.07, "20": 0.21}[k])
        assert [r["model"] for r in block["rows"]] == list(BOTH)
        for row in block["rows"]:
            assert row["seeds"] == 2 and set(row["comparisons"]) == set(COMPARED)
            for name, c in row["comparisons"].items():
                a, b = compared(row["model"], name)
                st = crossed_stats(a - b, USERS)
                for field in STAT_FIELDS:
                    assert c["stats"][field] == pytest.approx(getattr(st, field), rel=1e-9, abs=1e-12), (name, field)
                assert c["stats"]["n_clusters"] == 3
                assert c["delta"] == pytest.approx(0.1 * b.mean())
                assert c["verdict"] == st.verdict(0.1 * b.mean()) and c["verdict"] in ("holds", "cannot tell")
                assert c["clustered_by_user"] is True and c["missing"] is None
        for name, answer in block["pooled"].items():
            rows = [crossed_stats(np.subtract(*compared(m, name)), USERS) for m in BOTH]
            delta = float(np.mean([0.1 * compared(m, name)[1].mean() for m in BOTH]))
            pool = pooled(rows)
            for field in ("estimate", "low", "high", "tau", "k", "mdd"):
                expected = pytest.approx(getattr(pool, field), rel=1e-9, abs=1e-12)
                assert answer["pooled"][field] == expected, (name, field)
            assert answer["pooled"]["k"] == 2 and answer["backbones"] == list(BOTH)
            assert answer["delta"] == pytest.approx(delta)
            assert answer["verdict"] == pool.verdict(delta)
            assert answer["seeds_needed"] == seeds_needed(rows, delta)
    # a row that lacks an arm says which, with no statistics
    make_table1(tmp_path / "partial", twin=("dssm",))
    (runs,) = collect([tmp_path / "partial"])
    sasrec = table_summary(runs, "CMD")["table1"]["10"]["rows"][1]
    assert sasrec["comparisons"]["IncR − ShufR"] == {
        "stats": None, "reference_mean": None, "delta": None, "verdict": "not measured",
        "missing": "no na_permuted records (the permuted-label twin)", "clustered_by_user": True}


def test_pooled_line_by_hand() -> None:
    answer = {"pooled": {"estimate": 0.015, "low": 0.005, "high": 0.025, "tau": 0.003, "k": 6, "mdd": 0.012},
              "verdict": "holds", "delta": 0.01, "seeds_needed": 7}
    assert pooled_line("IncR − SupR", "primary", answer, "50") == (
        "IncR − SupR@50 (primary): +1.50 points [+0.50, +2.50] over 6 backbones, **holds** (δ = ±1.00, τ = 0.30, "
        "sensitivity 1.20; δ is within reach at 7 seeds per backbone).")
    assert pooled_line("Inc − Sup", "paper", answer | {"seeds_needed": None}, "100").endswith(
        "sensitivity 1.20; seeds alone cannot reach δ).")
    assert pooled_line("IncR − ShufR", "control", {"pooled": None, "verdict": "not pooled (fewer than two backbones "
                                                   "with an interval)"}, "50") == (
        "IncR − ShufR@50 (control): not pooled (fewer than two backbones with an interval).")


def test_findings_page_from_the_summaries(tmp_path: Path) -> None:
    results = _report(tmp_path)
    assert report_main(["--findings", str(results)]) == 0
    text = (results / "FINDINGS.md").read_text()
    assert text.startswith("# Findings") and f"python -m bench.report --findings {results}" in text
    assert "## handmade" in text and "### Table 1 (table1.md)" in text
    # per backbone: Base, SupR, IncR and every comparison as 'estimate [95%] verdict' from crossed_stats
    cells = []
    for name in COMPARED:
        st = crossed_stats(np.subtract(*compared("dssm", name)), USERS)
        cells.append(f"{100 * st.estimate:+.2f} {format_interval(st.low, st.high)} "
                     f"{st.verdict(0.1 * compared('dssm', name)[1].mean())}")
    assert "| dssm | 2 | 11.00 ± 1.41 | 15.00 ± 0.00 | 23.00 ± 1.41 | " + " | ".join(cells) + " |" in text
    assert ("| backbone | seeds | Base@10 | SupR@10 | IncR@10 | IncR − SupR@10 | Inc − Sup@10 | IncR − ShufR@10 | "
            "IncR − SeedR@10 | SeedR − Seed2R@10 |") in text
    assert ("- K = 20: Base@20 beats the popularity floor (25.00 ± 0.00; after removing R_u, PopR_Base@20 "
            "21.00 ± 0.00) for 0 of 2 backbones; not for dssm, sasrec; 2 of these 2 ran untuned (dssm, sasrec), on their YAML's "
            "values.") in text
    assert "training ITG items exposed in their own request | 95%" in text
    first = text
    assert report_main(["--findings", str(results)]) == 0
    assert (results / "FINDINGS.md").read_text() == first  # byte for byte from the same summaries


def test_findings_states_the_rolling_fits_warm_up(tmp_path: Path) -> None:
    results = _report(tmp_path, existing_fits=rolling_fits([10, 400, 600, 1000], [30, 20, 25, 25], 5))
    s = read_summary(results / "handmade" / "table1.json")
    assert s["warmup"] == {"fits": 4, "first_fit_positives": 10, "last_fit_positives": 1000, "requests_without_fit": 5,
                           "train_requests": 100, "train_requests_warming": 55}
    assert report_main(["--findings", str(results)]) == 0
    text = (results / "FINDINGS.md").read_text()
    assert "| training requests before any fit (empty R_u: every target ITG) | 5 (5.0% of 100) |" in text
    assert "55% of training requests got R_u from an existing system fit on under 50% of the positives" in text
    # records without the fit details (older ones) leave the rows out
    plain = _report(tmp_path, name="plain")
    assert read_summary(plain / "handmade" / "table1.json")["warmup"] is None
    assert report_main(["--findings", str(plain)]) == 0
    assert "daily fits" not in (plain / "FINDINGS.md").read_text()


def test_findings_gives_the_popularity_agreement_under_the_floor(tmp_path: Path) -> None:
    make_under_floor(tmp_path / "runs")
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    s = read_summary(tmp_path / "results" / "handmade" / "table1.json")
    assert s["table1"]["20"]["popularity_agreement"] == {"dssm": 1.0, "sasrec": 0.0}
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert ("Base@20 beats the popularity floor (25.00 ± 0.00) for 1 of 2 backbones; not for dssm (of the test requests "
            "its Base@20 hits, popularity's top 20 hits too 100% for dssm; for the backbones above it 0.0%)") in text
    # the handmade records hold no tuning, so the backbone under the floor ran untuned
    assert "; 1 of these 1 ran untuned (dssm), on their YAML's values." in text


def test_findings_names_a_seed_under_the_floor(tmp_path: Path) -> None:
    make_under_floor(tmp_path / "runs", sasrec_base20=(0.60, 0.20))
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    s = read_summary(tmp_path / "results" / "handmade" / "table1.json")
    assert s["table1"]["20"]["under_popularity_in_seeds"] == {"sasrec": [1, 2]}
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert "Seed by seed, Base@20 is not above the floor for sasrec in 1 of 2 seeds." in text


def mark_collapsed(runs: Path, pattern: str, role: str, model: str, seed: int) -> None:
    """Give the `role` tower of every record matching `pattern` a collapse check: collapsed for `model` at `seed`
    only, not for any other record."""
    for path in runs.glob(pattern):
        record = json.loads(path.read_text())
        bad = record["config"]["model"]["name"] == model and record["seed"] == seed
        record.setdefault("training", {}).setdefault(role, {})["ranking"] = {
            "requests": 6, "k": 20, "collapsed": bad, "modal_top_share": 1.0 if bad else 0.2}
        path.write_text(json.dumps(record))


def test_findings_names_collapsed_bases(tmp_path: Path) -> None:
    make_under_floor(tmp_path / "runs")  # dssm under the floor at K = 20, sasrec above it
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "plain")]) == 0
    assert report_main(["--findings", str(tmp_path / "plain")]) == 0
    assert ("one ranking for every request): not recorded (the records predate the check)."
            in (tmp_path / "plain" / "FINDINGS.md").read_text())  # no record holds the check
    mark_collapsed(tmp_path / "runs", "*/run.json", "base", "dssm", 0)  # every other base did not collapse
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    s = read_summary(tmp_path / "results" / "handmade" / "table1.json")
    assert s["table1"]["20"]["collapsed_in_seeds"] == {"dssm": [1, 2], "sasrec": [0, 2]}
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert ("one ranking for every request): dssm collapsed in 1 of 2 seeds; no checked seed collapsed for 1 "
            "backbone(s) (sasrec).") in text
    assert "ran untuned (dssm), on their YAML's values; the base collapsed (one ranking for every request) in 1 of 2 seeds for dssm." in text


def test_findings_names_a_collapsed_seed_control(tmp_path: Path) -> None:
    make_table1(tmp_path / "runs")
    mark_collapsed(tmp_path / "runs", "*_na_seed*/run.json", "seed_base", "dssm", 1)
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    s = read_summary(tmp_path / "results" / "handmade" / "table1.json")
    assert s["table1"]["10"]["seed_base_collapsed_in_seeds"] == {"dssm": [1, 2], "sasrec": [0, 2]}
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert ("- The Seed control's second base (seed + 1000) collapsed for dssm in 1 of 2 seeds: there Inc − Seed "
            "compares the channel with one ranking for every request") in text
    assert "for sasrec in" not in text  # checked, none collapsed: not named


def test_findings_compares_protocols(tmp_path: Path) -> None:
    v1 = _report(tmp_path, "v1", protocol={"version": "v1", "existing_fit": "train_period", "leaks_test_period": False,
                                           "valid_days": 0, "early_stopping": False, "warnings": []})
    v2 = _report(tmp_path, "v2")
    text = render_findings(v2, "CMD", [(v1 / "handmade", v2 / "handmade")])
    assert "## Protocol v1 against v2 (handmade)" in text
    assert "early_stopping: False → True" in text and "existing_fit: 'train_period' → 'rolling'" in text
    assert "- v1: existing.fit=train_period: R_u of every request comes from" in text
    assert "| v1 Base@10 | v1 Sup@10 |" in text
    # one comparison per --protocols pair (one per dataset), each named in the page's command
    for name in ("v1", "v2"):  # the same summaries as a second dataset, "other"
        (tmp_path / f"{name}_other").mkdir()
        s = json.loads((tmp_path / name / "handmade" / "table1.json").read_text())
        (tmp_path / f"{name}_other" / "table1.json").write_text(json.dumps(s | {"dataset": "other"}))
    pairs = [[str(v1 / "handmade"), str(v2 / "handmade")], [str(tmp_path / "v1_other"), str(tmp_path / "v2_other")]]
    assert report_main(["--findings", str(v2), "--protocols", *pairs[0], "--protocols", *pairs[1]]) == 0
    text = (v2 / "FINDINGS.md").read_text()
    assert "## Protocol v1 against v2 (handmade)" in text and "## Protocol v1 against v2 (other)" in text
    assert f"--findings {v2} --protocols {' '.join(pairs[0])} --protocols {' '.join(pairs[1])}`" in text
    with pytest.raises(ReportError, match="different datasets"):  # a v1 folder of one dataset, v2 of another
        render_findings(v2, "CMD", [(v1 / "handmade", tmp_path / "v2_other")])


def test_findings_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no table summary"):
        render_findings(tmp_path, "CMD")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "table1.json").write_text(json.dumps({"summary_version": 0}))
    with pytest.raises(ReportError, match="summary version 0"):
        render_findings(tmp_path, "CMD")
    assert report_main(["--findings", str(tmp_path / "empty")]) == 2  # a BenchError: one line, exit 2
    with pytest.raises(SystemExit) as exc:  # record folders beside --findings: a usage error
        report_main(["--findings", str(tmp_path), str(tmp_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):  # --protocols without --findings: a usage error
        report_main(["--protocols", str(tmp_path), str(tmp_path)])


def test_a_table_against_another_existing_system_gets_its_own_files(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from bench.config import CONF_DIR
    from bench.report.collect import DEFAULT_EXISTING

    defaults = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))["defaults"]
    assert {"existing": DEFAULT_EXISTING} in defaults  # the name without a suffix is the config's default
    make_table1(tmp_path / "runs" / "itemcf")
    make_table1(tmp_path / "runs" / "multi")
    for path in (tmp_path / "runs" / "multi").rglob("run.json"):  # the same jobs against existing=multi
        record = json.loads(path.read_text())
        record["config"]["existing"] = {"name": "multi", "channels": [{"name": "itemcf", "budget": 10},
                                                                      {"name": "popular", "budget": 6}]}
        path.write_text(json.dumps(record))
    tables = collect([tmp_path / "runs"])
    assert sorted(t.stem for t in tables) == ["table1", "table1_multi"]
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    folder = tmp_path / "results" / "handmade"
    assert (folder / "table1_multi.md").read_text().startswith("# Table 1: every backbone, base vs IncRec-NA (handmade, existing=multi)")
    assert (folder / "table1.md").read_text().startswith("# Table 1: every backbone, base vs IncRec-NA (handmade)\n")
    s = read_summary(folder / "table1_multi.json")
    assert s["stem"] == "table1_multi" and s["existing"]["channels"] == {"itemcf": 10, "popular": 6}
    # each table its own diagnostics page: reporting one never rewrites what the other's header links to
    assert "existing system `multi`" in (folder / "table1_multi_protocol.md").read_text()
    assert "existing system `itemcf`" in (folder / "table1_protocol.md").read_text()
    assert not (folder / "protocol.md").exists()
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert "### Table 1 (table1.md)" in text and "### Table 1 (table1_multi.md)" in text
    assert "existing system multi (itemcf 10, popular 6) with budget 16" in text


def test_summary_blocks_read_in_the_order_of_k(tmp_path: Path) -> None:
    """The file sorts its keys as text ("100" before "50"); read_summary gives the K-keyed blocks in K's order,
    so the findings page lists K = 50 before K = 100."""
    path = tmp_path / "table1.json"
    block = {"100": {"rows": []}, "50": {"rows": []}, "1000": {"rows": []}}
    path.write_text(json.dumps({"summary_version": SUMMARY_VERSION, "table1": block, "mdd": dict(block)}, sort_keys=True))
    assert list(json.loads(path.read_text())["table1"]) == ["100", "1000", "50"]  # what the file holds
    s = read_summary(path)
    assert list(s["table1"]) == ["50", "100", "1000"] and list(s["mdd"]) == ["50", "100", "1000"]


def test_ablation_summaries_and_their_findings(tmp_path: Path) -> None:
    """Tables 2 and 3 put their cells and tested differences in their JSON (the markdown's numbers), and the
    findings page reads them per backbone and variant."""
    make_table1(tmp_path / "runs" / "t1")
    make_ablations(tmp_path / "runs")
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    folder = tmp_path / "results" / "handmade"
    t2 = read_summary(folder / "table2.json")
    assert t2["reference"].startswith("the base's Sup@K") and list(t2["ablation"]) == ["dssm"]
    rows = {r["variant"]: r for r in t2["ablation"]["dssm"]["rows"]}
    assert list(rows) == ["off", "tb_itg", "tb_boost", "na"]
    assert rows["off"]["cells"]["Inc@10"]["mean"] == pytest.approx(0.05)  # TB-Online's Inc@K is its Sup@K
    assert rows["off"]["diffs"]["Inc@10"] is None
    expected = ((np.stack([TB_ITG_INC_HITS, TB_ITG_INC_HITS_SEED1]) - np.array([0, 1, 0, 1, 0, 1])) / 4).mean()
    assert rows["tb_itg"]["diffs"]["Inc@10"]["mean"] == pytest.approx(expected)
    md = (folder / "table2.md").read_text()
    d = rows["tb_itg"]["diffs"]["Inc@10"]
    assert f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]" in md
    assert t2["ablation"]["dssm"]["popularity"]["20"]["Base"]["mean"] == pytest.approx(0.25)
    t3 = read_summary(folder / "table3.json")
    rows3 = {r["variant"]: r for r in t3["ablation"]["dssm"]["rows"]}
    assert set(rows3["on"]["diffs"]) == {"Inc@10", "Inc@20", "Exposure@10", "Exposure@20"}
    assert rows3["na"]["diffs"]["Exposure@10"] is None and rows3["ori"]["cells"]["Exposure@10"]["mean"] == pytest.approx(0.3)
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert "### Table 2 (table2.md)" in text and "### Table 3 (table3.md)" in text
    assert f"| TB-ITG | 30.00 ± 0.00 | {100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] | {d['verdict']} |" in text
    assert d["verdict"] in ("holds", "reversed", "equivalent", "cannot tell") and d["mdd"] > 0
    assert "| TB-boost | 40.00 ± 0.00 | +0.00 [+0.00, +0.00] | equivalent |" in text  # no difference at all
    assert "| TB-Online | 5.00 ± 0.00 | — | — |" in text
    assert "Calibration of" not in text  # no calibration page yet
    planted = {"dssm, TB-ITG, Inc − Sup@10": {"rows": [{"mu_label": "0", "coverage": 0.955, "holds": 0.03},
                                                       {"mu_label": "MDD", "coverage": 0.9, "holds": 0.71}],
                                              "settings": {"n_plants": 200}}}
    aa = {"n_rows": 0, "rows": {}, "rejected": [], "pooled": {"verdict": "not measured: the records predate SeedR@10"}}
    (folder / "table2_calibration.json").write_text(json.dumps({"ks": {"10": {"planted": planted, "aa": aa}}}))
    assert report_main(["--findings", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "FINDINGS.md").read_text()
    assert ("- Calibration of table2.md's verdict rule ([table2_calibration.md](handmade/table2_calibration.md)): "
            "K = 10: planted coverage at μ = 0 95.5%, \"holds\" at μ = 0 3.0%, power at the row's MDD 71.0% (200 plants); "
            "the A/A not measured: the records predate SeedR@10.") in text
    assert text.index("Calibration of table2.md") < text.index("### Table 3 (table3.md)")  # right after its table


def test_findings_opens_with_the_pooled_answers(tmp_path: Path) -> None:
    """Before any dataset's section: per dataset, Table 1 and K, one line with the primary comparison's pooled
    estimate, interval and verdict, then the controls, the A/A and the paper's comparison; no vote counts."""
    results = _report(tmp_path)
    (results / "other").mkdir()  # the same summary as a second dataset
    s = json.loads((results / "handmade" / "table1.json").read_text())
    (results / "other" / "table1.json").write_text(json.dumps(s | {"dataset": "other"}))
    assert report_main(["--findings", str(results)]) == 0
    text = (results / "FINDINGS.md").read_text()
    opening = text.split("\n## ")[0]
    assert "## handmade" in text and "## other" in text and "### Table 1" not in opening
    answers = [line for line in opening.splitlines() if line.startswith("- ")]
    assert [line.split(": ")[0] for line in answers] == [f"- {d}/table1.md, K = {k}" for d in ("handmade", "other")
                                                         for k in KS]
    rows = [crossed_stats(np.subtract(*compared(m, "IncR − SupR")), USERS) for m in BOTH]
    delta = float(np.mean([0.1 * compared(m, "IncR − SupR")[1].mean() for m in BOTH]))
    pool, seeds = pooled(rows), seeds_needed(rows, delta)
    assert answers[0] == (
        f"- handmade/table1.md, K = 10: IncR − SupR@10 (primary): {100 * pool.estimate:+.2f} points "
        f"{format_interval(pool.low, pool.high)} over 2 backbones, **{pool.verdict(delta)}** (δ = ±3.33, τ = "
        f"{100 * pool.tau:.2f}, sensitivity {100 * pool.mdd:.2f}; "
        + ("seeds alone cannot reach δ" if seeds is None else f"δ is within reach at {seeds} seeds per backbone")
        + ").")
    assert answers[0].startswith("- handmade/table1.md, K = 10: IncR − SupR@10 (primary): +41.67 points [")
    lines = opening.splitlines()
    first = lines.index(answers[0])
    assert [line.split(": ")[0] for line in lines[first + 1 : first + 5]] == [
        "  - IncR − ShufR@10 (control)", "  - SeedR − Seed2R@10 (A/A)", "  - IncR − SeedR@10 (control)",
        "  - Inc − Sup@10 (the paper's)"]  # issue 42: the mechanism control and the A/A right after the answer
    assert lines[first + 5] == answers[1]  # then K = 20
    shuf = pooled([crossed_stats(np.subtract(*compared(m, "IncR − ShufR")), USERS) for m in BOTH])
    assert lines[first + 1].startswith(f"  - IncR − ShufR@10 (control): {100 * shuf.estimate:+.2f} points "
                                       f"{format_interval(shuf.low, shuf.high)} over 2 backbones, **")
    section = text.split("\n## handmade")[1].split("\n## ")[0]  # the premise before the per-backbone rows
    assert section.index("### Premise diagnostics") < section.index("### Table 1")
    assert "positive control" not in opening  # no synthetic dataset among these
    (results / "synthetic").mkdir()
    (results / "synthetic" / "table1.json").write_text(json.dumps(s | {"dataset": "synthetic"}))
    assert report_main(["--findings", str(results)]) == 0
    opening = (results / "FINDINGS.md").read_text().split("\n## ")[0]
    control = next(line for line in opening.splitlines() if line.startswith("**The positive control.**"))
    verdict = s["table1"]["10"]["pooled"]["IncR − SupR"]["verdict"]
    assert f"finds: synthetic: {verdict} at K = 10" in control and "; and on the real data: handmade: " in control
    # no sentence counts backbones or cells as votes for a comparison (v2's "holds 0 for 11 of 11 backbones")
    for page in (text, (results / "handmade" / "table1.md").read_text()):
        assert "holds 0 for" not in page and "backbone-K cells" not in page and "interval lies above 0 for" not in page
        assert not [line for line in page.splitlines() if " − " in line and re.search(r"\b\d+ of \d+\b", line)]


def test_readme_results_quote_the_findings_answer() -> None:
    """The README's Results paragraph quotes the committed findings page's answer for the sample's Table 1 at K = 50:
    the primary comparison's pooled estimate, interval and verdict, verbatim."""
    from bench.config import PROJECT_ROOT

    prefix = "- kuairand_sample/table1.md, K = 50: IncR − SupR@50 (primary): "
    findings = (PROJECT_ROOT / "results" / "FINDINGS.md").read_text().splitlines()
    answer = [line for line in findings if line.startswith(prefix)]
    assert len(answer) == 1, ("results/FINDINGS.md holds no protocol v3 answer line for kuairand_sample's Table 1 at "
                              "K = 50: regenerate it with python -m bench.report --findings results")
    quoted = re.match(r"[+-]\d+\.\d\d points \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] over \d+ backbones, \*\*[a-z ]+\*\*",
                      answer[0].removeprefix(prefix))
    assert quoted, f"unexpected answer line: {answer[0]}"
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    assert quoted.group(0) in readme, f"README does not quote the findings' answer: {quoted.group(0)}"
    for line in (PROJECT_ROOT / "README.md").read_text().splitlines():  # every answer line it quotes, verbatim
        if re.match(r"- \w+/table1\w*\.md, K = \d+: ", line):
            assert line in findings, f"README quotes a line results/FINDINGS.md does not hold: {line}"
