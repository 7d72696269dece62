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
bench.pipeline.compare_existing` under bench.perf.child), so each figure is that system alone:
`<preset>_existing_<system>_s` (the child's wall seconds, data loading included),
`..._peak_rss_gib` (the child's own peak resident memory, VmHWM: bench.perf.child says why not
os.wait4), `..._fit_s` / `..._retrieve_s` (summed over its fits and channels), `..._n_fits` (the
rolling fit days; a channel that refits less often, as the two-tower channel by default, reuses its
model between them), and `<preset>_load_only_s` / `..._peak_rss_gib` of a child that only reads
the data and builds the requests. That baseline is what every system's figures include at least;
a system's child also hashes the data files for the stage keys, computes the labelling statistics
and, on a cold numba cache, compiles the kernels inside its first fit, so its wall seconds minus
the baseline exceed fit plus retrieve. The preset is generated before any child starts, so no
figure times generation. The two-tower channel trains `existing.epochs=1 train.max_batches=50`
(SYSTEMS), so its seconds are a probe's, not a full fit's, and searches through its IVF index
(`existing.index=ivf`): exact search of 4.37M items at d = 64 for every one of the 1K preset's 325,169 requests
is about 9.1·10^13 multiply-adds (1.8·10^14 floating-point operations), over half an hour at the
retrieval rate in results/perf/full.json. Its recall against exact search on the first 1,000
requests each fit retrieves for is recorded (`..._twotower_recall_at_budget`, the mean over fits),
with the index builds' summed seconds and its size. A failed or timed-out child is recorded
as `failed after S s[, peak P GiB]: <its last stderr line or its exit status>`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from bench.config import CONF_DIR, PROJECT_ROOT
from bench.existing.channel import FitData, build_channels
from bench.existing.warm import warm_kernels
from bench.existing.multi import union
from bench.perf.child import ChildRun, run_module
from bench.perf.device import train_device_override
from bench.perf.timing import best_seconds
from bench.protocol.ragged import Ragged


def existing_figures(user: np.ndarray, item: np.ndarray, time_ms: np.ndarray, cutoff_ms: int, n_items: int,
                     history: Ragged, repeats: int = 3) -> dict[str, float]:
    """Figures of the module docstring; positives (user, item, time_ms) sorted by (user, time), all before cutoff_ms."""
    channels = {c.name: c for c in build_channels(OmegaConf.load(CONF_DIR / "existing" / "multi.yaml"), n_items)}
    data = FitData(user, item, time_ms, int(cutoff_ms))
    # loads (or compiles, once per environment) the numba kernels, as `make setup` does
    out: dict[str, float] = {"existing_first_calls_seconds": warm_kernels(), "existing_positives": float(len(item))}
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
           "twotower": ["existing.epochs=1", "train.max_batches=50", "existing.index=ivf"]}  # each system's overrides


CHILD_TIMEOUT_S = 3 * 3600  # one system on a preset: far above the 1K-sized item-CF's rolling fits


def _child(args: list[str]) -> tuple[ChildRun, dict | None]:
    """One `python -m bench.pipeline.compare_existing` child (bench.perf.child: wall seconds, its own peak RSS) and its
    JSON rows (None when it failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        run = run_module("bench.pipeline.compare_existing", [*args[:args.index("--")], "--out", str(out), *args[args.index("--"):]],
                         timeout_s=CHILD_TIMEOUT_S)
        rows = json.loads(out.read_text()) if run.ok and out.exists() else None
    return run, rows


def _failed(run: ChildRun) -> str:
    peak = "" if run.peak_rss_gib is None else f", peak {run.peak_rss_gib:.2f} GiB"
    return f"failed after {run.seconds:.0f} s{peak}: {run.stderr_tail}"


def systems_on_preset(preset: str, systems: dict[str, list[str]] | None = None, device: str | None = None
                      ) -> dict[str, object]:
    """Figures of the module docstring's `systems_on_preset` paragraph, one child process per system; the
    two-tower channel trains on `device` (`train.device=DEVICE`; None: the config's default, auto)."""
    from bench.data.synthetic import ensure_generated

    ensure_generated(preset, 0, PROJECT_ROOT / ".cache" / "synthetic", progress=False)  # generation is never timed
    common = [f"dataset.preset={preset}", "cache.enabled=false", *train_device_override(device)]
    out: dict[str, object] = {}
    run, rows = _child([*common, "--load-only", "--"])
    if rows is None:
        out[f"{preset}_load_only"] = _failed(run)
    else:
        out[f"{preset}_load_only_s"], out[f"{preset}_load_only_peak_rss_gib"] = run.seconds, run.peak_rss_gib
    for name, extra in (SYSTEMS if systems is None else systems).items():
        run, rows = _child([*common, "--", f"existing={name}", *extra])
        key = f"{preset}_existing_{name}"
        if rows is None:
            out[key] = _failed(run)
            print(f"  {key}: {out[key]}", file=sys.stderr, flush=True)
            continue
        (row,) = rows["systems"]
        out[f"{key}_s"], out[f"{key}_peak_rss_gib"] = run.seconds, run.peak_rss_gib
        out[f"{key}_fit_s"] = sum(c["fit"] for c in row["channel_seconds"].values())
        out[f"{key}_retrieve_s"] = sum(c["retrieve"] for c in row["channel_seconds"].values())
        out[f"{key}_n_fits"] = float(row["n_fits"])
        for channel, fits in row.get("channel_search", {}).items():  # an approximate search: its recall, its index
            out[f"{key}_{channel}_recall_at_budget"] = float(np.mean([f["recall_at_budget"] for f in fits]))
            out[f"{key}_{channel}_index_build_s"] = float(sum(f["build_seconds"] for f in fits))
            out[f"{key}_{channel}_index"] = f"ivf, {fits[0]['lists']} lists, {fits[0]['probe']} probed, {len(fits)} fit(s)"
        if extra:
            out[f"{key}_overrides"] = " ".join(extra)
        peak = "—" if run.peak_rss_gib is None else f"{run.peak_rss_gib:.2f}"
        print(f"  {key}: {run.seconds:.1f} s, peak {peak} GiB", file=sys.stderr, flush=True)  # a long section's progress
    return out
