"""Equal-budget hyper-parameter search on validation data (experiment=tune). Above the pipeline: it may import
every layer below (bench/__init__.py lists them).

- `trial`: one trial, the standalone base to early stopping; its objective, validation only.
- `confirm`: the best trials rerun at two more seeds before a value set is written; `python -m
  bench.tuning.confirm` for a tuned file written before that check.
- `outputs`: the tuned file, the report and its plot, written when a search ends.
- `default_vs_tuned`: `python -m bench.tuning.default_vs_tuned`, a backbone's default against its tuned values.
Applying a tuned file to a run (`tuned=true|auto`) is bench.config.tuned. The sweeper itself is a Hydra plugin:
hydra_plugins/increc_tuning/tuning_sweeper.py.
"""
