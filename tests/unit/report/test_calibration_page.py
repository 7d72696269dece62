"""bench.report.calibration_page's end-to-end A/A (PROTOCOL 5, Calibration): which rows reject, the chance of as
many under a calibrated rule, and the page's wording of both."""

from __future__ import annotations

import numpy as np
import pytest

from bench.report.calibration_page import AA, _aa_section, _aa_summary, aa_check
from bench.report.comparisons import ComparisonsAtK, PooledComparison, RowComparison
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
