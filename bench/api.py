"""The Python API, for notebooks and scripts (issue 43): one experiment from overrides, and run records as a table.

    from bench import api
    rec = api.run(["model=sasrec", "increc=on", "dataset.preset=tiny"])
    print(rec.table())                       # the console summary `python -m bench` prints
    df = api.load_records("outputs/runs")    # one row per run.json found below the folder

`run` composes the config with Hydra's compose API (bench.config.compose), applies tuned values as the
command line does (bench.config.tuned), and calls the same pipeline (bench.pipeline.run), so the same
overrides and seed give the same record as `python -m bench OVERRIDES`. A sweep stays a command-line
job (`python -m bench -m ...`); from Python, loop over `run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench.config import compose
from bench.errors import ConfigError

RECORD_FILE = "run.json"
PER_REQUEST_FILE = "per_request.npz"


@dataclass(frozen=True)
class Record:
    """A finished run: its record (run.json, as a mapping) and where it lies."""

    path: Path  # the run.json
    data: dict
    resumed: bool = False  # True when a finished record of the same config and code was kept instead of rerun

    @property
    def metrics(self) -> dict[str, float | None]:
        return self.data["metrics"]

    @property
    def config(self) -> dict:
        return self.data["config"]

    def table(self) -> str:
        """The console summary `python -m bench` prints (bench.evaluation.evaluate.format_table)."""
        from bench.evaluation.evaluate import format_table

        return format_table(self.data)

    @cached_property
    def per_request(self) -> dict[str, np.ndarray]:
        """The per-request arrays saved beside the record (PROTOCOL 5: what the report's paired statistics read)."""
        with np.load(self.path.with_name(PER_REQUEST_FILE)) as npz:
            return {k: npz[k] for k in npz.files}


def _job_config(overrides: list[str]) -> tuple[DictConfig, Path]:
    """The job's config (Hydra's section left out) and the folder `python -m bench` would write it to. A typo, an
    unknown option or a value of the wrong type is a one-line ConfigError here; bench.pipeline.run validates the
    rest, as for a command-line job (the command line's precheck composes once more per swept value: a sweep's)."""
    from hydra.core.hydra_config import HydraConfig

    full = compose(*overrides, hydra_section=True)
    HydraConfig.instance().set_config(full)  # ${hydra:...} in the run folder's name resolves as in a CLI run
    run_dir = Path(str(full.hydra.run.dir))
    cfg = OmegaConf.masked_copy(full, [k for k in full if k != "hydra"])
    return cfg, run_dir


def run(overrides: Sequence[str] = (), out_dir: str | Path | None = None) -> Record:
    """One experiment, as `python -m bench OVERRIDES` runs it; the record is written to `out_dir`
    (default: the run folder the command line would use, under ./outputs/runs). Raises a BenchError
    (ConfigError, DataError) with the message the command line prints."""
    from bench.config.tuned import apply_tuned
    from bench.pipeline.run import run as run_pipeline

    if isinstance(overrides, str):
        overrides = [overrides]
    overrides = [str(o) for o in overrides]
    cfg, default_dir = _job_config(overrides)
    if cfg.get("experiment_name") == "tune":
        raise ConfigError("experiment=tune is a search: run it as python -m bench -m experiment=tune ...")
    result = run_pipeline(apply_tuned(cfg, overrides), Path(out_dir) if out_dir is not None else default_dir,
                          overrides=overrides)
    return Record(result.path, result.record, result.resumed)


def _row(path: Path, record: dict) -> dict:
    """One record's row: where and what ran, the config's leaves as `config.<key>`, the metrics as `metrics.<name>`."""
    machine, version = record.get("machine", {}), record.get("code_version", {})
    return {"path": str(path), "seed": record.get("seed"), "data_fingerprint": record.get("data_fingerprint"),
            "git_commit": version.get("git_commit"), "code_digest": version.get("code_digest"),
            "cpu_vendor": machine.get("cpu_vendor"), "device": record.get("device"),
            "config": record.get("config", {}), "metrics": record.get("metrics", {})}


def load_records(*dirs: str | Path) -> pd.DataFrame:
    """Every run record (run.json) found below `dirs` as one row each, sorted by path: the config flattened
    to `config.<section>.<key>` columns and the metrics as `metrics.<name>` (pandas.json_normalize)."""
    from bench.report.collect import read_record

    paths: Iterable[Path] = sorted({p for d in dirs for p in Path(d).rglob(RECORD_FILE)})
    rows = [_row(p, read_record(p)) for p in paths]
    if not rows:
        raise FileNotFoundError(f"no {RECORD_FILE} below {', '.join(str(d) for d in dirs) or '(no folder given)'}")
    return pd.json_normalize(rows, sep=".")

