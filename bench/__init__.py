"""increc-bench: the harness. Its packages are the pipeline, each importing only those listed before it
(tests/unit/test_layout.py holds this):

errors, config (paths, resolvers, the config schema, tuned values) -> tracking (experiment logging) -> data (readers, the synthetic generator)
-> protocol (requests, splits, samples) -> engine (batches, training, levers, device) -> evaluation
(retrieval, metrics, comparisons) -> existing (the simulated existing system) -> pipeline (one run as stages,
cache, resume, record) -> report, tuning, perf (they read records and call the pipeline, never the reverse)
-> the entry points: `python -m bench` (__main__) and the Python API (bench.api).
models/ (towers, IncRec, losses) imports nothing of bench/."""

import os as _os

# Deterministic cuBLAS on CUDA (torch's reproducibility notes): read when cuBLAS initialises, so it is set here, on
# the package's import, before anything can touch CUDA; a value the user set is kept.
_os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
