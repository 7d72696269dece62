"""Experiment logging (issue 43): the `logger` config group sends each epoch's losses, validation value and
seconds, per model of a run, and the run's final metrics to CSV files, TensorBoard or MLflow.

A tracker only writes: nothing of a run reads it back, so it changes no result (its module sits outside the
code digest, like the report). bench.pipeline.run makes one per run with `make_tracker`.
"""

from bench.tracking.trackers import CsvTracker, MlflowTracker, TensorBoardTracker, Tracker, make_tracker

__all__ = ["Tracker", "CsvTracker", "TensorBoardTracker", "MlflowTracker", "make_tracker"]
