"""The simulated existing retrieval system (PROTOCOL 2): one module per channel (item-CF, Swing, popularity,
a trained two-tower), the rolling or fixed fit, the multi-channel union and each channel's budget.

Imports: bench.errors, bench.config, bench.data, bench.protocol, and, for the trained two-tower channel,
bench.engine and bench.evaluation; models."""
