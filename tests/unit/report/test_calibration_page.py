"""bench.report.calibration_page (PROTOCOL 5, Calibration): the end-to-end A/A (which rows reject, the chance of as
many under a calibrated rule, and the page's wording of both), and the rows Tables 2 and 3 calibrate."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import bench.report.calibration_page as page
from bench.report.calibration_page import AA, _aa_section, _aa_summary, aa_check, render_calibration, table_calibration, calibrated_rows
from bench.report.collect import collect
from bench.report.comparisons import ComparisonsAtK, PooledComparison, RowComparison, table1_comparisons
from tests.unit.report.test_report import SUP_HITS, TB_ITG_INC_HITS, TB_ITG_INC_HITS_SEED1, make_ablations, tb_itg_stats
from bench.report.stats import crossed_stats, pooled


def _at_k(shifts: dict[str, float], seeds: int = 6, requests: int = 400) -> ComparisonsAtK:
    """A/A rows whose per-request differences [S, N] are noise plus `shift` per backbone; reference mean 0.1."""
    rng = np.random.default_rng(0)
    at = ComparisonsAtK(50)
    rows = []
    for model, shift in shifts.items():
        d = shift + rng.normal(0.0, 0.05, size=(seeds, requests))  # [S, N]
        row = RowComparison(model, AA, crossed_stats(d), 0.1)
        at.rows[model] = {AA.name: row}
        rows.append(row)
    result = pooled([r.stats for r in rows])
    at.pooled[AA.name] = PooledComparison(AA, rows, result, 0.01, None)
    return at


def test_a_shifted_row_rejects_and_the_chance_of_as_many_is_the_binomial_tail() -> None:
    at = _at_k({"calm": 0.0, "shifted": -0.05, "quiet": 0.0})
    got = aa_check(at, ["calm", "shifted", "quiet"])
    assert got["rejected"] == ["shifted"] and got["n_rows"] == 3
    assert got["rows"]["shifted"]["verdict"] == "reversed"
    assert got["chance_of_as_many"] == pytest.approx(1 - 0.95 ** 3)  # one or more of three at 5% each
    assert _aa_summary(got)[1] == "1 of 3"
    text = "\n".join(_aa_section(got, "50"))
    assert "1 of 3 rows reject (shifted): calibration failures to investigate" in text
    assert "1 or more of 3 with probability 14.3%" in text


def test_no_rejection_reads_as_none_and_a_one_seed_row_is_left_out() -> None:
    at = _at_k({"calm": 0.0, "quiet": 0.0})
    one = RowComparison("single", AA, crossed_stats(np.zeros((1, 10)) + 0.01), 0.1)  # one seed: no interval
    at.rows["single"] = {AA.name: one}
    got = aa_check(at, ["calm", "quiet", "single"])
    assert got["rejected"] == [] and got["n_rows"] == 2 and got["chance_of_as_many"] == 1.0
    assert not got["pooled_rejects"]
    assert "None of the 2 rows rejects." in "\n".join(_aa_section(got, "50"))
    assert "Its one row does not reject." in "\n".join(_aa_section(aa_check(at, ["calm"]), "50"))


def test_records_without_the_aa_arm_say_so() -> None:
    at = ComparisonsAtK(50)
    row = RowComparison("old", AA, None, None, "the records predate SeedR@50")
    at.rows["old"] = {AA.name: row}
    at.pooled[AA.name] = PooledComparison(AA, [row], None, None, None)
    got = aa_check(at, ["old"])
    assert got["n_rows"] == 0 and got["chance_of_as_many"] is None and _aa_summary(got)[1] == "—"
    text = "\n".join(_aa_section(got, "50"))
    assert "Pooled over the backbones: not measured: the records predate SeedR@50." in text
    assert "| backbone |" not in text and "No A/A row has an interval" in text


def test_a_pooled_rejection_is_a_failure_of_the_whole_table_and_a_small_chance_is_not_zero() -> None:
    shifts = {f"m{i}": -0.05 for i in range(6)}
    got = aa_check(_at_k(shifts), list(shifts))
    assert got["pooled_rejects"] and got["rejected"] == list(shifts)
    assert got["chance_of_as_many"] == pytest.approx(0.05 ** 6)
    text = "\n".join(_aa_section(got, "50"))
    assert "6 or more of 6 with probability under 0.1%." in text
    assert "The pooled A/A rejects: a calibration failure of the whole table." in text


def test_a_row_without_an_interval_is_left_out_of_the_count() -> None:
    at = _at_k({"calm": 0.0, "quiet": 0.0})
    users = np.zeros(5)  # every request one user's: no request df, so no SE, no interval and no p
    lone = RowComparison("lone", AA, crossed_stats(np.random.default_rng(1).normal(size=(3, 5)), users), 0.1)
    at.rows["lone"] = {AA.name: lone}
    got = aa_check(at, ["calm", "quiet", "lone"])
    assert got["n_rows"] == 2 and "lone" not in got["rows"]
    assert got["alpha"] == 0.05


def test_tables_2_and_3_calibrate_the_differences_they_test(tmp_path, monkeypatch) -> None:
    """Table 2: each variant's Inc@K against its own job's Sup@K; Table 3: IncRec-ori's and IncRec's Inc@K and
    Exposure@K against IncRec-NA's; each row's statistics are those its table reports."""
    make_ablations(tmp_path)
    t2, t3 = collect([tmp_path])
    at10 = table1_comparisons(t2, ["dssm"])[0]
    rows = calibrated_rows(t2, at10, ["dssm"])
    assert [r.label for r in rows] == ["dssm, TB-ITG, Inc − Sup@10"]  # the other variants equal their Sup: SE 0, left out
    tb_itg = rows[0]
    assert np.array_equal(tb_itg.a_hits, np.stack([TB_ITG_INC_HITS, TB_ITG_INC_HITS_SEED1]))
    assert np.array_equal(tb_itg.b_hits, np.stack([SUP_HITS, SUP_HITS]))
    assert tb_itg.stats.estimate == pytest.approx(tb_itg_stats()[1].estimate)
    assert tb_itg.stats.se == pytest.approx(tb_itg_stats()[1].se)
    on = {j.seed: np.array([j.seed, 1, 2, 0, 3, 1]) for j in t3.select("dssm", "on")}
    na = {j.seed: np.array([1, 0, j.seed, 1, 0, 2]) for j in t3.select("dssm", "na")}
    for arm, hits in (("on", on), ("na", na)):  # IncRec's Exposure@20 with a spread against IncRec-NA's, seed by seed
        for j in t3.select("dssm", arm):
            j.arrays["Exposure@20/hits"] = hits[j.seed]
    rows3 = calibrated_rows(t3, table1_comparisons(t3, ["dssm"])[1], ["dssm"])
    assert [r.label for r in rows3] == ["dssm, IncRec-ori − IncRec-NA, Exposure@20", "dssm, IncRec − IncRec-NA, Exposure@20"]
    ori, inc = rows3
    assert np.array_equal(ori.a_hits, np.stack([SUP_HITS, SUP_HITS])) and np.array_equal(inc.a_hits, np.stack([on[0], on[1]]))
    for row in rows3:
        assert np.array_equal(row.b_hits, np.stack([na[0], na[1]]))  # IncRec-NA's, seed by seed
    assert inc.stats.estimate == pytest.approx(float(np.mean(np.stack([on[0] - na[0], on[1] - na[1]]) / 4)))
    # six requests and two seeds give an MDD above the arm's miss rate, which cannot be planted: 0 and δ only
    monkeypatch.setattr(page, "planted", functools.partial(page.planted, mu_values=(0.0, "delta")))
    result = table_calibration(t2, draws=20, plants=5, v2_draws=10, n_boot=20)
    assert result["table"] == "table2" and set(result["ks"]["10"]["planted"]) == {r.label for r in rows}
    text = render_calibration(result, "python -m bench.report --calibrate t2")
    assert "Checked on the differences the table tests: each variant's Inc@K" in text
    assert "#### dssm, TB-ITG, Inc − Sup@10" in text and "### Planted effects per tested row, K = 10" in text


def _planted(coverages: list[float]) -> dict:
    """calibration.planted's shape, one result per row, with the given coverages at μ = 0."""
    return {f"row{i}": {"rows": [{"mu_label": "0", "coverage": c, "holds": 0.02}, {"mu_label": "MDD", "coverage": 0.9,
                                                                                     "holds": 0.75}],
                        "settings": {"n_plants": 200}} for i, c in enumerate(coverages)}


def test_the_findings_reading_of_a_calibration_does_not_depend_on_the_rows_order() -> None:
    """The page and the findings line (from the JSON, whose keys are sorted) give the same figures: the planted
    shares are summed exactly (these four coverages average 0.9525, which a running sum rounds either way)."""
    aa = {"n_rows": 1, "rows": {"dssm": {"verdict": "cannot tell"}}, "rejected": [], "pooled": {"verdict": "not pooled"}}
    coverages = [0.945, 0.925, 0.95, 0.99]
    forward = {"ks": {"100": {"planted": _planted(coverages), "aa": aa}, "50": {"planted": _planted([0.95]), "aa": aa}}}
    backward = {"ks": {"100": {"planted": dict(reversed(list(_planted(coverages).items()))), "aa": aa},
                       "50": {"planted": _planted([0.95]), "aa": aa}}}
    text = page.calibration_reading(forward)
    assert text == page.calibration_reading(backward)
    assert text.startswith("K = 50: planted coverage at μ = 0 95.0%")  # K in order, though the JSON sorts "100" first
    assert "K = 100: planted coverage at μ = 0 95.2%, \"holds\" at μ = 0 2.0%, power at the row's MDD 75.0% (800 plants); " \
           "the A/A row (dssm) cannot tell." in text
