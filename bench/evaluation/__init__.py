"""Evaluation: full-pool retrieval (faiss), the metrics and comparisons of PROTOCOL 5 declared once, the
validation selection metric, the collapse check and RecBole's leave-one-out evaluator.

Imports: bench.errors, bench.config, bench.data, bench.protocol, bench.engine, models."""
