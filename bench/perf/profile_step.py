"""`python -m bench.perf.profile_step [--model M] [--preset P]`: where a training step spends its time.

torch.profiler over the timed steps of bench.perf.train_step's workload (IncRec-NA on a synthetic
preset, on the CPU: the table reads CPU time), once on the reference path and once on the default path,
printed as Markdown: per path,
the operators with the largest self CPU time and their share of the step. docs/train_step_profile.md
holds its output with what it says.
"""

from __future__ import annotations

import argparse
import sys

from torch.profiler import ProfilerActivity, profile

from bench.engine.machine import machine
from bench.perf.train_step import (MODEL_REFERENCE, REFERENCE_OVERRIDES, compose_app_config, fresh_model, step_workload,
                                   timed_steps)
from bench.pipeline.record import code_version
from bench.engine.device import deterministic_torch


def profile_path(work, cfg, warmup: int, top: int) -> tuple[str, float]:
    """A Markdown table of the `top` operators by self CPU time over the timed steps, and ms per step."""
    model, optimiser, applied = fresh_model(work, cfg)

    timed_steps(model, optimiser, work.batches[:warmup])
    timed = work.batches[warmup:]
    ms = timed_steps(model, optimiser, timed)[0] / len(timed) * 1e3  # unprofiled
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_steps(model, optimiser, timed)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    lines = [f"levers: {applied}", "", "| operator | share of self CPU time | calls per step |", "| --- | --- | --- |"]
    for e in events[:top]:
        lines.append(f"| `{e.key}` | {e.self_cpu_time_total / total:.1%} | {e.count / len(timed):.0f} |")
    return "\n".join(lines), ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.profile_step", description=__doc__)
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--preset", default="pure")
    parser.add_argument("--batches", type=int, default=23, help="batches, the first 3 untimed warm-up")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    deterministic_torch()
    overrides = [f"dataset.preset={args.preset}", f"model={args.model}", "increc=na", "train.device=cpu"]
    work = step_workload(overrides, args.batches)
    version = code_version()
    print(f"`python -m bench.perf.profile_step --model {args.model} --preset {args.preset} --batches {args.batches}` "
          f"at {version['git_commit'][:7]}{' (dirty)' if version['dirty'] else ''}; machine: {machine()}\n")
    paths = {"reference": compose_app_config(overrides + REFERENCE_OVERRIDES + MODEL_REFERENCE.get(args.model, [])),
             "default": work.cfg}
    for name, cfg in paths.items():
        table, ms = profile_path(work, cfg, 3, args.top)
        print(f"### {args.model}, {name} path: {ms:.1f} ms per step (unprofiled)\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
