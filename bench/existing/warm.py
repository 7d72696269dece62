"""The existing channels' numba kernels compiled (or loaded from numba's cache) once, before a run needs them.

numba compiles `bench/existing/kernels.py` and `swing.py` at their first call and keeps the machine code beside
the sources (`cache=True`): about 28 s of one core on a 2-core AMD EPYC (measured 2026-12-07), then about 1 s
to load. Processes that start together on a cold cache each compile, as a fresh clone's test workers and the
jobs of a first sweep do; `make setup` runs `python -m bench.existing.warm` once instead.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from omegaconf import OmegaConf

from bench.config import CONF_DIR
from bench.existing.channel import FitData, build_channels
from bench.protocol.ragged import Ragged


def warm_kernels() -> float:
    """Fit every channel of conf/existing/multi.yaml (item-CF, Swing, popularity) on four positives and retrieve
    for two histories, with the pipeline's dtypes; the seconds it took."""
    start = time.perf_counter()
    n_items = 4
    user = np.array([0, 0, 1, 1], dtype=np.int32)  # [P] sorted by (user, time), as bench.existing.fit gives them
    item = np.array([0, 1, 1, 2], dtype=np.int32)  # [P]
    time_ms = np.array([0, 1, 2, 3], dtype=np.int64)  # [P]
    history = Ragged(np.array([0, 2, 3], dtype=np.int64), np.array([0, 1, 2], dtype=np.int32))  # [2] rows
    for c in build_channels(OmegaConf.load(CONF_DIR / "existing" / "multi.yaml"), n_items):
        c.channel.fit(FitData(user, item, time_ms, 4), n_items).retrieve(history, 2)
    return time.perf_counter() - start


if __name__ == "__main__":
    print("numba: compiling the existing system's kernels, or loading them (once per environment, under a minute)",
          file=sys.stderr, flush=True)
    print(f"numba kernels ready in {warm_kernels():.1f} s", file=sys.stderr)
