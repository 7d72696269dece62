"""One run as stages: the config checked, the model-independent stages prepared and cached, the base and the
variant trained or read from the stage cache, the test requests scored once, the record written; resuming a
sweep, the command-line precheck, and the comparison of existing systems.

Imports: everything below it (bench.errors, bench.config, bench.data, bench.protocol, bench.engine,
bench.evaluation, bench.existing) and models."""
