"""bench.existing.warm reaches every numba kernel of the existing channels (so `make setup` leaves none cold)."""

from __future__ import annotations

from numba.core.registry import CPUDispatcher

from bench.existing import kernels, swing
from bench.existing.warm import warm_kernels

# the kernels Python calls, and those called only from inside them (compiled with their callers)
CALLED = {"occurrences_by_item", "windowed_neighbours", "csr_top_k_mask", "swing_neighbours"}
INNER = {"_top_k_by_column", "_grow", "append_top_k"}


def test_the_warm_up_compiles_or_loads_every_kernel() -> None:
    assert warm_kernels() >= 0.0
    dispatchers = {n: f for m in (kernels, swing) for n, f in vars(m).items() if isinstance(f, CPUDispatcher)}
    assert set(dispatchers) == CALLED | INNER  # a new kernel belongs in the warm-up, and in one of these sets
    assert all(dispatchers[n].signatures for n in CALLED)
