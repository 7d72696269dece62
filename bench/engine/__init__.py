"""The training engine: batches cut from the samples, the training loop with early stopping, the speed levers,
models built from the config, and the device, determinism and machine facts of a job (PROTOCOL 3-4).

Imports: bench.errors, bench.config, bench.data, bench.protocol, models."""
