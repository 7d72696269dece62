"""bench.api (issue 43): a record and its DataFrame row, its errors, and docs/api.md's worked example executed block
by block (the API's metrics against the command line's: tests/e2e/test_end_to_end.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.config import PROJECT_ROOT

TINY = ["dataset.preset=tiny", "model=youtube_dnn", "increc=off", "train.epochs=1", "train.early_stopping=false",
        "eval.seed_control=false", "train.max_batches=2", "train.progress=false", "train.threads=1"]


def test_a_record_its_arrays_and_its_row(tmp_path: Path, synthetic_cache: Path) -> None:
    """What api.run returns and load_records reads (tests/e2e/test_end_to_end.py checks the API's metrics against a
    command-line sweep's, for every backbone)."""
    from bench import api

    given = [*TINY, f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp_path / 'cache'}"]
    rec = api.run(given, out_dir=tmp_path / "api")
    assert not rec.resumed and rec.path == tmp_path / "api" / "run.json"
    assert rec.data == json.loads(rec.path.read_text()) and rec.data["overrides"] == given
    assert rec.table().splitlines()[0].startswith("dataset=synthetic")
    assert set(rec.per_request) >= {"Base@10/hits", "Base@10/size"}

    df = api.load_records(tmp_path)
    assert list(df["path"]) == [str(rec.path)] and df["seed"].tolist() == [0]
    assert df["config.model.name"].tolist() == ["youtube_dnn"] and df["config.train.max_batches"].tolist() == [2]
    assert df["metrics.Base@10"].tolist() == [rec.metrics["Base@10"]]
    assert df["cpu_vendor"].tolist() == [rec.data["machine"]["cpu_vendor"]]
    with pytest.raises(FileNotFoundError, match="no run.json below"):
        api.load_records(tmp_path / "cache")


def test_a_bad_override_raises_the_command_line_s_one_line_error() -> None:
    from bench import api
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train.epoch") as err:
        api.run(["train.epoch=3"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="experiment=tune is a search"):
        api.run(["experiment=tune", "model=youtube_dnn"])


def test_the_worked_example_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synthetic_cache: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    """docs/api.md's code blocks, executed in order in one namespace (the page's own paths are relative: the
    example writes under a temporary folder; the committed records it reads are linked in)."""
    page = (PROJECT_ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) >= 5
    (tmp_path / "results" / "kuairand_sample" / "runs").mkdir(parents=True)
    committed = PROJECT_ROOT / "results" / "kuairand_sample" / "runs" / "table1"
    if committed.is_dir():
        (tmp_path / "results" / "kuairand_sample" / "runs" / "table1").symlink_to(committed)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(PROJECT_ROOT / "docs" / "api.md"), "exec"), namespace)
    shown = capsys.readouterr().out
    assert "IncR@K" in shown and "metrics.SupR@10" in shown and "train.epoch" in shown
    assert namespace["again"].resumed
    if committed.is_dir():
        assert "youtube_dnn" in shown  # the committed bases, grouped by backbone
