"""Bad configuration and degenerate data: one-line errors naming the key or what is missing, never a NaN.

Reader errors on bad files are in test_kuairand_reader.py; here: the config schema
(bench.config.schema, bench.config.targets), the command-line precheck (bench.pipeline.precheck, through `python -m bench`) and
data that reads fine but cannot make a benchmark (bench.pipeline.prepare.check_requests, bench.pipeline.run).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import PROJECT_ROOT
from bench.pipeline.validate import validate
from bench.errors import ConfigError, DataError
from bench.pipeline.run import run
from tests.conftest import compose_config
from tests.unit.data.test_kuairand_reader import HOUR, PURE, T0, log_row, make_release, video_row

DAY = 24 * HOUR


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("overrides, needles", [
    (["train.epochs=abc"], ["train.epochs='abc'", "expected an integer"]),
    (["train.lr=fast"], ["train.lr='fast'", "expected a number"]),
    (["train.progress=maybe"], ["train.progress='maybe'", "true or false"]),
    (["eval.ks=[5,abc]"], ["eval.ks=[5, 'abc']", "list of integers"]),
    (["dataset.kind=parquet"], ["dataset.kind='parquet'", "['synthetic', 'kuairand', 'atomic']"]),
    (["increc.alpha=learned"], ["increc.alpha='learned'", "['one', 'item', 'nearest_exposed']"]),
    (["model.negatives=hard"], ["model.negatives='hard'", "['uniform', 'in_batch']"]),
    (["+train.epoch=3"], ["unknown key 'train.epoch'", "epochs", "did you mean 'train.epochs'?"]),
    (["+model.user_tower.n_layer=3"], ["unknown key 'model.user_tower.n_layer'", "did you mean 'model.user_tower.n_layers'?"]),
    (["+sed=3"], ["unknown key 'sed'", "did you mean 'seed'?"]),
    (["train.max_batches=0"], ["train.max_batches=0: must be at least 1, or null for every batch"]),
    (["requests.max_len=0"], ["requests.max_len=0", "at least one position"]),
    (["train.batch_size=0"], ["train.batch_size=0", "at least 1"]),
    (["seeds=0"], ["seeds=0", "at least one seed"]),
    (["increc=ori", "increc.alignment=false"], ["increc.alpha='item'", "needs the alignment tower"]),
    (["train.device=gpu"], ["train.device='gpu'", "auto, cpu, cuda or cuda:N"]),
    (["dataset=kuairand"], ["dataset.root is required"]),
    (["dataset.preset=tiny", "eval.ks=[400]"], ["eval.ks=[400]", "need 2K <= pool size (600)"]),
    (["model.user_tower.n_heads=four"], ["model.user_tower.n_heads='four'", "expected an integer"]),
    (["model=kuaiformer", "model.user_tower.n_interests=2.5"], ["model.user_tower.n_interests=2.5", "an integer"]),
    (["train.epochs=${nope}"], ["Interpolation key 'nope' not found", "train.epochs"]),
])
def test_bad_config_is_rejected_naming_the_key(overrides: list[str], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        validate(compose_config(*overrides))
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


@pytest.mark.slow
def test_precheck_accepts_required_keys_and_real_commands() -> None:
    from bench.pipeline.precheck import precheck

    precheck(["dataset=kuairand", "dataset.root=/data/KuaiRand-Pure"])  # root is ??? (required) in the YAML
    precheck(["dataset=atomic", "dataset.root=/data", "dataset.name=ml-100k"])
    precheck(["-m", "experiment=table2", "dataset=kuairand_sample", "model=sasrec", "seeds=2"])
    # an experiment's one-valued sweep parameter (model: recbole) applies to each swept value it qualifies
    precheck(["-m", "experiment=table1_recbole", "dataset=kuairand_sample"])
    precheck(["-m", "experiment=table1", "model=recbole", "model.recbole_model=GRU4Rec,SINE", "existing=multi"])
    with pytest.raises(ConfigError, match="BERT4Rec"):
        precheck(["-m", "experiment=table1", "model=recbole", "model.recbole_model=GRU4Rec,BERT4Rec"])


def test_tower_settings_its_constructor_refuses_are_a_config_error(tmp_path: Path, synthetic_cache: Path) -> None:
    cfg = compose_config("dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}", "model=comirec_dr",
                         "model.user_tower.bilinear=shared", "train.epochs=0", "train.early_stopping=false", "eval.seed_control=false", "train.progress=false")
    with pytest.raises(ConfigError, match=r"model.user_tower \(comirec_dr\): .*routing_init"):
        run(cfg, tmp_path)


def test_every_shipped_choice_validates() -> None:
    for group in ("model", "increc", "dataset", "existing"):
        for path in sorted((PROJECT_ROOT / "conf" / group).glob("*.yaml")):
            extra = {"kuairand": [f"dataset.root={PROJECT_ROOT}"],
                     "atomic": [f"dataset.root={PROJECT_ROOT}", "dataset.name=ml-100k"]}.get(path.stem, [])
            validate(compose_config(f"{group}={path.stem}", *extra))


@pytest.mark.parametrize("args, needle", [
    (["train.epoch=3"], "unknown key 'train.epoch': 'train' has batch_size, compile, device, dropout_sampler, early_stopping, "
                        "epochs, item_vectors_once, lr, max_batches, max_epochs, n_negatives, patience, precision, prefetch, progress, "
                        "sparse_item_grads, threads; did you mean 'train.epochs'?"),
    (["model=sasrek"], "Could not find 'model/sasrek' Available options in 'model': comirec_dr comirec_sa dssm kuaiformer"),
    (["-m", "train.epochs=1,abc"], "train.epochs='abc': expected an integer"),  # the bad value is a later sweep job
    (["-m", "experiment=table1", "increc.alpha=learned"], "increc.alpha='learned'"),
    (["train.epochs=[1"], "cannot read the override 'train.epochs=[1'"),
])
def test_command_line_is_checked_before_any_job(args: list[str], needle: str, tmp_path: Path, monkeypatch,
                                               capsys) -> None:
    """The entry point in this process (a process per case cost 4 s each, mostly importing torch): exit status 2,
    one line, no job. The next test runs the real command once."""
    from bench.__main__ import entry

    monkeypatch.setattr(sys, "argv", ["bench", *args, f"hydra.run.dir={tmp_path}", f"hydra.sweep.dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_:
        entry()
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.strip().splitlines() == [f"error: {err.strip()[7:]}"]  # one line, no traceback
    assert needle in err, err
    assert not list(tmp_path.rglob("run.json")) and "stage" not in err  # no job started


def test_the_command_line_error_is_one_line_from_a_real_process(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bench", "-m", "train.epochs=1,abc", f"hydra.sweep.dir={tmp_path}"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == ["error: train.epochs='abc': expected an integer"]
    assert not list(tmp_path.rglob("run.json"))


# --------------------------------------------------------------------------- degenerate data


def _run(tmp_path: Path, logs: list[dict], n_videos: int = 8) -> dict:
    root = make_release(tmp_path / "data", logs={PURE["logs"][-1]: logs}, videos=[video_row(v) for v in range(n_videos)])
    cfg = compose_config("dataset=kuairand", f"dataset.root={root}", "dataset.ks=[1,2]", "dataset.existing_budget=2",
                         "model=youtube_dnn", "train.epochs=1", "train.early_stopping=false", "eval.seed_control=false", "train.progress=false")
    return run(cfg, tmp_path / "out").record


def _day(d: int, user: int, video: int, tab: int = 1, click: int = 1, hour: int = 0) -> dict:
    return log_row(user, video, T0 + d * DAY + hour * HOUR, click=click, tab=tab)


def test_no_primary_impression(tmp_path: Path) -> None:
    logs = [_day(d, u, v, tab=4) for d in range(3) for u in (1, 2) for v in (1, 2)]
    with pytest.raises(DataError, match=r"no impression in the primary scenario\(s\) \[1\]"):
        _run(tmp_path, logs)


def test_no_test_request(tmp_path: Path) -> None:
    logs = [_day(d, u, v) for d in range(2) for u in (1, 2) for v in (1, 2)] + [_day(2, 1, 3, tab=4)]
    with pytest.raises(DataError, match=r"no test request: .* on the last 1 day\(s\) \(scenarios seen there: \[4\]\)"):
        _run(tmp_path, logs)


def test_no_positive_at_all(tmp_path: Path) -> None:
    logs = [_day(d, u, v, click=0) for d in range(3) for u in (1, 2) for v in (1, 2)]
    with pytest.raises(DataError, match=r"no positive \(is_click = 1\)"):
        _run(tmp_path, logs)


def test_empty_itg_for_every_test_request(tmp_path: Path) -> None:
    # the test day's requests have no positive at or after T1: X_u, and so ITG, is empty for all of them
    logs = [_day(d, u, v + d, hour=h) for d in range(2) for u in (1, 2) for h, v in ((0, 1), (2, 3))]
    logs += [_day(2, u, 5, click=0) for u in (1, 2)]
    with pytest.raises(DataError, match=r"none of the 2 test requests has an incremental target"):
        _run(tmp_path, logs)


def test_scenario_without_positives_is_a_reported_zero(tmp_path: Path) -> None:
    logs = [_day(d, u, (u + d + h) % 4, hour=h) for d in range(3) for u in (1, 2, 3) for h in (0, 3)]
    logs += [_day(d, u, 4 + d, tab=2, hour=4) for d in range(3) for u in (1, 2, 3)]  # side-scenario clicks: ITG
    logs += [_day(d, u, 7, tab=4, click=0, hour=1) for d in range(3) for u in (1, 2, 3)]  # tab 4: never clicked
    rec = _run(tmp_path, logs)
    assert all(v is None or math.isfinite(v) for v in rec["metrics"].values())
    json.dumps(rec, allow_nan=False)  # nothing NaN anywhere in the record
    assert rec["sample_stats"]["itg_share_per_tab"]["4"] == {"targets": 0, "itg_share": None}
    assert rec["hits_by_tab"]["ITG"][4] == 0
