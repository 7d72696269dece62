"""The `logger` group (issue 43): each epoch's losses, validation value and seconds per model, and the final metrics,
read back with each library's own reader (pandas for CSV, TensorBoard's EventAccumulator, MLflow's client)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from bench.pipeline.run import run
from tests.conftest import compose_config

SHORT = ("dataset.preset=tiny", "model=youtube_dnn", "increc=na", "train.max_epochs=2", "train.patience=1",
         "train.max_batches=3", "train.progress=false", "eval.seed_control=false")


def _needs(module: str) -> None:
    if os.environ.get("CI") != "true":  # CI installs the test extra, which holds the logging extra
        pytest.importorskip(module, reason="the logging extra is not installed")


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, synthetic_cache) -> tuple[Path, dict, pd.DataFrame]:
    """One run logged to CSV (its base trained and cached), and its epochs as a frame."""
    tmp = tmp_path_factory.mktemp("logging")
    rec = run(compose_config(*SHORT, f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp / 'cache'}",
                             "logger=csv"), tmp / "csv").record
    return tmp, rec, pd.read_csv(tmp / "csv" / "logs" / "epochs.csv")


def _expected(rec: dict) -> dict[tuple[str, int, str], float]:
    """(model, epoch, name) -> value, from the run record's training histories."""
    out = {}
    for model, history in rec["training"].items():
        for i, losses in enumerate(history["loss"]):
            out |= {(model, i + 1, f"loss/{k}"): v for k, v in losses.items()}
            out[(model, i + 1, "epoch_seconds")] = history["epoch_seconds"][i]
            out[(model, i + 1, "valid_seconds")] = history["valid_seconds"][i]
            if history["valid_curve"][i] is not None:
                out[(model, i + 1, "valid")] = history["valid_curve"][i]
    return out


def test_csv_holds_every_model_s_epochs_and_the_final_metrics(csv_run) -> None:
    tmp, rec, epochs = csv_run
    logged = {(m, int(e), n): v for m, e, n, v in epochs.itertuples(index=False)}
    assert logged == _expected(rec)  # every value the record keeps, nothing else
    assert set(epochs["model"]) == {"base", "variant"} and {"loss/incremental", "valid"} <= set(epochs["name"])
    final = pd.read_csv(tmp / "csv" / "logs" / "metrics.csv")
    finite = {k: v for k, v in rec["metrics"].items() if v is not None and math.isfinite(v)}
    assert dict(zip(final["name"], final["value"])) == finite


def test_a_cached_base_logs_the_epochs_it_was_trained_with(csv_run, synthetic_cache) -> None:
    tmp, rec, epochs = csv_run
    again = run(compose_config(*SHORT, "increc=off", f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp / 'cache'}",
                               "logger=csv", "resume=false"), tmp / "cached").record
    assert again["cache"]["base"] == "hit"
    replayed = pd.read_csv(tmp / "cached" / "logs" / "epochs.csv")
    pd.testing.assert_frame_equal(replayed, epochs[epochs["model"] == "base"].reset_index(drop=True))


def test_tensorboard_scalars_read_back(csv_run, synthetic_cache) -> None:
    """The base from the CSV run's cache (the variant's epochs go through the same calls: the CSV test reads them)."""
    _needs("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp, rec, _ = csv_run
    done = run(compose_config(*SHORT, "increc=off", f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp / 'cache'}",
                              "logger=tensorboard", f"logger.dir={tmp / 'tb'}"), tmp / "tensorboard").record
    events = EventAccumulator(str(tmp / "tb")).Reload()
    scalars = {(tag.split("/", 1)[0], e.step, tag.split("/", 1)[1]): e.value
               for tag in events.Tags()["scalars"] if not tag.startswith("final/") for e in events.Scalars(tag)}
    expected = _expected(done)
    assert scalars.keys() == expected.keys()
    assert all(scalars[k] == pytest.approx(v, rel=1e-6) for k, v in expected.items())  # stored as float32
    assert events.Scalars("final/Base@10")[0].value == pytest.approx(done["metrics"]["Base@10"], rel=1e-6)


def test_mlflow_run_reads_back_from_its_local_store(csv_run, synthetic_cache) -> None:
    _needs("mlflow")
    from mlflow.tracking import MlflowClient

    tmp, rec, _ = csv_run
    uri = f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}"
    done = run(compose_config(*SHORT, "increc=off", f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp / 'cache'}",
                              "logger=mlflow", f"logger.tracking_uri={uri}", "logger.experiment=test"),
               tmp / "mlflow_run").record
    client = MlflowClient(tracking_uri=uri)
    [found] = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert found.info.status == "FINISHED" and found.data.tags["run_dir"] == str(tmp / "mlflow_run")
    assert found.data.params["model.name"] == "youtube_dnn" and found.data.params["train.max_epochs"] == "2"
    for (model, epoch, name), value in _expected(done).items():
        history = {m.step: m.value for m in client.get_metric_history(found.info.run_id, f"{model}/{name}")}
        assert history[epoch] == pytest.approx(value), (model, epoch, name)
    assert found.data.metrics["final/Base_at_10"] == pytest.approx(done["metrics"]["Base@10"])


def test_a_missing_logging_package_is_one_clear_error(monkeypatch, tmp_path) -> None:
    import sys

    from bench.errors import ConfigError
    from bench.tracking import make_tracker

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    cfg = compose_config("logger=mlflow")
    with pytest.raises(ConfigError, match=r"logger=mlflow needs the mlflow-skinny package: pip install -e '\.\[logging\]'"):
        make_tracker(cfg.logger, tmp_path)
