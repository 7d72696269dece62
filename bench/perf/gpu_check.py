"""The prepared device check (issue 44): one call on a lent GPU that shows the CUDA path runs, repeats and how fast.

`python -m bench.perf.gpu_check [--device cuda] [--out DIR] [--budget SECONDS]` (or bench/perf/gpu_check.sh) runs,
in order, each step's figures saved as soon as it ends, within `--budget` seconds (default 450, 8 minutes with room
to spare):

1. `cuda_used`: the device resolves to CUDA, a tiny run's record names it, and the GPU allocated memory;
2. `repeat`: one tiny config twice in this process: the metrics must be identical;
3. `train_step`: `python -m bench.perf --quick --only train_step --device D --baseline-device cpu` (the SASRec
   step on the device and on the CPU in one call, and their ratio);
4. `compile`: SASRec IncRec-NA with `train.compile=true` (compile seconds, or why it fell back to eager; inductor
   can take minutes to compile, so it comes after the step figures);
5. `backbones`: every backbone × {base, IncRec-NA} on the `tiny` preset (two short epochs), seconds and Base@K,
   as far as the budget goes;
6. `pure`: the Pure-sized preset end to end (`--only scale_pure --time-limit` what is left of the budget).

The figures go to `<out>/gpu_<device model>.json` (default out: results/perf), with the machine (GPU model, CUDA and
cuDNN versions) and torch's warnings about nondeterministic kernels met on the way. A failed step is recorded and
the check goes on; the exit status is 1 when any step failed. With `--device cpu` the same steps run on the CPU
(the CPU half, which the test suite runs in part: `--steps`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

import torch

from bench.config import CONF_DIR, PROJECT_ROOT
from bench.engine.device import describe_device, resolve_device
from bench.engine.machine import machine
from bench.errors import BenchError
from bench.pipeline.record import write_json_atomic

STEPS = ("cuda_used", "repeat", "train_step", "compile", "backbones", "pure")  # the checks that matter most first
TINY = ["dataset.preset=tiny", "train.progress=false", "train.batch_size=128", "train.max_epochs=2", "train.patience=1",
        "eval.seed_control=false", "cache.enabled=false"]
RESERVE_S = 20.0  # seconds of the budget kept for writing the figures after the last step


def backbones() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def _tiny_run(overrides: list[str], device: str) -> dict:
    """One tiny run through the pipeline on `device`, as `python -m bench` runs it (no tuned values: `tiny` has
    none): its seconds, record device, levers and metrics."""
    from bench.config import compose
    from bench.pipeline.run import run

    start = time.perf_counter()
    given = [*TINY, f"train.device={device}", *overrides]
    with tempfile.TemporaryDirectory() as out:
        rec = run(compose(*given), Path(out), overrides=given).record
    k = max(rec["ks"])
    levers = next(iter(rec["training"].values()))["levers"]
    return {"seconds": round(time.perf_counter() - start, 2), "device": rec["device"], "levers": levers,
            f"Base@{k}": rec["metrics"].get(f"Base@{k}"), "metrics": rec["metrics"]}


def step_cuda_used(device: str) -> dict:
    """The device asked for is the one a run trains on; on CUDA the GPU also allocated memory for it."""
    resolved = resolve_device(device)
    if device.startswith("cuda"):
        assert resolved.type == "cuda", f"{device} resolved to {resolved}"
        torch.cuda.reset_peak_memory_stats(resolved)
    run = _tiny_run(["model=youtube_dnn", "increc=off"], device)
    assert run["device"].startswith(resolved.type), f"the record says {run['device']}, asked {device}"
    out = {"resolved": describe_device(resolved), "record_device": run["device"], "seconds": run["seconds"]}
    if resolved.type == "cuda":
        out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated(resolved))
        assert out["peak_gpu_bytes"] > 0, "the run allocated nothing on the GPU"
    return out


def step_backbones(device: str, left: Callable[[], float], names: list[str] | None = None) -> dict:
    out: dict = {}
    for model in names or backbones():
        for variant in ("off", "na"):
            if left() <= 0:
                out[f"{model}_{variant}"] = {"skipped": "the budget was spent"}
                continue
            run = _tiny_run([f"model={model}", f"increc={variant}"], device)
            run.pop("metrics")
            out[f"{model}_{variant}"] = run
    return out


def step_compile(device: str) -> dict:
    run = _tiny_run(["model=sasrec", "increc=na", "train.compile=true"], device)
    run.pop("metrics")
    return run


def step_repeat(device: str) -> dict:
    first, second = (_tiny_run(["model=sasrec", "increc=na"], device) for _ in range(2))
    assert first["metrics"] == second["metrics"], "the same config and seed gave different metrics"
    return {"identical": True, "seconds": [first["seconds"], second["seconds"]]}


def _perf_child(args: list[str], out: Path, timeout: float) -> dict:
    """`python -m bench.perf ARGS --out OUT` in a child; its figures."""
    out.unlink(missing_ok=True)  # the child's figures alone, never merged into an earlier file's
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the memory this process cached for its own runs goes back to the child
    cmd = [sys.executable, "-m", "bench.perf", *args, "--out", str(out)]
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return json.loads(out.read_text())["figures"]


def step_train_step(device: str, out_dir: Path, left: float) -> dict:
    baseline = [] if device == "cpu" else ["--baseline-device", "cpu"]
    return _perf_child(["--quick", "--only", "train_step", "--device", device, *baseline], out_dir / "train_step.json",
                       timeout=left)


def step_pure(device: str, out_dir: Path, left: float) -> dict:
    """The Pure-sized preset end to end, stopped at what is left of the budget less 40 s (the child's start and
    its figures); not started with under a minute left."""
    if left < 60:
        raise RuntimeError(f"skipped: {left:.0f} s of the budget left, under the 60 s a Pure-sized run needs to start")
    limit = left - 40.0
    return _perf_child(["--full", "--only", "scale_pure", "--device", device, "--time-limit", f"{limit:.0f}"],
                       out_dir / "scale_pure.json", timeout=left)


def device_slug(device: str) -> str:
    """'gpu_nvidia_h100_80gb_hbm3' for a CUDA device, 'cpu_<vendor>' for the CPU half."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(resolve_device(device))
    else:
        name = f"cpu {machine()['cpu_vendor']}"
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for the CPU half")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "perf", help="folder of the figures")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for every step (default 450)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--backbones", default=None, help="comma-separated backbones of the backbones step (default all)")
    args = parser.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"--steps: unknown {unknown}; choose from {list(STEPS)}")
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        path = args.out / f"gpu_{device_slug(args.device)}.json"
    except BenchError as exc:  # no such device here: one line and a figures file that says so
        write_json_atomic({"device": args.device, "machine": machine(), "failed": ["device"], "error": str(exc)},
                          args.out / "gpu_unavailable.json")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    left = lambda: args.budget - (time.perf_counter() - start) - RESERVE_S  # noqa: E731
    runs: dict[str, Callable[[], dict]] = {
        "cuda_used": lambda: step_cuda_used(args.device),
        "backbones": lambda: step_backbones(args.device, left, args.backbones.split(",") if args.backbones else None),
        "compile": lambda: step_compile(args.device),
        "repeat": lambda: step_repeat(args.device),
        "train_step": lambda: step_train_step(args.device, args.out, left()),
        "pure": lambda: step_pure(args.device, args.out, left()),
    }
    result: dict = {"device": args.device, "machine": machine(), "budget_s": args.budget, "steps": {}, "failed": [],
                    "nondeterministic_warnings": []}
    for name in steps:
        if left() <= 0:
            result["steps"][name] = {"error": "skipped: the budget was spent", "step_seconds": 0.0}
            result["failed"].append(name)
            print(f"{name}: skipped, the budget was spent", flush=True)
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result["steps"][name] = runs[name]()
            except Exception as exc:  # noqa: BLE001 - recorded, and the check goes on
                result["steps"][name] = {"error": f"{type(exc).__name__}: {exc}",
                                         "traceback": traceback.format_exc()[-2000:]}
                result["failed"].append(name)
        result["steps"][name]["step_seconds"] = round(time.perf_counter() - t0, 2)
        found = sorted({str(w.message).split("\n")[0] for w in caught if "determinis" in str(w.message)})
        result["nondeterministic_warnings"] = sorted(set(result["nondeterministic_warnings"]) | set(found))
        write_json_atomic(result, path)  # after each step: a check cut short keeps what it measured
        step = result["steps"][name]
        print(f"{name}: {'FAILED ' + step['error'] if 'error' in step else 'ok'} ({step['step_seconds']} s)", flush=True)
    result["seconds"] = round(time.perf_counter() - start, 2)
    write_json_atomic(result, path)
    print(path)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
