"""End-to-end runs of the synthetic presets sized like KuaiRand-Pure and KuaiRand-1K: wall time and peak memory.

Each preset runs `python -m bench dataset.preset=P model=sasrec increc=on` in a child process (cache
off, so every stage is computed); the figures are its wall seconds, its peak resident memory
(the child's own VmHWM, bench.perf.child), and the per-stage seconds its run record holds.
Generated synthetic data is reused from .cache/synthetic when present (generation is not timed
then); the first run of a preset includes it.

The KuaiRand-1K-sized run is a memory probe (`PROBES`): two early-stopping epochs cut at 50 batches
per model (so the best epoch's weights are snapshotted and restored, as protocol v2 does).
Its peak is set by what does not grow with training steps: the 11.7M-row log, the item-CF stage,
the samples, the 4.4M-item tables with their AdaGrad state (allocated before the first step) and
full-pool retrieval. Its full training (4 epochs of every training request, for the base model
and IncRec's three towers) takes hours on 2 cores: the figures give its batches per epoch, so
the full time can be read off the measured seconds per batch.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from bench.perf.child import run_module
from bench.perf.device import train_device_override


# overrides of the memory-probe runs: two epochs of 50 batches per model under early stopping, so the best
# epoch's weights are copied and restored (protocol v2), validation on a fixed subset of 2,000 requests
PROBES = {"kuairand1k": ["train.max_epochs=2", "train.patience=1", "train.max_batches=50",
                         "eval.valid_max_requests=2000"]}


def end_to_end(preset: str, extra: list[str] | None = None, time_limit_s: float | None = None,
               device: str | None = None) -> dict[str, object]:
    """The module docstring's figures, the child trained on `device` (`train.device=DEVICE`; None: the config's
    default, auto). With `time_limit_s`, a run still going at the limit is stopped and what it finished is
    kept: `<preset>_end_to_end_s_at_least` (the seconds it ran), the seconds of each stage it completed (read
    from its log) and the stage it was in, so a run longer than a session still leaves a figure."""
    extra = list(extra if extra is not None else PROBES.get(preset, []))
    with tempfile.TemporaryDirectory() as tmp:
        run = run_module("bench", [f"dataset.preset={preset}", "model=sasrec", "increc=on", "cache.enabled=false",
                                   "train.progress=false", f"hydra.run.dir={tmp}", *train_device_override(device),
                                   *extra], timeout_s=time_limit_s)
        if not run.ok and not run.timed_out:
            return {f"{preset}_end_to_end": f"failed: {run.stderr_tail}"}
        if run.timed_out:
            log = Path(tmp) / "__main__.log"
            done, running = stages_in_log(log.read_text() if log.exists() else "")
            return {f"{preset}_end_to_end_s_at_least": run.seconds,
                    f"{preset}_end_to_end": f"stopped at the {time_limit_s:.0f} s limit in stage {running or 'none'}",
                    **{f"{preset}_stage_{k}_s": v for k, v in done.items()},
                    f"{preset}_overrides": " ".join(extra) or "none"}
        record = json.loads((Path(tmp) / "run.json").read_text())
    figures: dict[str, object] = {f"{preset}_end_to_end_s": run.seconds, f"{preset}_peak_rss_gib": run.peak_rss_gib}
    figures |= {f"{preset}_stage_{k}_s": v for k, v in record["stage_seconds"].items()}
    figures[f"{preset}_overrides"] = " ".join(extra) or "none"
    for model, log in record["training"].items():  # base, variant: seconds per batch, batches in a whole epoch
        figures[f"{preset}_{model}_seconds_per_batch"] = sum(log["epoch_seconds"]) / max(sum(log["batches"]), 1)
        figures[f"{preset}_{model}_batches_per_epoch"] = log["batches_available"][0] if log["batches_available"] else 0
    return figures


STAGE_LINE = re.compile(r"stage (\w+) (?:done in ([0-9.]+) s|\.\.\.)$")


def stages_in_log(text: str) -> tuple[dict[str, float], str | None]:
    """From a run's log (bench.pipeline.run's "stage NAME ..." / "stage NAME done in S s" lines): the seconds of each
    finished stage, in order, and the stage that was started and not finished (None when none was)."""
    done: dict[str, float] = {}
    running = None
    for line in text.splitlines():
        match = STAGE_LINE.search(line.strip())
        if not match:
            continue
        name, seconds = match.groups()
        if seconds is None:
            running = name
        else:
            done[name] = float(seconds)
            running = None if running == name else running
    return done, running
