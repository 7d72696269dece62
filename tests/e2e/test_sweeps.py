"""Experiment sweeps end to end: a killed sweep resumes without recomputing finished jobs; the launchers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.config import PROJECT_ROOT
from tests.conftest import compose_config

SWEEP = ["experiment=table2", "dataset.preset=tiny", "model=youtube_dnn", "increc=off,na", "seeds=1", "train.epochs=1",
         "train.early_stopping=false", "eval.seed_control=false"]


def sweep(args: list[str], **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", "-m", *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **popen)


def _leaves(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {k: v for key, sub in node.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def test_experiment_files_hold_only_what_differs() -> None:
    from omegaconf import OmegaConf

    default = _leaves(OmegaConf.to_container(compose_config(), resolve=True))
    for table, model in (("table1", "sasrec"), ("table2", "dssm"), ("table3", "dssm")):
        assert (PROJECT_ROOT / "conf" / "experiment" / f"{table}.yaml").read_text().startswith("# @package _global_\n")
        cfg = compose_config(f"experiment={table}")
        changed = {k for k, v in _leaves(OmegaConf.to_container(cfg, resolve=True)).items() if default.get(k, "?") != v}
        assert {"experiment_name", "train.progress", "eval.seed_control"} <= changed
        changed -= {"headline_models"} if table == "table1" else set()  # Table 1's paper backbones can get more seeds
        # beyond its name, quiet logs and the diversity controls single runs leave off, an experiment changes the
        # backbone (Tables 2-3; its search space follows it) and nothing else
        assert all(k in ("experiment_name", "train.progress", "eval.seed_control") or k.startswith(("model.", "tune.space."))
                   for k in changed), changed
        assert cfg.model.name == model and cfg.seeds == 5
    assert compose_config("experiment=table2", "model=sasrec").model.name == "sasrec"  # backbone overridable
    assert compose_config("experiment=table1", "dataset=kuairand_sample").dataset.name == "kuairand_sample"


@pytest.mark.slow
def test_killed_sweep_resumes_through_the_cluster_launcher(tmp_path: Path, synthetic_cache: Path) -> None:
    """A sweep killed mid-job resumes without recomputing its finished job, and the resumed launch goes through
    hydra/launcher=submitit_local: it pickles each job, runs it in its own process and reads its result back, the
    same path as submitit_slurm on this machine (issue 43). The metrics of a job do not depend on how it was
    launched: tests/e2e/test_end_to_end.py holds a sweep against in-process runs."""
    args = [*SWEEP, f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp_path / 'cache'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", "train.threads=1"]
    first_job = tmp_path / "sweep" / "youtube_dnn_off_seed0" / "run.json"
    second_job = tmp_path / "sweep" / "youtube_dnn_na_seed0" / "run.json"
    proc = sweep(args)
    deadline = time.time() + 240
    while not first_job.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep dies, mid second job
    proc.wait()
    assert first_job.exists(), proc.stdout.read()
    assert not second_job.exists()  # the killed job left no record, half-written or otherwise
    kept = first_job.stat().st_mtime_ns

    again = sweep([*args, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"])
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0, out
    submitit = tmp_path / "sweep" / ".submitit"
    assert len(list(submitit.rglob("*_result.pkl"))) == 2, out  # each job's return value came back through submitit
    assert first_job.stat().st_mtime_ns == kept  # the finished job was not recomputed
    job_logs = "".join(p.read_text() for p in submitit.rglob("*_log.*"))
    assert "finished already" in job_logs, job_logs[-3000:]
    record = json.loads(second_job.read_text())
    assert record["cache"] == {"prepared": "hit", "base": "hit"}  # and its base came from the killed sweep's cache
    assert record["config"]["increc"]["name"] == "na" and record["metrics"]["Inc@10"] is not None
    assert (second_job.parent / "per_request.npz").stat().st_size > 0


def test_joblib_preset_composes() -> None:
    """The one-machine launcher preset resolves; the killed-sweep test above resumes a sweep through submitit_local."""
    cfg = _hydra_config("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert cfg.hydra.launcher.n_jobs == 2


def _hydra_config(*overrides: str):
    from hydra import compose, initialize_config_dir

    from bench.config import CONF_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_submitit_slurm_preset_composes() -> None:
    """The Slurm launcher preset resolves (submitting needs a cluster, which tests do not have)."""
    cfg = _hydra_config("hydra/launcher=submitit_slurm")
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def test_resume_keeps_a_record_only_for_the_same_config_code_packages_cpu_and_data(
        tmp_path: Path, synthetic_cache: Path, monkeypatch) -> None:
    import shutil

    import bench.pipeline.resume
    from bench.data.synthetic import ensure_generated
    from bench.pipeline.resume import finished_record
    from bench.pipeline.run import run

    data = tmp_path / "data"
    shutil.copytree(ensure_generated("tiny", 0, synthetic_cache, progress=False), data)
    common = ("dataset=kuairand", f"dataset.root={data}", "dataset.ks=[10,20]", "dataset.existing_budget=16",
              "model=youtube_dnn", "train.epochs=1", "train.early_stopping=false", "eval.seed_control=false", "increc=off")
    cfg = compose_config(*common, "train.progress=false")
    first = run(cfg, tmp_path / "job")
    assert not first.resumed
    again = run(compose_config(*common, "train.progress=true", "seeds=5", "cache.enabled=true"), tmp_path / "job")
    assert again.resumed and again.record == first.record  # progress bars, seed count, cache: no effect
    assert finished_record(compose_config(*common, "train.lr=0.02"), tmp_path / "job") is None
    with monkeypatch.context() as m:
        m.setattr(bench.pipeline.resume, "code_digest", lambda: "edited code")
        assert finished_record(cfg, tmp_path / "job") is None
    with monkeypatch.context() as m:
        m.setattr(bench.pipeline.resume, "package_versions", lambda: {"torch": "another"})
        assert finished_record(cfg, tmp_path / "job") is None
    with monkeypatch.context() as m:  # dropout masks differ between CPU vendors
        m.setattr(bench.pipeline.resume, "cpu_vendor", lambda: "AnotherVendor")
        assert finished_record(cfg, tmp_path / "job") is None
    a100 = {"gpu": "A100", "capability": "8.0", "cuda": "12.6", "cudnn": 90100}
    gpu_job = tmp_path / "gpu_job"  # the same record as a GPU run had written it
    shutil.copytree(tmp_path / "job", gpu_job)
    record = json.loads((gpu_job / "run.json").read_text())
    record["device"] = "cuda:0"
    record["machine"] |= {"gpu": "A100", "gpu_capability": "8.0", "cuda": "12.6", "cudnn": 90100}
    (gpu_job / "run.json").write_text(json.dumps(record))
    with monkeypatch.context() as m:  # where this run would train on a GPU: only the same GPU, CUDA and cuDNN
        m.setattr(bench.pipeline.resume, "resolve_device", lambda name: torch.device("cuda", 0))
        m.setattr(bench.pipeline.resume, "gpu_identity", lambda device: a100)
        assert finished_record(cfg, tmp_path / "job") is None  # a CPU record is not a GPU run's
        assert finished_record(cfg, gpu_job) == record
        m.setattr(bench.pipeline.resume, "gpu_identity", lambda device: a100 | {"gpu": "H100"})
        assert finished_record(cfg, gpu_job) is None
    assert finished_record(cfg, gpu_job) is None  # and a GPU run's record is not resumed on the CPU
    assert finished_record(cfg, tmp_path / "job") == first.record
    moved = tmp_path / "moved"  # the same files elsewhere (another checkout): the fingerprint decides, not the path
    shutil.copytree(data, moved)
    moved_cfg = compose_config(*[f"dataset.root={moved}" if o.startswith("dataset.root=") else o for o in common])
    assert finished_record(moved_cfg, tmp_path / "job") == first.record
    log = next(data.glob("log_standard_*"))
    log.write_text(log.read_text() + log.read_text().splitlines(keepends=True)[1])  # the data changed
    assert finished_record(cfg, tmp_path / "job") is None
    rerun = run(cfg, tmp_path / "job")
    assert not rerun.resumed and rerun.record["data_fingerprint"] != first.record["data_fingerprint"]
