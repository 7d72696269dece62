"""The device and the determinism of a job: which torch device it trains on, deterministic kernels, threads and
seeds (PROTOCOL: the same config and seed give the same metrics on the same kind of CPU)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from bench.errors import ConfigError

log = logging.getLogger(__name__)

# how to get a CUDA build (README, "On a GPU"): PyPI's Linux x86_64 wheel of torch is one; pytorch.org lists others
CUDA_INSTALL = "on Linux x86_64, .venv/bin/pip install --force-reinstall torch==2.13.0 from PyPI; README, On a GPU"
_announced: set[str] = set()  # `auto` choices already logged by this process


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible to this machine's driver, whatever torch was built with (Linux)."""
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())


def resolve_device(name: str) -> torch.device:
    """The torch device `train.device=name` trains on: auto is cuda when torch sees a GPU, else cpu (logged
    once per process, with a warning when a GPU is present but this torch build has no CUDA); cuda or cuda:N
    on a build without CUDA, or with no GPU visible, is one ConfigError saying which and what to do."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if name not in _announced:
            _announced.add(name)
            log.info("train.device=auto chose %s", describe_device(device))
            if device.type == "cpu" and torch.version.cuda is None and gpu_present():  # an NVIDIA GPU, a CPU build
                log.warning("a GPU is present but torch %s has no CUDA, so training runs on the CPU; "
                            "install a CUDA build of torch (%s)", torch.__version__, CUDA_INSTALL)
        return device
    if name.startswith("cuda"):
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:  # ROCm builds serve "cuda" too
            raise ConfigError(f"train.device={name!r} but torch {torch.__version__} was built without CUDA: install a "
                              f"CUDA build ({CUDA_INSTALL}) or use train.device=cpu")
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} but torch (CUDA {torch.version.cuda}) sees no GPU: check "
                              f"nvidia-smi and CUDA_VISIBLE_DEVICES, or use train.device=auto or cpu")
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(f"train.device={name!r} but only {torch.cuda.device_count()} GPU(s) are visible "
                              f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """e.g. 'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu'."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def deterministic_torch(fill_uninitialized_memory: bool = False) -> None:
    """Deterministic kernels (same config and seed, same metrics on CPU).

    Deterministic mode also fills every new tensor with NaN before an op overwrites it, a guard
    against reading uninitialised memory that no op here relies on; it cost about 9% of a SASRec
    training step (py-spy, Pure-sized preset), so it is off. Metrics are the same either way
    (tests/e2e/test_end_to_end.py).
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = fill_uninitialized_memory
    torch.backends.cudnn.benchmark = False  # no per-shape autotuning on CUDA: the same kernels every run
    if not os.environ.get("CUBLAS_WORKSPACE_CONFIG") and torch.cuda.is_available():
        log.warning("CUBLAS_WORKSPACE_CONFIG is not set: cuBLAS may choose nondeterministic reductions (bench sets "
                    "it on import; set it before anything initialises CUDA)")


def start_job(cfg: DictConfig) -> tuple[int, torch.device]:
    """Threads, seeds and deterministic kernels for one job (a run or a tuning trial); its seed and device."""
    if cfg.train.threads is not None:
        torch.set_num_threads(int(cfg.train.threads))
    seed = int(cfg.seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    deterministic_torch()
    return seed, resolve_device(str(cfg.train.device))


