"""Equal-budget hyper-parameter search on validation data (experiment=tune).

- `trial`: one trial, the standalone base to early stopping; its objective, validation only.
- `tuned`: the tuned values file, and `tuned=true|auto` applying it to a run.
- `outputs`: the tuned file, the report and its plot, written when a search ends.
The sweeper itself is a Hydra plugin: hydra_plugins/increc_tuning/tuning_sweeper.py.
"""
