"""The suite's own scheduling (tests/conftest.py): slow tests shared out at the start of each worker's slice, and the
earlier runs' folders that pytest deletes picked out for deletion in the background."""

from __future__ import annotations

import types
from pathlib import Path

from tests.conftest import _delete, old_runs, pytest_collection_modifyitems


class _Item:
    def __init__(self, name: str, slow: bool) -> None:
        self.name, self.slow = name, slow

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "slow" and self.slow else None

    def __repr__(self) -> str:
        return self.name


def _order(items: list[_Item], workers: int | None) -> list[str]:
    config = types.SimpleNamespace(workerinput={"workercount": workers}) if workers else types.SimpleNamespace()
    pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    return [i.name for i in items]


def test_each_worker_slice_opens_with_its_share_of_slow_tests() -> None:
    items = ([_Item(f"f{i}", False) for i in range(10)] + [_Item(f"s{i}", True) for i in range(5)]
             + [_Item(f"f{i}", False) for i in range(10, 20)])
    got = _order(list(items), 2)
    assert sorted(got) == sorted(i.name for i in items)  # every test once
    first, second = got[:25 // 2], got[25 // 2:]  # worksteal's slices: 12, then 13
    assert first[:3] == ["s0", "s2", "s4"] and second[:2] == ["s1", "s3"]
    assert [n for n in got if n.startswith("f")] == [f"f{i}" for i in range(20)]  # the others keep their order


def test_without_workers_slow_tests_come_first_and_few_tests_lose_none() -> None:
    assert _order([_Item("a", False), _Item("b", True), _Item("c", False), _Item("d", True)], None) == ["b", "d", "a", "c"]
    assert sorted(_order([_Item("a", True), _Item("b", True), _Item("c", True)], 4)) == ["a", "b", "c"]


def test_old_runs_are_those_pytest_deletes_and_never_a_locked_one(tmp_path: Path) -> None:
    for n in (3, 4, 5, 6, 7, 8):
        (tmp_path / f"pytest-{n}").mkdir()
    (tmp_path / "pytest-current").mkdir()
    (tmp_path / "pytest-4" / ".lock").touch()  # a run still going (or crashed): pytest's own rule decides
    assert [p.name for p in old_runs(tmp_path / "pytest-8", keep=3)] == ["pytest-3", "pytest-5"]
    assert old_runs(tmp_path / "pytest-8", keep=0) == []
    (tmp_path / "pytest-3" / "sub").mkdir()
    (tmp_path / "pytest-3" / "sub" / "f.txt").write_text("x")
    _delete(old_runs(tmp_path / "pytest-8", keep=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pytest-4", "pytest-6", "pytest-7", "pytest-8",
                                                          "pytest-current"]
