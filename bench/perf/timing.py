"""Wall-clock timing for the benchmark figures, synchronised with the device that does the work.

CUDA kernels run asynchronously: a clock read right after launching them measures the launch, not the
work. `now(device)` waits for the device's queued work (torch.cuda.synchronize) before reading the
clock, so a region timed as `now(device)` ... `now(device)` holds all of its device work; on the CPU
it is a plain time.perf_counter().
"""

from __future__ import annotations

import time
from typing import Callable

import torch

Device = torch.device | str | None  # None: the CPU


def synchronize(device: Device) -> None:
    """Wait for the work queued on `device` (CUDA); nothing on the CPU."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def now(device: Device = None) -> float:
    """time.perf_counter() once `device` has finished its queued work."""
    synchronize(device)
    return time.perf_counter()


def best_seconds(fn: Callable[[], object], repeats: int, device: Device = None) -> float:
    """The fastest of `repeats` calls of fn, in seconds (the least disturbed by the rest of the machine),
    each timed to the end of its work on `device`."""
    best = float("inf")
    for _ in range(repeats):
        start = now(device)
        fn()
        best = min(best, now(device) - start)
    return best
