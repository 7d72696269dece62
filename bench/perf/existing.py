"""The existing system's channels side by side: Swing's fit against item-CF's, and one multi-channel retrieval.

On the same positives (a preset's training period) and histories (every request's B_u), one thread:
- `existing_itemcf_fit_seconds`, `existing_swing_fit_seconds` (best of `repeats` fits each, numba's
  compiled kernels loaded first and timed apart) and their ratio `existing_swing_over_itemcf_fit`;
  `existing_popular_fit_seconds`;
- `existing_multi_retrieve_seconds`: R_u of every request from the three fitted channels at
  conf/existing/multi.yaml's budgets and their union (bench.existing.multi.union), once; with
  `existing_multi_requests` and the mean |R_u| of the union.

`systems_on_preset` (section `existing_kuairand1k`, --full only): every conf/existing/ system run
whole on a synthetic preset, as a run's prepared stage runs it (data, requests, the rolling fits
and R_u of every request; cache off), each in its own child process (`python -m
bench.existing.compare`), so each figure is that system alone: `<preset>_existing_<system>_s` (the
child's wall seconds, data loading included), `..._peak_rss_gib` (its peak resident memory,
os.wait4), `..._fit_s` / `..._retrieve_s` (summed over its fits and channels), `..._n_fits`, and
`<preset>_load_only_s` / `..._peak_rss_gib` of the same process with no fit (the data and requests
alone: what every system's figures include). The two-tower channel trains with PROBES' overrides
(bench.perf.scale's memory probe: 50 batches per epoch), so its seconds are a probe's, not a full fit's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from bench.config import CONF_DIR, PROJECT_ROOT
from bench.existing.channel import FitData, build_channels
from bench.existing.multi import union
from bench.perf.timing import best_seconds
from bench.ragged import Ragged


def existing_figures(user: np.ndarray, item: np.ndarray, time_ms: np.ndarray, cutoff_ms: int, n_items: int,
                     history: Ragged, repeats: int = 3) -> dict[str, float]:
    """Figures of the module docstring; positives (user, item, time_ms) sorted by (user, time), all before cutoff_ms."""
    channels = {c.name: c for c in build_channels(OmegaConf.load(CONF_DIR / "existing" / "multi.yaml"), n_items)}
    data = FitData(user, item, time_ms, int(cutoff_ms))
    tiny = FitData(np.zeros(2, np.int64), np.arange(2), np.zeros(2, np.int64), 1)
    start = time.perf_counter()
    for c in channels.values():  # loads (or compiles, once per environment) the numba kernels
        c.channel.fit(tiny, 2)
    out: dict[str, float] = {"existing_first_calls_seconds": time.perf_counter() - start,
                             "existing_positives": float(len(item))}
    fitted = {}
    for name, c in channels.items():
        out[f"existing_{name}_fit_seconds"] = best_seconds(lambda: fitted.__setitem__(name, c.channel.fit(data, n_items)),
                                                           repeats)
    out["existing_swing_over_itemcf_fit"] = out["existing_swing_fit_seconds"] / out["existing_itemcf_fit_seconds"]
    start = time.perf_counter()
    r_u = union([fitted[name].retrieve(history, c.budget) for name, c in channels.items()], n_items)
    out["existing_multi_retrieve_seconds"] = time.perf_counter() - start
    out["existing_multi_requests"] = float(history.n_rows)
    out["existing_multi_mean_retrieved"] = float(r_u.lengths().mean()) if r_u.n_rows else 0.0
    return out


SYSTEMS = {"popular": [], "swing": [], "itemcf": [], "multi": [],
           "twotower": ["existing.epochs=1", "train.max_batches=50"]}  # the overrides each system runs with


def _child(args: list[str]) -> tuple[float, float, dict | None, str]:
    """Wall seconds, peak RSS (GiB) and the JSON rows of one `python -m bench.existing.compare` child."""
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stderr.txt", "w+") as err:
        out = Path(tmp) / "rows.json"
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "bench.existing.compare", *args[:args.index("--")],
                                  "--out", str(out), *args[args.index("--"):]],
                                 cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().strip().splitlines()
        rows = json.loads(out.read_text()) if os.waitstatus_to_exitcode(status) == 0 else None
    return seconds, usage.ru_maxrss / 2**20, rows, lines[-1] if lines else ""  # ru_maxrss: KiB on Linux


def systems_on_preset(preset: str, systems: dict[str, list[str]] | None = None) -> dict[str, object]:
    """Figures of the module docstring's `systems_on_preset` paragraph, one child process per system."""
    common = [f"dataset.preset={preset}", "cache.enabled=false"]
    out: dict[str, object] = {}
    seconds, rss, rows, _ = _child([*common, "--load-only", "--"])
    out[f"{preset}_load_only_s"], out[f"{preset}_load_only_peak_rss_gib"] = seconds, rss
    for name, extra in (SYSTEMS if systems is None else systems).items():
        seconds, rss, rows, last = _child([*common, "--", f"existing={name}", *extra])
        key = f"{preset}_existing_{name}"
        if rows is None:
            out[key] = f"failed: {last}"
            continue
        (row,) = rows["systems"]
        out[f"{key}_s"], out[f"{key}_peak_rss_gib"] = seconds, rss
        out[f"{key}_fit_s"] = sum(c["fit"] for c in row["channel_seconds"].values())
        out[f"{key}_retrieve_s"] = sum(c["retrieve"] for c in row["channel_seconds"].values())
        out[f"{key}_n_fits"] = float(row["n_fits"])
        if extra:
            out[f"{key}_overrides"] = " ".join(extra)
        print(f"  {key}: {seconds:.1f} s, peak {rss:.2f} GiB", file=sys.stderr, flush=True)  # a long section's progress
    return out
