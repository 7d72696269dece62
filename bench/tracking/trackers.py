"""The trackers behind `logger=none|csv|tensorboard|mlflow` (bench.config.schema.Logger).

Every tracker gets the same calls from a run: `start(name, params)` once, `epoch(model, epoch, values)` after
each training epoch of each model (`model`: base, seed_base, seed2_base or variant; `values`: loss/<part>,
epoch_seconds, and valid and valid_seconds when the epoch was validated), `final(metrics)` once, `close()`.
TensorBoard and MLflow are optional extras (`pip install -e '.[logging]'`), imported only when chosen.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

EXTRA = "pip install -e '.[logging]'"


class Tracker:
    """logger=none: every call does nothing."""

    def start(self, name: str, params: dict[str, Any]) -> None:
        pass

    def epoch(self, model: str, epoch: int, values: dict[str, float]) -> None:
        pass

    def final(self, metrics: dict[str, float | None]) -> None:
        pass

    def close(self) -> None:
        pass


def _finite(values: dict[str, float | None]) -> dict[str, float]:
    """The values a scalar log can hold (a metric a run could not compute is None)."""
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


class CsvTracker(Tracker):
    """logger=csv: <dir>/epochs.csv (model, epoch, name, value) and <dir>/metrics.csv (name, value), one value a
    row, appended as they come (a run stopped midway leaves the epochs it finished)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._epochs = open(self.folder / "epochs.csv", "w", newline="")
        self._writer = csv.writer(self._epochs)
        self._writer.writerow(["model", "epoch", "name", "value"])

    def epoch(self, model: str, epoch: int, values: dict[str, float]) -> None:
        for name, value in _finite(values).items():
            self._writer.writerow([model, epoch, name, repr(value)])
        self._epochs.flush()

    def final(self, metrics: dict[str, float | None]) -> None:
        with open(self.folder / "metrics.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["name", "value"])
            writer.writerows([name, repr(value)] for name, value in _finite(metrics).items())

    def close(self) -> None:
        self._epochs.close()


class TensorBoardTracker(Tracker):
    """logger=tensorboard: scalars <model>/<name> at step = epoch, final/<metric> at step 0, the config as text."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(f"logger=tensorboard needs the tensorboard package: {EXTRA}") from None
        self._writer = SummaryWriter(log_dir=str(folder))

    def start(self, name: str, params: dict[str, Any]) -> None:
        self._writer.add_text("run", name)
        self._writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def epoch(self, model: str, epoch: int, values: dict[str, float]) -> None:
        for name, value in _finite(values).items():
            self._writer.add_scalar(f"{model}/{name}", value, global_step=epoch)
        self._writer.flush()

    def final(self, metrics: dict[str, float | None]) -> None:
        for name, value in _finite(metrics).items():
            self._writer.add_scalar(f"final/{name}", value, global_step=0)

    def close(self) -> None:
        self._writer.close()


class MlflowTracker(Tracker):
    """logger=mlflow: one MLflow run per job in `tracking_uri` (a local store): the config's leaves as params,
    <model>/<name> metrics at step = epoch, final/<metric> at step 0 ('@' written '_at_', which MLflow's names
    cannot hold), the run's folder as a tag."""

    def __init__(self, tracking_uri: str, experiment: str, run_dir: Path) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(f"logger=mlflow needs the mlflow-skinny package: {EXTRA}") from None
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._client = MlflowClient(tracking_uri=tracking_uri)
        found = self._client.get_experiment_by_name(experiment)
        self._experiment = found.experiment_id if found else self._client.create_experiment(experiment)
        self._run_dir = str(run_dir)
        self._run_id: str | None = None

    def start(self, name: str, params: dict[str, Any]) -> None:
        run = self._client.create_run(self._experiment, run_name=name, tags={"run_dir": self._run_dir})
        self._run_id = run.info.run_id
        from mlflow.entities import Param

        # MLflow caps a param's value at 6000 characters; a config leaf is far shorter
        self._client.log_batch(self._run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._client.log_batch(self._run_id, metrics=[Metric(mlflow_name(k), v, stamp, step)
                                                       for k, v in _finite(values).items()])

    def epoch(self, model: str, epoch: int, values: dict[str, float]) -> None:
        self._log({f"{model}/{name}": value for name, value in values.items()}, step=epoch)

    def final(self, metrics: dict[str, float | None]) -> None:
        self._log({f"final/{name}": value for name, value in metrics.items()}, step=0)

    def close(self) -> None:
        if self._run_id is not None:
            self._client.set_terminated(self._run_id)


def mlflow_name(name: str) -> str:
    """A metric name MLflow accepts (no '@'): final/Base@50 -> final/Base_at_50."""
    return name.replace("@", "_at_")


def config_leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """A plain nested mapping's leaves as dotted keys (model.dim, train.lr, ...): the params a tracker records."""
    if isinstance(node, dict):
        return {k: v for key, sub in node.items() for k, v in config_leaves(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def make_tracker(logger: Any, run_dir: Path) -> Tracker:
    """The tracker `logger` (bench.config.schema.Logger) names, writing beside a run whose folder is `run_dir`."""
    folder = Path(logger.dir) if logger.dir else Path(run_dir) / "logs"
    if logger.name == "csv":
        return CsvTracker(folder)
    if logger.name == "tensorboard":
        return TensorBoardTracker(folder)
    if logger.name == "mlflow":
        return MlflowTracker(str(logger.tracking_uri), str(logger.experiment), run_dir)
    return Tracker()
