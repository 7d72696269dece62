"""Tuned values confirmed at two more seeds (bench.tuning.confirm): the rule, the fallback and the record."""

from __future__ import annotations

import statistics

import pytest

from bench.config import PROJECT_ROOT
from bench.tuning.confirm import Candidate, check_candidate, confirm, report_candidates


def test_the_rule_compares_the_drop_with_the_seed_to_seed_sd() -> None:
    held = check_candidate(0.160, [0.161, 0.150], [False, False])  # drop 0.0045 < sd 0.0061
    assert held["passed"] and held["why_not"] is None
    assert held["sd"] == pytest.approx(statistics.stdev([0.160, 0.161, 0.150]))
    assert held["drop"] == pytest.approx(0.160 - 0.1555)
    assert not check_candidate(0.160, [0.158, 0.157], [False, False])["passed"]  # drop 0.0025 > sd 0.0015
    dropped = check_candidate(0.160, [0.140, 0.141], [False, False])  # drop 0.0195 > sd 0.0107
    assert not dropped["passed"] and "more than the seed-to-seed sd" in dropped["why_not"]
    collapsed = check_candidate(0.160, [0.161, 0.159], [False, True])
    assert not collapsed["passed"] and "collapsed at 1 of the confirmation seeds" in collapsed["why_not"]


def _runner(table: dict[tuple[int, int], tuple[float, bool]], calls: list):
    def run(params: dict, seed: int) -> tuple[float, bool]:
        calls.append((params["id"], seed))
        return table[(params["id"], seed)]
    return run


def test_a_failed_value_set_falls_back_to_the_next_best_checked_the_same_way() -> None:
    cands = [Candidate(7, {"id": 7}, 0.20), Candidate(3, {"id": 3}, 0.19), Candidate(5, {"id": 5}, 0.18)]
    table = {(7, 1): (0.15, False), (7, 2): (0.16, False),  # the winner's curse: far below its search value
             (3, 1): (0.19, False), (3, 2): (0.185, False)}
    calls: list = []
    chosen, record = confirm(cands, _runner(table, calls))
    assert chosen.trial == 3 and record["outcome"] == "passed" and record["chosen_trial"] == 3
    assert calls == [(7, 1), (7, 2), (3, 1), (3, 2)]  # trial 5 never ran: the second candidate held
    assert [c["trial"] for c in record["checked"]] == [7, 3] and record["seeds"] == [0, 1, 2]


def test_when_none_passes_the_best_mean_of_the_towers_that_never_collapsed_is_kept() -> None:
    cands = [Candidate(1, {"id": 1}, 0.30), Candidate(2, {"id": 2}, 0.20), Candidate(4, {"id": 4}, 0.19)]
    table = {(1, 1): (0.35, True), (1, 2): (0.35, False),  # the highest mean, but it collapsed once
             (2, 1): (0.10, False), (2, 2): (0.11, False),
             (4, 1): (0.12, False), (4, 2): (0.12, False)}
    chosen, record = confirm(cands, _runner(table, []))
    assert record["outcome"].startswith("none passed") and chosen.trial == 4


def test_a_tuned_file_from_another_machine_is_measured_again_at_its_search_seed() -> None:
    cands = [Candidate(4, {"id": 4}, 0.99)]  # the search's own value, from another CPU: not used
    table = {(4, 10): (0.150, False), (4, 11): (0.149, False), (4, 12): (0.151, False)}
    calls: list = []
    chosen, record = confirm(cands, _runner(table, calls), search_seed=10, remeasure=True)
    assert calls == [(4, 10), (4, 11), (4, 12)] and chosen.value == 0.150 and record["seeds"] == [10, 11, 12]
    assert record["checked"][0]["search_value"] == 0.15 and record["outcome"] == "passed"


def test_the_search_reports_trials_are_read_best_first() -> None:
    report = PROJECT_ROOT / "results" / "kuairand_sample" / "tuning" / "dssm.md"
    if not report.exists():
        pytest.skip("no committed DSSM search report")
    cands = report_candidates(report)
    values = [c.value for c in cands]
    assert values == sorted(values, reverse=True) and len(cands) >= 10
    assert set(cands[0].params) == {"train.lr", "train.n_negatives", "model.user_tower.temperature", "model.dim"}
    assert all(isinstance(c.params["train.n_negatives"], int) for c in cands)


def test_a_tuned_file_is_rewritten_with_its_confirmation(tmp_path, monkeypatch) -> None:
    """python -m bench.tuning.confirm on a file written before the check: the search value measured again, the
    next-best trial of the search's report tried when the first fails, the file's values those of the trial kept,
    the search's provenance untouched and a header line saying what was done."""
    import yaml

    import bench.tuning.confirm as confirm_module
    from bench.config import compose, dataset_label

    overrides = ["model=dssm", f"tune.dir={tmp_path / 'tuned'}", f"tune.report_dir={tmp_path / 'results'}"]
    label = dataset_label(compose("experiment=tune", *overrides))
    tuned = tmp_path / "tuned" / label / "dssm.yaml"
    tuned.parent.mkdir(parents=True)
    provenance = {"best_trial": 4, "best_value": 0.2, "n_trials": 3}
    tuned.write_text("# Tuned values of dssm: the best of 3 trials.\n"
                     + yaml.safe_dump({"provenance": provenance, "values": {"train.lr": 0.05}}))
    report = tmp_path / "results" / label / "tuning" / "dssm.md"
    report.parent.mkdir(parents=True)
    report.write_text("| trial | state | `train.lr` | valid Base@20 | best epoch | epochs | seconds |\n"
                      "| --- | --- | --- | --- | --- | --- | --- |\n"
                      "| 2 | COMPLETE | 0.01 | 0.1800 | 3 | 7 | 1.0 |\n"
                      "| 4 | COMPLETE | 0.05 | 0.2000 | 3 | 7 | 1.0 |\n"
                      "| 5 | REJECTED: collapsed | 0.09 | 0.1900 | 3 | 7 | 1.0 |\n")
    values = {(0.05, 0): 0.20, (0.05, 1): 0.12, (0.05, 2): 0.13, (0.01, 0): 0.18, (0.01, 1): 0.179, (0.01, 2): 0.181}
    calls = []

    def fake_run(cfg, params, seed, out_dir):
        calls.append((params["train.lr"], seed))
        return values[(params["train.lr"], seed)], False

    monkeypatch.setattr(confirm_module, "run_confirmation", fake_run)
    data = confirm_module.confirm_tuned_file(overrides, tmp_path / "work")
    assert calls == [(0.05, 0), (0.05, 1), (0.05, 2), (0.01, 0), (0.01, 1), (0.01, 2)]  # trial 5 was rejected
    written = yaml.safe_load(tuned.read_text())
    assert written["values"] == {"train.lr": 0.01} == data["values"] and written["provenance"] == provenance
    assert written["confirmation"]["chosen_trial"] == 2 and written["confirmation"]["outcome"] == "passed"
    assert tuned.read_text().splitlines()[1].startswith("# Confirmed by `python -m bench.tuning.confirm model=dssm")
    assert "the values below are trial 2's." in tuned.read_text().splitlines()[1]


def test_the_command_line_prints_usage_and_refuses_what_is_not_an_override(capsys, monkeypatch) -> None:
    """`--help` ran a default configuration once (and rewrote a tuned file): now it prints the usage, and any other
    argument that is not KEY=VALUE is a one-line error before any work."""
    from bench.tuning import confirm

    monkeypatch.setattr(confirm, "confirm_tuned_file", lambda *a, **k: pytest.fail("no work may start"))
    assert confirm.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("python -m bench.tuning.confirm dataset=D model=M")
    assert confirm.main(["model=dssm", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bogus: not an override (KEY=VALUE)") and err.count("\n") == 1
