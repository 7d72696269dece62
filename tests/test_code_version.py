"""bench.record.code_version: a sweep rewriting committed records under results/ does not mark the code dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import bench.record as record


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
        (tmp_path / "bench" / "a.py").write_text("x = 2\n")  # the code itself changed
        assert record.code_version()["dirty"] is True
    finally:
        record.code_digest.cache_clear()
