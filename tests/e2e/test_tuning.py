"""experiment=tune: the search on `tiny` (killed once and resumed), its outputs, tuned=true, and the
validation-only trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from bench.config import CONF_DIR, PROJECT_ROOT
from bench.errors import ConfigError
from tests.conftest import compose_config

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # as the sweeper does (optuna 2.10 on SQLAlchemy 1.4)
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
SHORT = ["dataset.preset=tiny", "train.max_epochs=2", "train.patience=1", "train.threads=1", "train.max_batches=4",
         "tune.reject_collapsed=false"]  # towers trained on 4 batches rank nearly alike: tests/unit/evaluation/test_collapse.py checks rejection


def _search(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", "-m", "experiment=tune", *args], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.slow
def test_killed_search_resumes_to_n_trials_and_writes_tuned_values_and_report(tmp_path: Path,
                                                                               synthetic_cache: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["model=youtube_dnn", *SHORT, "hydra.sweeper.n_trials=2", "tune.max_candidates=1",
            f"dataset.cache_dir={synthetic_cache}",
            f"cache.dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}", f"tune.dir={tmp_path / 'tuned'}",
            f"tune.report_dir={tmp_path / 'results'}"]
    proc = _search(args)
    first, second = sweep / "trial_0" / "trial.json", sweep / "trial_1"
    deadline = time.time() + 240
    while not second.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # killed as trial 1 starts (trial 0 finished and reported)
    proc.wait()
    assert first.exists() and not (second / "trial.json").exists(), proc.stdout.read()
    kept = first.stat().st_mtime_ns

    again = _search(args)
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0, out
    assert "resuming study" in out
    assert first.stat().st_mtime_ns == kept  # trial 0 was not rerun or overwritten

    import optuna

    study = optuna.load_study(study_name="synthetic_tiny_youtube_dnn", storage=f"sqlite:///{sweep / 'optuna.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert [t.number for t in complete] == [0, 2]  # n_trials in all, across the two launches
    assert study.trials[0].params == {"train.lr": 0.01, "train.n_negatives": 1024, "model.user_tower.dropout": 0.0,
                                      "model.dim": 64}  # trial 0 is the untuned configuration
    assert study.trials[1].state.name == "FAIL"  # the killed trial ...
    assert study.trials[2].params == study.trials[1].params  # ... asked again with its values
    records = {t.number: json.loads((sweep / f"trial_{t.number}" / "trial.json").read_text()) for t in complete}
    for t in complete:  # the objective the sweeper received is the validation value in the trial's record
        assert t.value == records[t.number]["objective"]["value"]
        assert records[t.number]["objective"]["split"] == "valid"
        assert records[t.number]["config"]["model"]["dim"] == t.params["model.dim"]  # the trial ran the sampled point
    ranked = sorted(complete, key=lambda t: (-t.value, t.number))
    tuned = yaml.safe_load((tmp_path / "tuned" / "synthetic_tiny" / "youtube_dnn.yaml").read_text())
    confirmation = tuned["confirmation"]  # the best trials rerun at seeds 1 and 2 before the file was written
    assert confirmation["seeds"] == [0, 1, 2] and confirmation["checked"][0]["trial"] == ranked[0].number
    assert len(confirmation["checked"]) == 1  # tune.max_candidates=1: the best trial only, passed or not
    for check in confirmation["checked"]:
        for seed, value in zip((1, 2), check["values"]):
            rec = json.loads((sweep / f"confirm_trial{check['trial']}_seed{seed}" / "trial.json").read_text())
            assert rec["seed"] == seed and rec["objective"]["split"] == "valid"
            assert round(rec["objective"]["value"], 6) == value
    best = next(t for t in complete if t.number == confirmation["chosen_trial"])
    assert confirmation["outcome"] != "passed" or best.number == next(
        c["trial"] for c in confirmation["checked"] if c["passed"])
    assert tuned["values"] == best.params
    assert tuned["provenance"]["best_value"] == best.value and tuned["provenance"]["n_trials"] == 2
    command = tuned["provenance"]["command"]
    assert command.startswith("python -m bench -m experiment=tune model=youtube_dnn") and "hydra.sweeper.n_trials=2" in command
    assert f"hydra.sweep.dir={sweep}" in command and "hydra.mode" not in command
    report = (tmp_path / "results" / "synthetic_tiny" / "tuning" / "youtube_dnn.md").read_text()
    assert f"Trial {best.number}: validation Base@" in report and f"{best.value:.4f}" in report
    assert (tmp_path / "results" / "synthetic_tiny" / "tuning" / "youtube_dnn_trials.png").stat().st_size > 0

    other = _search([*args, "train.max_epochs=2"])  # another search in the same folder is refused
    out, _ = other.communicate(timeout=240)
    assert other.returncode != 0 and "other overrides or another space" in out, out

    from bench.config.tuned import apply_tuned  # tuned=true: a run picks the values up and records them
    from bench.pipeline.run import run

    given = ["model=youtube_dnn", "increc=off", "tuned=true", *SHORT, "train.max_epochs=1", "eval.seed_control=false",
             f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp_path / 'cache'}", f"tune.dir={tmp_path / 'tuned'}"]
    record = run(apply_tuned(compose_config(*given), given), tmp_path / "run").record
    assert record["config"]["tuning_applied"]["values"] == best.params
    assert record["config"]["train"]["lr"] == best.params["train.lr"]
    assert record["config"]["model"]["dim"] == best.params["model.dim"]


def test_a_trial_never_ranks_a_test_request(tmp_path: Path, synthetic_cache: Path, monkeypatch) -> None:
    import bench.evaluation.evaluate as evaluate
    from bench.tuning import trial

    built, ranked = [], []
    real_build, real_rank = evaluate.EvalSet.build.__func__, evaluate.rank_pool

    def build(cls, samples, split, max_requests=None):
        built.append(split)
        assert split != "test", "a tuning trial built the test set"
        return real_build(cls, samples, split, max_requests)

    def rank(model, samples, profiles, rows, *args):
        req = samples.requests
        assert req.is_test.any() and req.targets.lengths()[req.is_test].sum() == 0  # no test truth to score against
        assert req.exposures.lengths()[req.is_test].sum() == 0
        ranked.append((rows.copy(), req.is_test[rows].any()))
        return real_rank(model, samples, profiles, rows, *args)

    monkeypatch.setattr(evaluate.EvalSet, "build", classmethod(build))
    monkeypatch.setattr(evaluate, "rank_pool", rank)
    cfg = compose_config("experiment=tune", "model=dssm", *SHORT, f"dataset.cache_dir={synthetic_cache}")
    value = trial.run_trial(cfg, tmp_path)
    record = json.loads((tmp_path / "trial.json").read_text())
    assert value == record["objective"]["value"] == record["training"]["base"]["best_value"]
    assert built == ["valid"] and ranked  # the validation set only, ranked once per epoch
    assert not any(has_test for _, has_test in ranked)
    valid_rows = ranked[0][0]
    with pytest.raises(trial.TestRowsRefused):  # the trial's ranker cannot rank anything else
        trial.ValidationOnlyRanker(None, None, 1, None, 1, allowed=valid_rows)(None, valid_rows[:1] + 10**9, 5)


def test_tuned_setting_resolves_and_the_command_line_wins(tmp_path: Path) -> None:
    from bench.config.tuned import apply_tuned, resolve_tuned

    base = ["model=sasrec", f"tune.dir={tmp_path}"]
    assert not resolve_tuned(compose_config(*base, "experiment=table1"))  # auto, no file
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_tuned(compose_config(*base, "tuned=true"))
    with pytest.raises(ConfigError, match="experiment=tune"):
        resolve_tuned(compose_config(*base, "experiment=tune", "tuned=true"))
    path = tmp_path / "synthetic" / "sasrec.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"provenance": {"n_trials": 20}, "values": {"train.lr": 0.03, "model.dim": 32}}))
    assert resolve_tuned(compose_config(*base, "experiment=table1"))  # auto, file there, a table experiment
    assert not resolve_tuned(compose_config(*base))  # auto outside experiment=table1..3
    assert not resolve_tuned(compose_config(*base, "experiment=table1", "tuned=false"))
    cfg = apply_tuned(compose_config(*base, "tuned=true", "train.lr=0.5"), ["model=sasrec", "tuned=true", "train.lr=0.5"])
    assert cfg.train.lr == 0.5 and cfg.model.dim == 32
    assert cfg.tuning_applied.overridden_by_command_line == {"train.lr": 0.03}
    assert apply_tuned(compose_config(*base, "tuned=false"), []).tuning_applied is None
    path.write_text(yaml.safe_dump({"values": {"train.no_such_key": 1}}))
    with pytest.raises(ConfigError, match="not a key"):
        apply_tuned(compose_config(*base, "tuned=true"), [])


def _corners(space: dict[str, str]) -> list[list[str]]:
    """Points of a search space: every choice value and both ends of every interval, at least once each."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
    from optuna.distributions import CategoricalDistribution

    dists, fixed = create_params_from_overrides([f"{k}={v}" for k, v in space.items()])
    assert not fixed and len(dists) == len(space)
    values = {k: list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high] for k, d in dists.items()}
    n = max(len(v) for v in values.values())
    return [[f"{k}={v[i % len(v)]}" for k, v in values.items()] for i in range(n)]


@pytest.mark.parametrize("name", MODELS)
def test_every_backbone_has_a_comparable_space_whose_points_build_its_tower(name: str, synthetic_cache: Path) -> None:
    from bench.pipeline.validate import validate
    from bench.data import load_dataset
    from bench.engine.build import build_model
    from models.increc import Variant

    cfg = compose_config("experiment=tune", f"model={name}", "dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}")
    space = OmegaConf.to_container(cfg.tune.space)
    assert len(space) == 4 and "train.lr" in space and "model.dim" in space  # README "Tuning": four dimensions each
    assert space["train.lr"] == "tag(log, interval(0.001, 0.1))"
    ds = load_dataset(cfg.dataset, progress=False)
    for point in _corners(space):
        point_cfg = compose_config("experiment=tune", f"model={name}", "dataset.preset=tiny",
                                   f"dataset.cache_dir={synthetic_cache}", *point)
        validate(point_cfg)
        model = build_model(point_cfg, ds, Variant(name="off"), seed=0)
        assert model.item_tower.ids.weight.shape[1] == point_cfg.model.dim
        for key, value in (p.split("=", 1) for p in point):  # the point reached the config the tower was built from
            assert str(OmegaConf.select(point_cfg, key)) == value


def test_a_sweep_on_the_search_command_line_is_refused() -> None:
    from hydra_plugins.increc_tuning._resumable import refuse_command_line_sweeps

    refuse_command_line_sweeps(["model=sasrec", "train.threads=1", "hydra.sweeper.n_trials=3"], "sasrec")
    with pytest.raises(ValueError, match="the command line sweeps seed=0,1: run one search per value"):
        refuse_command_line_sweeps(["model=sasrec", "seed=0,1"], "sasrec")


def test_the_default_trial_is_skipped_when_the_default_lies_outside_the_space() -> None:
    from hydra_plugins.increc_tuning._resumable import default_point

    cfg = compose_config("experiment=tune", "model=sasrec")
    assert default_point(cfg, ["train.lr=tag(log, interval(0.001, 0.1))", "model.dim=choice(32, 64)"]) == \
        {"train.lr": 0.01, "model.dim": 64}
    assert default_point(cfg, ["train.lr=tag(log, interval(0.02, 0.1))", "model.dim=choice(32, 64)"]) is None
    assert default_point(cfg, ["model.dim=choice(32, 128)"]) is None


def test_summary_puts_default_and_tuned_runs_of_a_backbone_on_one_row() -> None:
    from bench.tuning.default_vs_tuned import rows, table

    def record(applied, valid, test):
        return {"config": {"model": {"name": "dssm"}, "tuning_applied": applied},
                "training": {"base": {"best_value": valid, "selection_metric": "Base@50", "best_epoch": 3, "epochs_run": 7}},
                "metrics": {"Base@50": test, "Base@100": 2 * test, "Sup@50": 0.9}, "code_version": {"git_commit": "abc"}}

    tuned = {"values": {"train.lr": 0.002}, "provenance": {"best_trial": 4, "search_wall_seconds": 805.2}}
    summary = rows([record(tuned, 0.16, 0.15), record(None, 0.15, 0.14)])
    assert summary[0]["default"]["valid"] == 0.15 and summary[0]["tuned"]["test"] == {"Base@50": 0.15, "Base@100": 0.3}
    text = table(summary)
    assert "| dssm | 0.1500 (epoch 3 of 7) | 0.1600 (epoch 3 of 7) | 0.1400 | 0.2800 | 0.1500 | 0.3000 | 4 | 805.2 |" in text
