"""Homepage requests, their histories B_u, targets X_u, exposures (ETG) and the time split.

PROTOCOL section 1 (paper 2.1 and 3): a request is a maximal run of a user's primary-scenario
impressions with gaps below `session_gap`; T1 is its first impression time; X_u are the distinct
items the user had a positive on in [T1, end), end = min(next request's T1, T1 + horizon); ETG are
the distinct items impressed in the request; B_u are the user's positives strictly before T1.
Split by the calendar day of T1 (UTC+8): the last `test_days` days test, the `valid_days` before them
validation, earlier days training. A request's targets and exposures never cross into a later split:
a training request's are cut at the first validation millisecond, a validation request's at the
first test millisecond (protocol v2). With `valid_days=0` (protocol v1) X_u is kept whole and
only training drops test-period positives. `target_tabs="non_primary"` keeps only targets from
other scenarios.
Everything is vectorised over the whole log: sorted arrays and binary searches, no loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.protocol.ragged import Ragged, segment_ranges

DAY_MS = 86_400_000
DAY_TZ_HOURS = 8  # KuaiRand's `date` column is Beijing time (UTC+8): split days start at its midnight
TARGET_TABS = ("all", "non_primary")


@dataclass
class Positives:
    """Every positive of the log, sorted by (user, time_ms): the source of histories and targets."""

    user: np.ndarray  # [P] int32
    item: np.ndarray  # [P] int32
    tab: np.ndarray  # [P] int16
    time_ms: np.ndarray  # [P] int64


@dataclass
class Requests:
    """One row per homepage request (PROTOCOL section 1)."""

    user: np.ndarray  # [R] int32
    t1: np.ndarray  # [R] int64, first impression time
    t_end: np.ndarray  # [R] int64, end of the target window (exclusive)
    is_test: np.ndarray  # [R] bool, T1 on the last test_days days
    is_valid: np.ndarray  # [R] bool, T1 on the valid_days days before the test period
    hist_start: np.ndarray  # [R] int64, B_u = positives[hist_start:hist_end], newest last
    hist_end: np.ndarray  # [R] int64
    targets: Ragged  # X_u: distinct items, in order of first positive
    target_tabs: np.ndarray  # [len(targets.values)] int16, scenario of each target's first positive
    target_times: np.ndarray  # [len(targets.values)] int64, time of each target's first positive
    exposures: Ragged  # ETG: distinct items impressed in the request
    exposure_times: np.ndarray  # [len(exposures.values)] int64, first impression time of each exposed item
    positives: Positives
    first_test_ms: int  # first millisecond of the test period
    first_valid_ms: int  # first millisecond of the validation period (= first_test_ms without one)

    @property
    def n(self) -> int:
        return len(self.user)

    @property
    def is_train(self) -> np.ndarray:
        """[R] bool, T1 before the validation (or, without one, the test) period."""
        return ~(self.is_test | self.is_valid)

    def split_rows(self, split: str) -> np.ndarray:
        """Request ids of one split: train | valid | test."""
        masks = {"train": self.is_train, "valid": self.is_valid, "test": self.is_test}
        if split not in masks:
            raise ValueError(f"split {split!r}; choose one of {list(masks)}")
        return np.flatnonzero(masks[split])


    def history(self) -> Ragged:
        """B_u of every request as item lists (newest last)."""
        rows, idx = segment_ranges(self.hist_start, self.hist_end)
        return Ragged.from_rows(rows, self.positives.item[idx], self.n)

    def history_tabs(self) -> Ragged:
        """The scenario of every history item, aligned with history()."""
        rows, idx = segment_ranges(self.hist_start, self.hist_end)
        return Ragged.from_rows(rows, self.positives.tab[idx], self.n)


def calendar_day(time_ms: np.ndarray | int, tz_hours: int = DAY_TZ_HOURS) -> np.ndarray | int:
    """The calendar day (UTC+tz_hours) of each time: PROTOCOL 1's split days, and the groups of the
    na_permuted control's flags (PROTOCOL 5)."""
    return (time_ms + tz_hours * 3_600_000) // DAY_MS


def first_test_millisecond(time_ms: np.ndarray, test_days: int, tz_hours: int = DAY_TZ_HOURS) -> int:
    """Midnight (UTC+tz_hours) that starts the last `test_days` calendar days of the log."""
    last_day = calendar_day(int(time_ms.max()), tz_hours)
    return (last_day - test_days + 1) * DAY_MS - tz_hours * 3_600_000


def _distinct_per_row(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each (row, item), in original order; rows must be sorted."""
    frame = pd.DataFrame({"r": rows, "i": items})
    return np.flatnonzero(~frame.duplicated().to_numpy())


def build_requests(
    log: pd.DataFrame,
    *,
    primary_tabs: list[int] | tuple[int, ...] = (1,),
    session_gap_ms: int = 30 * 60_000,
    horizon_ms: int = DAY_MS,
    max_len: int = 50,
    test_days: int = 1,
    valid_days: int = 0,
    target_tabs: str = "all",
    tz_hours: int = DAY_TZ_HOURS,
) -> Requests:
    """Sessionise the primary-scenario impressions into requests and attach B_u, X_u and ETG.

    `log` is the normalised log (bench.data.schema.LOG_COLUMNS), sorted by (user, time_ms).
    """
    if len(log) == 0:
        raise DataError("the log is empty after reading")
    user = log["user"].to_numpy()
    item = log["item"].to_numpy()
    time = log["time_ms"].to_numpy()
    tab = log["tab"].to_numpy()
    positive = log["positive"].to_numpy()
    if target_tabs not in TARGET_TABS:
        raise ValueError(f"target_tabs={target_tabs!r}; choose one of {list(TARGET_TABS)}")
    first_test = first_test_millisecond(time, test_days, tz_hours)
    first_valid = first_test - valid_days * DAY_MS

    # Requests: runs of primary impressions, split at a new user or a gap >= session_gap.
    prim = np.flatnonzero(np.isin(tab, np.asarray(primary_tabs)))
    if len(prim) == 0:
        raise DataError(f"no impression in the primary scenario(s) {list(primary_tabs)}: no request to build")
    p_user, p_time = user[prim], time[prim]
    new = np.ones(len(prim), dtype=bool)
    new[1:] = (p_user[1:] != p_user[:-1]) | (p_time[1:] - p_time[:-1] >= session_gap_ms)
    req_of_imp = np.cumsum(new) - 1  # [n_prim] request id of each primary impression
    starts = np.flatnonzero(new)
    r_user = p_user[starts].astype(np.int32)
    t1 = p_time[starts]
    n_req = len(starts)

    same_user_next = np.zeros(n_req, dtype=bool)
    same_user_next[:-1] = r_user[1:] == r_user[:-1]
    next_t1 = np.where(same_user_next, np.roll(t1, -1), np.iinfo(np.int64).max)
    is_test = t1 >= first_test
    is_valid = (t1 >= first_valid) & ~is_test
    never = np.iinfo(np.int64).max
    # [R] end of each request's split; protocol v1 (valid_days=0) keeps X_u whole, as its reference figures
    # were computed, and only training drops test-period positives (bench.protocol.samples.Samples.train_target_mask)
    cut = np.where(is_test, never, np.where(is_valid, first_test, first_valid)) if valid_days > 0 else np.full(n_req, never)
    t_end = np.minimum(np.minimum(next_t1, t1 + horizon_ms), cut)  # targets never cross into a later split

    # Positives sorted by (user, time), addressed by a single int64 key for binary search.
    pos = np.flatnonzero(positive)
    positives = Positives(user[pos].astype(np.int32), item[pos].astype(np.int32), tab[pos].astype(np.int16), time[pos])
    t0 = int(time.min())
    span = int(time.max()) - t0 + horizon_ms + 2
    if (int(user.max()) + 1) * span >= 2**62:
        raise DataError("time span times number of users overflows the 64-bit request key")

    def key(u: np.ndarray, t: np.ndarray) -> np.ndarray:
        return u.astype(np.int64) * span + (np.minimum(t, t0 + span - 1) - t0)

    pos_key = key(positives.user, positives.time_ms)
    user_first = np.searchsorted(pos_key, key(r_user, np.full(n_req, t0)), side="left")
    hist_end = np.searchsorted(pos_key, key(r_user, t1), side="left")
    hist_start = np.maximum(user_first, hist_end - max_len)

    # X_u: positives in [T1, end), distinct per request.
    tgt_rows, tgt_idx = segment_ranges(hist_end, np.searchsorted(pos_key, key(r_user, t_end), side="left"))
    if target_tabs == "non_primary":  # only other scenarios' positives are targets
        other = ~np.isin(positives.tab[tgt_idx], np.asarray(primary_tabs))
        tgt_rows, tgt_idx = tgt_rows[other], tgt_idx[other]
    first = _distinct_per_row(tgt_rows, positives.item[tgt_idx])
    targets = Ragged.from_rows(tgt_rows[first], positives.item[tgt_idx[first]], n_req)
    tabs_of_targets = positives.tab[tgt_idx[first]]
    target_times = positives.time_ms[tgt_idx[first]]

    # ETG: distinct items impressed in the request itself.
    first = _distinct_per_row(req_of_imp, item[prim])
    first = first[p_time[first] < cut[req_of_imp[first]]]  # a request running past its split's end is cut there
    exposures = Ragged.from_rows(req_of_imp[first], item[prim][first].astype(np.int32), n_req)
    exposure_times = p_time[first]

    return Requests(
        user=r_user,
        t1=t1,
        t_end=t_end,
        is_test=is_test,
        is_valid=is_valid,
        hist_start=hist_start.astype(np.int64),
        hist_end=hist_end.astype(np.int64),
        targets=targets,
        target_tabs=tabs_of_targets,
        target_times=target_times,
        exposures=exposures,
        exposure_times=exposure_times,
        positives=positives,
        first_test_ms=first_test,
        first_valid_ms=int(first_valid),
    )
