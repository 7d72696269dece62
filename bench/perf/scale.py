"""End-to-end runs of the synthetic presets sized like KuaiRand-Pure and KuaiRand-1K: wall time and peak memory.

Each preset runs `python -m bench dataset.preset=P model=sasrec increc=on` in a child process (cache
off, so every stage is computed); the figures are its wall seconds, its peak resident memory
(getrusage of the child), and the per-stage seconds its run record holds.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.config import PROJECT_ROOT


def end_to_end(preset: str, extra: list[str] | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bench", f"dataset.preset={preset}", "model=sasrec", "increc=on",
                              "cache.enabled=false", "train.progress=false", f"hydra.run.dir={tmp}", *(extra or [])],
                             cwd=PROJECT_ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if out.returncode != 0:
            return {f"{preset}_end_to_end": f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}"}
        record = json.loads((Path(tmp) / "run.json").read_text())
    figures: dict[str, object] = {f"{preset}_end_to_end_s": seconds}
    if peak_kib > before:  # the largest child so far is this one
        figures[f"{preset}_peak_rss_gib"] = peak_kib / 2**20
    figures |= {f"{preset}_stage_{k}_s": v for k, v in record["stage_seconds"].items()}
    return figures
