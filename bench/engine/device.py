"""The device and the determinism of a job: which torch device it trains on, deterministic kernels, threads and
seeds (PROTOCOL: the same config and seed give the same metrics on the same kind of CPU)."""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig

from bench.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def deterministic_torch(fill_uninitialized_memory: bool = False) -> None:
    """Deterministic kernels (same config and seed, same metrics on CPU).

    Deterministic mode also fills every new tensor with NaN before an op overwrites it, a guard
    against reading uninitialised memory that no op here relies on; it cost about 9% of a SASRec
    training step (py-spy, Pure-sized preset), so it is off. Metrics are the same either way
    (tests/e2e/test_end_to_end.py).
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = fill_uninitialized_memory


def start_job(cfg: DictConfig) -> tuple[int, torch.device]:
    """Threads, seeds and deterministic kernels for one job (a run or a tuning trial); its seed and device."""
    if cfg.train.threads is not None:
        torch.set_num_threads(int(cfg.train.threads))
    seed = int(cfg.seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    deterministic_torch()
    return seed, resolve_device(str(cfg.train.device))


