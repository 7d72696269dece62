"""Table 1 on the real KuaiRand-Pure sample from an empty stage cache: its wall minutes under protocol v2.

Runs, in a child process, the sweep docs/performance.md documents for Table 1 on 2 cores:

    python -m bench -m experiment=table1 dataset=kuairand_sample seeds=5 \
        hydra/launcher=joblib hydra.launcher.n_jobs=2 train.threads=1

with a fresh `cache.dir` and `hydra.sweep.dir` (so every stage is computed: the data, the existing
system, each standalone base and its Seed-control twin, each IncRec-NA), then reads back every job's
run.json: the figures are the sweep's wall minutes, the number of finished jobs, the epochs early
stopping ran per job, and the summed training seconds. The sweep directory is kept under
outputs/perf/ so its records can be reported (`python -m bench.report DIR`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.config import PROJECT_ROOT
from bench.perf.device import train_device_override

LAUNCHER = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "train.threads=1"]  # 2 jobs x 1 thread on 2 cores


def table1_sample(seeds: int = 5, launcher: list[str] | None = None, extra: list[str] | None = None,
                  out_dir: Path | None = None, device: str | None = None) -> dict[str, object]:
    """Time the Table 1 sweep on the real sample (`seeds` seeds) from an empty cache; figures `table1_sample_*`.
    `extra` overrides are appended to the command (tests shorten the sweep with them); every job trains on
    `device` (`train.device=DEVICE`; None: the config's default, auto)."""
    launcher = list(LAUNCHER if launcher is None else launcher)
    sample = PROJECT_ROOT / ".." / "shared" / "data" / "kuairand-pure-sample"
    if not sample.is_dir():
        return {"table1_sample": f"skipped: the real sample is not at {sample.resolve()}"}
    sweep = (out_dir or PROJECT_ROOT / "outputs" / "perf") / f"table1_sample_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    sweep.parent.mkdir(parents=True, exist_ok=True)
    command = ["-m", "experiment=table1", "dataset=kuairand_sample", f"seeds={seeds}", *launcher,
               *train_device_override(device), *(extra or [])]
    with tempfile.TemporaryDirectory() as cache, open(sweep.parent / f"{sweep.name}.stderr.txt", "w+") as err:
        start = time.perf_counter()
        child = subprocess.run([sys.executable, "-m", "bench", *command, f"cache.dir={cache}",
                                f"hydra.sweep.dir={sweep}"], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=err)
        minutes = (time.perf_counter() - start) / 60
        if child.returncode != 0:
            err.seek(0)
            lines = err.read().strip().splitlines()
            return {"table1_sample": f"failed: {lines[-1] if lines else child.returncode}"}
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/run.json"))]
    epochs = [len(log["epoch_seconds"]) for r in records for log in r["training"].values()]
    train_s = sum(sum(log["epoch_seconds"]) for r in records for log in r["training"].values())
    return {
        "table1_sample_minutes": minutes,
        "table1_sample_command": "python -m bench " + " ".join(command),
        "table1_sample_jobs": len(records),
        "table1_sample_models_trained": len(epochs),  # training logs in the records (a cached base counts in every job reading it)
        "table1_sample_epochs_min": min(epochs, default=0),
        "table1_sample_epochs_max": max(epochs, default=0),
        "table1_sample_epochs_mean": sum(epochs) / max(len(epochs), 1),
        "table1_sample_train_seconds_in_records": train_s,
        "table1_sample_tuned_backbones": ",".join(sorted({r["config"]["model"]["name"] for r in records
                                                          if r["config"].get("tuning_applied")})) or "none",
        "table1_sample_sweep_dir": str(sweep),
    }
