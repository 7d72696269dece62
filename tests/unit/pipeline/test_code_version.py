"""bench.pipeline.record.code_version: only bench/ and models/ make a record dirty; a sweep rewriting results/ or a README edit does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import bench.pipeline.record as record


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


def test_results_edits_do_not_make_the_tree_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "bench" / "a.py").write_text("x = 1\n")
    (tmp_path / "results" / "run.json").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    monkeypatch.setattr(record, "PROJECT_ROOT", tmp_path)
    record.code_digest.cache_clear()
    try:
        assert record.code_version()["dirty"] is False
        (tmp_path / "results" / "run.json").write_text('{"metrics": {}}\n')  # a sweep rewrote a record
        assert record.code_version()["dirty"] is False
        (tmp_path / "README.md").write_text("# docs\n")  # a docs edit is not a code change
        assert record.code_version()["dirty"] is False
        (tmp_path / "bench" / "new.py").write_text("y = 1\n")  # a new module counts, though untracked
        assert record.code_version() | {"code_digest": None} == {
            "git_commit": record.code_version()["git_commit"], "dirty": True, "dirty_paths": ["bench/new.py"],
            "code_digest": None}
        (tmp_path / "bench" / "a.py").write_text("x = 2\n")  # the code itself changed
        assert record.code_version()["dirty_paths"] == ["bench/a.py", "bench/new.py"]
    finally:
        record.code_digest.cache_clear()


def test_the_digest_covers_the_code_that_makes_results_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing the report (or perf, or tuning's front end) keeps the code digest, so the stage cache and finished
    records stay valid; editing the pipeline or a model changes it."""
    for rel in ("bench/engine/train.py", "bench/report/tables.py", "bench/perf/timing.py", "bench/tuning/trial.py",
                "models/increc.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    monkeypatch.setattr(record, "PROJECT_ROOT", tmp_path)

    def digest() -> str:
        record.code_digest.cache_clear()
        return record.code_digest()

    try:
        first = digest()
        for rel in ("bench/report/tables.py", "bench/perf/timing.py", "bench/tuning/trial.py"):
            (tmp_path / rel).write_text("x = 2\n")
            assert digest() == first, rel
        (tmp_path / "bench" / "report" / "new.py").write_text("y = 1\n")
        assert digest() == first
        for rel in ("bench/engine/train.py", "models/increc.py"):
            (tmp_path / rel).write_text("x = 3\n")
            assert digest() != first, rel
            first = digest()
        engine = tmp_path / "bench" / "engine" / "train.py"
        engine.write_text('"""A module."""\n\n\ndef f(a):\n    """Adds one."""\n    return a + 1  # eq. 1\n')
        first = digest()
        engine.write_text('"""The module, documented anew."""\n\ndef f(a):\n    """Adds one (eq. 1)."""\n\n    return (a +\n            1)\n')
        assert digest() == first  # docstrings, comments and layout: the same code
        engine.write_text('"""The module."""\n\ndef f(a):\n    """Adds one."""\n    return a + 2\n')
        assert digest() != first  # a statement changed
        engine.write_text('"""The module."""\n\ndef f(a):\n    """Adds one."""\n    return "a + 1"\n')
        assert digest() != first  # a string that is not a docstring is code
    finally:
        record.code_digest.cache_clear()
