"""Shared fixtures: the real KuaiRand sample (skip when absent, fail under CI=true) and config composition; and the
suite's scheduling: slow tests first, old runs' temporary folders deleted while the tests run."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from omegaconf import DictConfig

from bench.config import PROJECT_ROOT, compose

SAMPLE_DIR = PROJECT_ROOT.parent / "shared" / "data" / "kuairand-pure-sample"

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per test worker (and per process it starts): no oversubscription
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def real_sample() -> Path:
    """The real sample folder; a missing sample skips locally and fails under CI=true."""
    if not SAMPLE_DIR.is_dir():
        message = f"real KuaiRand sample not found at {SAMPLE_DIR}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (required under CI=true)")
        pytest.skip(message)
    return SAMPLE_DIR


def compose_config(*overrides: str) -> DictConfig:
    """The app's config as `python -m bench OVERRIDES` would compose it (bench.config.compose, without the Hydra
    runtime). The stage cache is off unless an override sets a cache key, so every test computes what it checks."""
    extra = [] if any(o.startswith("cache.") for o in overrides) else ["cache.enabled=false"]
    return compose(*overrides, *extra)


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for generated synthetic datasets, shared by the whole session."""
    return tmp_path_factory.mktemp("synthetic-cache")


@pytest.fixture(scope="session")
def shared_stage_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage cache shared by tests whose runs read the same data: they prepare it (requests, existing system) once
    and still train every model they check (a base is keyed by its whole config, and theirs differ)."""
    return tmp_path_factory.mktemp("stage-cache")


@pytest.hookimpl(trylast=True)  # after -k / -m / --deselect have filtered the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` (5-40 s each) run first, shared out among the test workers, so that the run ends on
    short tests. A worker that takes a slow test last keeps the run going that long after the others have finished
    (15-21 s measured). pytest-xdist's `worksteal` gives each worker one contiguous slice of this order at the start
    (the first len // n items, then the rest split the same way) and later moves tests only from a slice's end: each
    slice here opens with its share of the slow tests, in their collection order."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):
        size = left // (workers - worker)  # this worker's slice, as worksteal cuts it
        share = slow[worker::workers]
        take = max(0, size - len(share))
        ordered += share + fast[:take]
        fast = fast[take:]
        left -= size
    items[:] = ordered + fast


_OLD_RUNS_DELETION: list[threading.Thread] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Delete, in a background thread while the tests run, the earlier runs' folders that pytest itself deletes at the
    end (those beyond `tmp_path_retention_count`). Deleting a whole suite's 3,700 files took 12-15 s at the end of a
    run on a disk mounted with `discard`; run alongside the tests, that wait costs the run nothing.
    The controller alone does it (not the xdist workers); never with `--basetemp` or `--collect-only`, and any
    surprise (pytest's tmp_path internals changed, a folder renamed by another run) just skips it."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.basetemp or config.option.collectonly:
        return
    try:
        keep = int(config.getini("tmp_path_retention_count"))
        if config.getini("tmp_path_retention_policy") == "none":
            keep = 0
        basetemp = config._tmp_path_factory.getbasetemp()  # /tmp/pytest-of-USER/pytest-N (xdist reads it so too)
        old = old_runs(basetemp, keep)
    except Exception:  # noqa: BLE001 - an optimisation: pytest's own cleanup still runs at the end
        return
    if old:
        thread = threading.Thread(target=_delete, args=(old,), name="old-pytest-runs", daemon=True)
        thread.start()
        _OLD_RUNS_DELETION.append(thread)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Wait for the background deletion before pytest's own cleanup looks at the same folders."""
    while _OLD_RUNS_DELETION:
        _OLD_RUNS_DELETION.pop().join()


def old_runs(basetemp: Path, keep: int) -> list[Path]:
    """The `pytest-N` folders beside this run's that pytest deletes at its end: N <= this run's N - keep, and no
    `.lock` file left in it (a run still going, or one that crashed: pytest decides those itself)."""
    number = _run_number(basetemp)
    if number is None or keep <= 0:
        return []
    return sorted(p for p in basetemp.parent.iterdir()
                  if (n := _run_number(p)) is not None and n <= number - keep and not (p / ".lock").exists())


def _run_number(path: Path) -> int | None:
    """N of a `pytest-N` folder, else None."""
    prefix, _, number = path.name.partition("-")
    return int(number) if prefix == "pytest" and number.isdigit() and path.is_dir() else None


def _delete(folders: list[Path]) -> None:
    """Rename each folder out of pytest's numbering first (pytest does the same), then remove it."""
    for folder in folders:
        garbage = folder.with_name(f"garbage-{uuid.uuid4()}")
        try:
            folder.rename(garbage)
        except OSError:
            continue  # gone already, or another run holds it
        shutil.rmtree(garbage, ignore_errors=True)
