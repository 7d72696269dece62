"""The protocol's own objects (PROTOCOL sections 1-2): homepage requests with their histories, targets and
exposures, the time split, the RTG / ITG / ETG sample groups, and the ragged arrays they are held in.

Imports: bench.errors, bench.config, bench.data, models (nothing of the engine, evaluation, the existing
system or the pipeline above it)."""
