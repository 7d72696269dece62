"""Which positives the existing system is fit on, and its R_u per request (PROTOCOL section 2, `existing.fit`).

The system is one or several channels (bench.existing.channel: item-CF, Swing, popularity, ...), each
fit on a set of positives and then retrieving R_u from each request's history B_u (always the
positives strictly before T1, as bench.protocol.requests builds it); with several, R_u is their union
(bench.existing.multi). `existing.fit` says which positives every channel is fit on. A "fit with
cutoff c" fits each channel on every positive with time_ms < c, in the (user, time_ms) order of
Positives; days are calendar days in Beijing time (UTC+`tz_hours`, default 8) computed from time_ms,
and day d's first millisecond is its midnight there, d * DAY_MS - tz_hours * 3_600_000 for
d = (time_ms + tz_hours * 3_600_000) // DAY_MS.

- ``rolling`` (default, protocol v2): a request whose T1 falls on day d gets R_u from the fit with
  cutoff = day d's first millisecond: the system as it stood at T1, retrained daily at midnight.
  Every request is treated so, training, validation and test alike, so the RTG / ITG labels of
  every split come from the same process. Positives of day d itself (earlier on the same day, or
  a training request's own targets) are never in that fit; those before T1 are still in B_u, so
  they are triggers. One fit per distinct day among the requests' T1s; a request on a day with no
  earlier positive gets an empty R_u.
- ``train_period`` (protocol v1): every request gets R_u from the one fit with cutoff =
  first_test_ms (the first millisecond of the test period). A training request's own targets are
  in its system's fit, so its ITG share is far below the test requests'.
- ``all``: every request gets R_u from one fit on every positive of the log, the test period
  included (the paper's literal "over all samples"; recorded cutoff = the last positive's
  time_ms + 1). This leaks the test period into the labels: `leaks_test_period` is True.

Retrieval is row-independent (each R_u depends only on its own history and the fit), so rolling
retrieves each day's requests from that day's fit and the total retrieval work is the same as one
fit's; the extra cost of rolling is the fits, one per day and channel.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from bench.errors import ConfigError
from bench.existing.channel import BudgetedChannel, FitData
from bench.existing.multi import union
from bench.protocol.ragged import Ragged, segment_ranges
from bench.protocol.requests import DAY_MS, Positives

FIT_MODES = ("rolling", "train_period", "all")


class UnknownFitModeError(ConfigError, ValueError):
    """An `existing.fit` value that is not in FIT_MODES (a ValueError, and a one-line BenchError)."""


def day_start_ms(time_ms: np.ndarray, tz_hours: int = 8) -> np.ndarray:
    """[n] int64: the first millisecond (midnight, UTC+tz_hours) of the calendar day of each time_ms."""
    offset = int(tz_hours) * 3_600_000
    return (np.asarray(time_ms, dtype=np.int64) + offset) // DAY_MS * DAY_MS - offset


def existing_retrieval(
    positives: Positives,
    history: Ragged,
    t1: np.ndarray,
    n_items: int,
    *,
    fit: str,
    first_test_ms: int,
    channels: list[BudgetedChannel],
    tz_hours: int = 8,
    progress: bool = False,
) -> tuple[Ragged, dict[str, Ragged], dict]:
    """R_u per request ([R] rows, each in item-id order: the union of the channels'), each channel's own
    R_u by name, and a small JSON-ready dict describing the fits for the run record.

    positives: every positive, sorted by (user, time_ms); history: B_u per request (Requests.history());
    t1: [R] int64 each request's T1. The dict holds: mode, n_fits, cutoffs_ms (each fit's cutoff:
    it saw the positives with time_ms < cutoff), first_cutoff_ms / last_cutoff_ms, positives_per_fit,
    requests_per_fit, requests_without_fit (rolling: requests on a day with no earlier positive, given an
    empty R_u), fit_seconds, retrieve_seconds (all channels), leaks_test_period, and per channel its
    name, class, budget and seconds, and `search` where its fitted models describe one, a list with an entry per
    distinct fit (the two-tower channel's IVF index: size, build seconds, recall against exact search).
    """
    if fit not in FIT_MODES:
        raise UnknownFitModeError(f"existing.fit={fit!r}; choose one of {', '.join(FIT_MODES)}")
    if not channels:
        raise ValueError("the existing system needs at least one channel")
    t1 = np.asarray(t1, dtype=np.int64)
    n_req = history.n_rows
    if len(t1) != n_req:
        raise ValueError(f"t1 has {len(t1)} entries for {n_req} history rows")
    times = np.asarray(positives.time_ms, dtype=np.int64)
    seconds = {c.name: {"fit": 0.0, "retrieve": 0.0} for c in channels}
    details: dict[str, list] = {}  # per channel, (fitted model, its describe()) per distinct fit (an optional method)

    def fit_and_retrieve(cutoff: int, keep: np.ndarray | None, requests: np.ndarray,
                         bar: bool) -> tuple[dict[str, Ragged], int]:
        """Every channel fit on the positives `keep` selects (all when None), then retrieving for `requests`."""
        if keep is None:
            data = FitData(positives.user, positives.item, times, cutoff)
        else:  # a boolean mask keeps the (user, time) order the channels need
            data = FitData(positives.user[keep], positives.item[keep], times[keep], cutoff)
        hist = history if len(requests) == n_req else history.take(requests)
        out = {}
        for c in channels:
            t0 = time.perf_counter()
            model = c.channel.fit(data, n_items)
            t_fit = time.perf_counter()
            out[c.name] = model.retrieve(hist, c.budget, rows=requests, progress=bar)
            described = model.describe() if callable(getattr(model, "describe", None)) else {}
            seen = details.setdefault(c.name, [])
            if described and (not seen or seen[-1][0] is not model):  # a model reused over several days: once
                seen.append((model, described))
            del model  # a fit is freed before the next one is built (million-item pools)
            seconds[c.name]["fit"] += t_fit - t0
            seconds[c.name]["retrieve"] += time.perf_counter() - t_fit
        return out, len(data.item)

    if fit in ("train_period", "all"):
        cutoff = int(first_test_ms) if fit == "train_period" else (int(times.max()) + 1 if len(times) else 0)
        by_channel, n_pos = fit_and_retrieve(cutoff, times < cutoff if fit == "train_period" else None,
                                             np.arange(n_req), progress)
        cutoffs, pos_counts, req_counts, n_without = [cutoff], [n_pos], [n_req], 0
    else:
        day_of = day_start_ms(t1, tz_hours)
        days, inverse = np.unique(day_of, return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # requests grouped by day, in request order within a day
        bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(days)))]
        first_pos_ms = int(times.min()) if len(times) else None
        parts: dict[str, list] = {c.name: [] for c in channels}  # (request rows, their R_u) per fitted day
        cutoffs, pos_counts, req_counts, n_without = [], [], [], 0
        for d, cutoff in enumerate(tqdm(days.tolist(), desc="existing system: rolling fits", leave=False,
                                        disable=None if progress else True)):
            rows = order[bounds[d] : bounds[d + 1]]
            if first_pos_ms is None or first_pos_ms >= cutoff:  # no positive before this day: empty R_u
                n_without += len(rows)
                continue
            day_parts, n_pos = fit_and_retrieve(int(cutoff), times < cutoff, rows, False)
            for name, part in day_parts.items():
                parts[name].append((rows, part))
            cutoffs.append(int(cutoff))
            pos_counts.append(n_pos)
            req_counts.append(len(rows))
        by_channel = {name: _scatter(p, n_req) for name, p in parts.items()}

    retrieved = union(list(by_channel.values()), n_items)
    info = {
        "mode": fit,
        "n_fits": len(cutoffs),
        "cutoffs_ms": cutoffs,
        "first_cutoff_ms": cutoffs[0] if cutoffs else None,
        "last_cutoff_ms": cutoffs[-1] if cutoffs else None,
        "positives_per_fit": pos_counts,
        "requests_per_fit": req_counts,
        "requests_without_fit": int(n_without),
        "fit_seconds": round(sum(s["fit"] for s in seconds.values()), 3),
        "retrieve_seconds": round(sum(s["retrieve"] for s in seconds.values()), 3),
        "leaks_test_period": fit == "all",
        "channels": [{"name": c.name, "target": c.target, "budget": c.budget,
                      "fit_seconds": round(seconds[c.name]["fit"], 3),
                      "retrieve_seconds": round(seconds[c.name]["retrieve"], 3),
                      **({"search": [d for _, d in details[c.name]]} if details.get(c.name) else {})} for c in channels],
    }
    return retrieved, by_channel, info


def _scatter(parts: list[tuple[np.ndarray, Ragged]], n_req: int) -> Ragged:
    """Each day's rows put back into request order (each row comes whole from one fit: item-id order kept)."""
    lengths = np.zeros(n_req, dtype=np.int64)
    for rows, part in parts:
        lengths[rows] = part.lengths()
    indptr = np.zeros(n_req + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    values = np.zeros(int(indptr[-1]), dtype=parts[0][1].values.dtype if parts else np.int32)
    while parts:  # each day's R_u is freed once scattered
        rows, part = parts.pop()
        values[segment_ranges(indptr[rows], indptr[rows + 1])[1]] = part.values
    return Ragged(indptr, values)
