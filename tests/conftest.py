"""Shared fixtures: the real KuaiRand sample (skip when absent, fail under CI=true) and config composition."""

from __future__ import annotations

import os
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
