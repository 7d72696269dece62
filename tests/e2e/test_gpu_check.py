"""The prepared device check (bench/perf/gpu_check.sh): its CPU half runs here through the shell script; its CUDA
half runs where a GPU is (the `cuda` marker skips it elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from bench.config import PROJECT_ROOT
from bench.perf import gpu_check


def _check(tmp_path: Path, device: str, steps: str) -> dict:
    env = {**os.environ, "DEVICE": device, "STEPS": steps, "PYTHON": os.environ.get("PYTHON", __import__("sys").executable)}
    done = subprocess.run(["bash", str(PROJECT_ROOT / "bench" / "perf" / "gpu_check.sh"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (path,) = tmp_path.glob("gpu_*.json")
    assert done.stdout.strip().splitlines()[-1] == str(path)
    return json.loads(path.read_text())


@pytest.mark.slow
def test_the_check_s_cpu_half_runs_through_its_script(tmp_path: Path) -> None:
    """The shell script, its figures file and its first step, on the CPU (one tiny run; the other steps are the
    pipeline runs and perf sections other tests cover, and each costs seconds to minutes here)."""
    figures = _check(tmp_path, "cpu", "cuda_used")
    assert figures["failed"] == [] and list(figures["steps"]) == ["cuda_used"]
    assert figures["steps"]["cuda_used"]["record_device"] == "cpu" and figures["steps"]["cuda_used"]["seconds"] > 0
    assert figures["machine"]["cpu_vendor"] and figures["device"] == "cpu"


def test_the_repeat_step_fails_on_different_metrics(monkeypatch) -> None:
    runs = iter([{"metrics": {"Base@20": 0.2}, "seconds": 1.0}, {"metrics": {"Base@20": 0.2}, "seconds": 1.0},
                 {"metrics": {"Base@20": 0.2}, "seconds": 1.0}, {"metrics": {"Base@20": 0.21}, "seconds": 1.0}])
    monkeypatch.setattr(gpu_check, "_tiny_run", lambda overrides, device: next(runs))
    assert gpu_check.step_repeat("cpu")["identical"]
    with pytest.raises(AssertionError, match="different metrics"):
        gpu_check.step_repeat("cpu")


def test_unknown_steps_are_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cpu", "--steps", "cuda_used,warp"])
    assert "warp" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_check_s_cuda_half_runs_and_repeats(tmp_path: Path) -> None:
    figures = _check(tmp_path, "cuda", "cuda_used,repeat")
    assert figures["failed"] == [] and figures["steps"]["cuda_used"]["peak_gpu_bytes"] > 0
    assert figures["steps"]["cuda_used"]["record_device"].startswith("cuda") and figures["machine"]["gpu"]
