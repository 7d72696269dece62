"""bench.report.summary (tableN.json beside tableN.md) and bench.report.findings (FINDINGS.md from those
summaries) on the hand-made records of test_report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.report.__main__ import main as report_main
from bench.report.collect import ReportError, collect
from bench.report.findings import render_findings, verdict
from bench.report.summary import SUMMARY_VERSION, read_summary, table_summary
from bench.report.tables import table1_numbers
from tests.test_report import (INC_HITS, KS, R, TB_ITG_INC_HITS, make_ablations, make_table1, make_under_floor,
                               rolling_fits)


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
    dssm = next(r for r in s["table1"]["10"]["rows"] if r["model"] == "dssm")
    assert dssm["cells"]["Base"]["mean"] == pytest.approx(0.11)  # (0.10 + 0.12) / 2, as the markdown shows
    assert dssm["diffs"]["Inc-Sup"]["mean"] == pytest.approx((INC_HITS / 4).mean())
    assert dssm["diffs"]["Inc-Seed"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    sasrec = next(r for r in s["table1"]["10"]["rows"] if r["model"] == "sasrec")
    assert sasrec["diffs"]["Inc-Seed"] is None  # no Seed control in sasrec's records
    md = (results / "handmade" / "table1.md").read_text()
    assert f"{100 * dssm['diffs']['Inc-Sup']['mean']:+.2f} [{100 * dssm['diffs']['Inc-Sup']['low']:+.2f}" in md
    assert s["table1"]["20"]["below_popularity"] == ["dssm", "sasrec"] and s["table1"]["10"]["below_popularity"] == []
    assert s["table1"]["10"]["inc_above_sup"] == ["dssm"]  # means over seeds: sasrec's Sup@10 beats its Inc@10
    assert set(s["mdd"]) == {"10", "20"} and s["mdd"]["10"]["n"] == R
    # the same records give the same summary (table_summary recomputes it, bootstrap seeded)
    (runs,) = collect([tmp_path / "runs_results"])
    again = json.loads(json.dumps(table_summary(runs, s["command"], table1_numbers(runs))))
    assert again == s


def test_verdict_reads_the_interval_and_controls() -> None:
    def row(inc_sup, supr, seed):
        mk = lambda t: None if t is None else {"mean": (t[0] + t[1]) / 2, "low": t[0], "high": t[1], "p": 0.5}
        return {"diffs": {"Inc-Sup": mk(inc_sup), "Inc-SupR": mk(supr), "Inc-Seed": mk(seed)}}

    assert verdict(row((0.01, 0.03), (0.01, 0.02), (0.005, 0.02)), 0.01) == "holds, and above both controls"
    assert verdict(row((0.01, 0.03), (-0.01, 0.02), (0.005, 0.02)), 0.01) == "holds against Sup, not against SupR"
    assert verdict(row((0.01, 0.03), (0.01, 0.02), None), 0.01) == "holds against Sup and SupR; Seed not measured"
    assert verdict(row((-0.03, -0.01), None, None), 0.01) == "reversed: Inc below Sup"
    assert verdict(row((-0.004, 0.006), None, None), 0.01) == "cannot tell (|difference| below the MDD)"
    assert verdict(row((-0.01, 0.05), None, None), 0.01) == "cannot tell (interval holds 0)"
    assert verdict(row(None, None, None), 0.01) == "not measured"


def test_findings_page_from_the_summaries(tmp_path: Path) -> None:
    results = _report(tmp_path)
    assert report_main(["--findings", str(results)]) == 0
    text = (results / "FINDINGS.md").read_text()
    assert text.startswith("# Findings") and f"python -m bench.report --findings {results}" in text
    assert "## handmade" in text and "### Table 1 (table1.md)" in text
    assert "| dssm |" in text and "holds against Sup, not against Seed" in text  # Inc − Seed is 0 request by request
    assert "holds against Sup and SupR; Seed not measured" in text  # sasrec: no Seed control
    assert "- K = 10: Inc − Sup's 95% interval lies above 0 for 2 of 2 backbones (dssm, sasrec)" in text
    assert "- K = 10: above 0 against both controls (SupR and Seed) as well: 0 of 2 (none)." in text
    assert ("Base@20 beats the popularity floor (25.00 ± 0.00) for 0 of 2 backbones; not for dssm, sasrec; "
            "2 of these 2 ran untuned (dssm, sasrec), on their YAML's values.") in text
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
    expected = ((TB_ITG_INC_HITS - np.array([0, 1, 0, 1, 0, 1])) / 4).mean()
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
    assert f"| TB-ITG | 30.00 ± 0.00 | {100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] | higher |" in text
    assert "| TB-boost | 40.00 ± 0.00 | +0.00 [+0.00, +0.00] | cannot tell |" in text
    assert "| TB-Online | 5.00 ± 0.00 | — | — |" in text


def test_findings_answer_and_control_counts(tmp_path: Path) -> None:
    results = _report(tmp_path)
    assert report_main(["--findings", str(results)]) == 0
    text = (results / "FINDINGS.md").read_text()
    s = read_summary(results / "handmade" / "table1.json")
    sides = [(r["diffs"]["Inc-Sup"]["low"] > 0) - (r["diffs"]["Inc-Sup"]["high"] < 0)
             for block in s["table1"].values() for r in block["rows"]]
    assert (f"- handmade/table1.md (2 backbones × K = 10, 20; existing system itemcf): Inc@K > Sup@K holds (interval above 0) "
            f"in {sides.count(1)} of 4 backbone-K cells, is reversed (below 0) in {sides.count(-1)}") in text
    assert "0 cell(s) also clear both controls (2 cell(s) lack a control). Controls: " in text  # dssm: Inc − Seed is 0; sasrec: no Seed
    assert "Inc − Seed lies above 0 in 0 and below 0 in 0 of 2. Base@K beats the popularity floor in 2 of 4." in text
    assert "- K = 10: Inc − Seed's 95% interval lies above 0 for 0 of 1 (none), below 0 for 0 (none) and holds 0 for 1 (dssm)." in text



def test_readme_results_quote_the_findings_answer() -> None:
    """The README's Results paragraph states the committed findings page's answer, line for line ("In short")."""
    from bench.config import PROJECT_ROOT

    findings = (PROJECT_ROOT / "results" / "FINDINGS.md").read_text().splitlines()
    answer = [line for line in findings if line.startswith("- ") and "backbone-K cells" in line]
    assert answer, "results/FINDINGS.md holds no 'In short' line: regenerate it with python -m bench.report --findings results"
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    for line in answer:
        assert " ".join(line.removeprefix("- ").split()) in readme, f"README does not state: {line}"
