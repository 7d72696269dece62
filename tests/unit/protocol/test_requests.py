"""Hand-worked tests of bench.protocol.requests (sessions, B_u, X_u, ETG, time split) and bench.protocol.ragged.

Every expected value below is written out literally and derived in a comment from the toy log;
PROTOCOL section 1 defines the quantities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.errors import DataError
from bench.protocol.ragged import Ragged, isin, segment_ranges
from bench.protocol.requests import DAY_MS, build_requests, first_test_millisecond

S = 1_000
M = 60 * S
H = 60 * M
# 2022-05-08 00:00 Beijing (UTC+8) = 2022-05-07 16:00 UTC; the day before starts one DAY_MS earlier.
MID = 1_651_939_200_000


def make_log(rows: list[tuple[int, int, int, int, bool]]) -> pd.DataFrame:
    """(user, time_ms, item, tab, positive) tuples -> the normalised log, sorted by (user, time_ms)."""
    frame = pd.DataFrame(rows, columns=["user", "time_ms", "item", "tab", "positive"])
    frame = frame.astype({"user": "int32", "item": "int32", "time_ms": "int64", "tab": "int16", "positive": "bool"})
    frame = frame[["user", "item", "time_ms", "tab", "positive"]]
    assert frame.sort_values(["user", "time_ms"], kind="stable").index.equals(frame.index)
    return frame.reset_index(drop=True)


R1 = MID - 8 * H - 20 * M  # T1 of user 0's second request (MID - 9 h + 40 min)

TOY = [
    # ---- user 0: two requests on 05-07, both train
    (0, MID - 10 * H, 7, 0, True),  # other-tab positive: history of both requests
    (0, MID - 9 * H, 1, 1, False),  # r0 starts: T1 = MID - 9 h
    (0, MID - 9 * H + 10 * M, 2, 1, True),  # 10 min later: same request; target 2 (tab 1)
    (0, MID - 9 * H + 15 * M, 3, 2, True),  # other-tab positive after T1: target 3 (tab 2)
    (0, MID - 9 * H + 20 * M, 2, 3, True),  # item 2 again: counted once, tab/time of its first positive stay
    (0, R1, 4, 1, True),  # exactly 30 min after the last tab-1 impression: r1 starts; positive at T1(r1)
    (0, R1 + 29 * M + 59 * S, 4, 1, False),  # 29 min 59 s later: still r1; item 4 impressed twice
    (0, R1 + 30 * M + 59 * S, 6, 1, False),  # 1 min later: still r1
    (0, R1 + DAY_MS - 1, 8, 0, True),  # last ms of r1's 24 h horizon: a target
    (0, R1 + DAY_MS, 9, 0, True),  # exactly T1 + 24 h: outside the window
    # ---- user 1: one request at MID - 1 ms (train)
    (1, MID - 2 * H, 5, 0, True),  # history
    (1, MID - 1, 3, 1, True),  # r2: T1 = MID - 1 -> train; positive at T1 -> target
    (1, MID + 5 * M, 5, 1, False),  # same request (gap 5 min + 1 ms)
    (1, MID + 10 * M, 6, 4, True),  # other-tab target, in the test period
    # ---- user 2: two requests on 05-08 (test)
    (2, MID - 5 * H, 1, 0, True),
    (2, MID - 4 * H, 2, 0, True),
    (2, MID - 3 * H, 3, 2, True),
    (2, MID, 0, 1, False),  # r3: T1 = MID exactly -> test
    (2, MID + 30 * M, 4, 0, True),  # target of r3
    (2, MID + H, 1, 1, True),  # r4 (gap 1 h): positive at T1(r4) -> target of r4, not of r3
]


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return make_log(TOY)


def rows_of(r: Ragged) -> list[list[int]]:
    return [r.row(i).tolist() for i in range(r.n_rows)]


# ----------------------------------------------------------------------------- time split


def test_first_test_millisecond_is_beijing_midnight_of_last_day():
    # Latest time MID + 15 h 40 min is 05-08 15:40 Beijing -> the last day starts at MID.
    t = np.array([MID - 10 * H, MID + 15 * H + 40 * M], dtype=np.int64)
    assert first_test_millisecond(t, 1) == 1_651_939_200_000
    # two test days: 05-07 00:00 Beijing = MID - 24 h
    assert first_test_millisecond(t, 2) == 1_651_852_800_000
    # last time one ms before MID belongs to 05-07 -> the test day starts at MID - 24 h
    assert first_test_millisecond(np.array([MID - 1]), 1) == MID - DAY_MS
    # last time exactly MID is already 05-08
    assert first_test_millisecond(np.array([MID]), 1) == MID
    # in UTC (tz 0): MID + 15 h 40 min = 05-08 07:40 UTC -> UTC midnight 05-08 = MID + 8 h
    assert first_test_millisecond(t, 1, tz_hours=0) == 1_651_968_000_000


def test_split_one_ms_before_is_train_at_is_test(log):
    req = build_requests(log)
    assert req.first_test_ms == MID
    # requests in order: r0 (u0, MID-9h), r1 (u0, MID-8h20m), r2 (u1, MID-1), r3 (u2, MID), r4 (u2, MID+1h)
    assert req.user.tolist() == [0, 0, 1, 2, 2]
    assert req.t1.tolist() == [MID - 9 * H, R1, MID - 1, MID, MID + H]
    assert req.is_test.tolist() == [False, False, False, True, True]


# ------------------------------------------------------------------------------- sessions


def test_sessions_gap_exactly_30_min_splits_29_59_does_not(log):
    req = build_requests(log)
    assert req.n == 5  # 2 + 1 + 2
    # ETG: r0 = {1, 2}; r1 = {4 (twice), 6} -> [4, 6]: the 29:59 gap kept r1 whole; r2 = {3, 5}
    assert rows_of(req.exposures) == [[1, 2], [4, 6], [3, 5], [0], [1]]
    # one minute shorter gap (29:59 instead of 30:00) would merge r0 and r1
    shifted = [(u, t - S if (u == 0 and t >= R1 and t < R1 + H) else t, i, tab, p) for u, t, i, tab, p in TOY]
    merged = build_requests(make_log(shifted))
    assert merged.n == 4
    assert merged.exposures.row(0).tolist() == [1, 2, 4, 6]


def test_session_gap_and_primary_tabs_are_parameters(log):
    # with a 5-min gap: u0's gaps 10 min, 40-10 = 30 min, 29:59 split; the last gap (1 min) does not;
    # u1's second impression (5 min + 1 ms later) starts its own request
    req = build_requests(log, session_gap_ms=5 * M)
    assert req.t1.tolist() == [MID - 9 * H, MID - 9 * H + 10 * M, R1, R1 + 29 * M + 59 * S,
                               MID - 1, MID + 5 * M, MID, MID + H]
    # primary tabs {1, 2}: u0's tab-2 impression at +15 min joins r0 and the gap to R1 shrinks to 25 min,
    # so all six of u0's impressions form one request; u2's tab-2 positive at MID - 3 h is a request of its own
    req = build_requests(log, primary_tabs=[1, 2])
    assert req.exposures.row(0).tolist() == [1, 2, 3, 4, 6]
    assert req.user.tolist() == [0, 1, 2, 2, 2]
    assert req.t1.tolist() == [MID - 9 * H, MID - 1, MID - 3 * H, MID, MID + H]
    with pytest.raises(DataError):
        build_requests(log, primary_tabs=[13])


# ------------------------------------------------------------------------ targets and window


def test_targets_window_and_order(log):
    req = build_requests(log)
    # t_end: r0 = T1(r1) (before T1 + 24h); r1 = T1 + 24h; r2 = T1 + 24h; r3 = T1(r4) = MID + 1h; r4 = T1 + 24h
    assert req.t_end.tolist() == [R1, R1 + DAY_MS, MID - 1 + DAY_MS, MID + H, MID + H + DAY_MS]
    # r0: [MID-9h, R1): item 2 (10 min), item 3 (15 min), item 2 again (dropped); item 4 at R1 is excluded
    # r1: [R1, R1+24h): item 4 at T1 (included), item 8 at T1+24h-1 (included); item 9 at T1+24h excluded
    # r2: item 3 at T1 = MID-1, item 6 at MID+10m; r3: item 4 at MID+30m (item 1 at MID+1h is r4's)
    assert rows_of(req.targets) == [[2, 3], [4, 8], [3, 6], [4], [1]]
    # scenario and time of each target's *first* positive (item 2's first positive is the tab-1 one)
    assert req.target_tabs.tolist() == [1, 2, 1, 0, 1, 4, 0, 1]
    assert req.target_times.tolist() == [MID - 9 * H + 10 * M, MID - 9 * H + 15 * M, R1, R1 + DAY_MS - 1,
                                         MID - 1, MID + 10 * M, MID + 30 * M, MID + H]
    assert req.target_tabs.dtype == np.int16


def test_first_positive_order_not_item_order():
    # targets are ordered by first positive: 9, then 3, then 9 again (dropped), then 5
    log = make_log([
        (0, MID, 0, 1, False),
        (0, MID + 1 * M, 9, 0, True),
        (0, MID + 2 * M, 3, 0, True),
        (0, MID + 3 * M, 9, 5, True),
        (0, MID + 4 * M, 5, 0, True),
    ])
    req = build_requests(log)
    assert req.targets.row(0).tolist() == [9, 3, 5]
    assert req.target_tabs.tolist() == [0, 0, 0]
    # a shorter horizon (2 min 30 s) keeps the positives at +1 and +2 min only
    req = build_requests(log, horizon_ms=2 * M + 30 * S)
    assert req.targets.row(0).tolist() == [9, 3]


# ---------------------------------------------------------------------------------- history


def test_history_strictly_before_t1(log):
    req = build_requests(log)
    # r0: positives of u0 before MID-9h: [7]; r1: before R1: 7, 2, 3, 2 (repeats kept; item 4 at R1 is not
    # strictly before); r2: u1 before MID-1: [5]; r3: u2 before MID: 1, 2, 3; r4: also 4 (MID + 30 min)
    assert rows_of(req.history()) == [[7], [7, 2, 3, 2], [5], [1, 2, 3], [1, 2, 3, 4]]
    assert rows_of(req.history_tabs()) == [[0], [0, 1, 2, 3], [0], [0, 0, 2], [0, 0, 2, 0]]
    assert (req.hist_end - req.hist_start).tolist() == [1, 4, 1, 3, 4]


def test_history_capped_at_max_len(log):
    req = build_requests(log, max_len=2)
    # the newest two of each history above; r0 and r2 have one only
    assert rows_of(req.history()) == [[7], [3, 2], [5], [2, 3], [3, 4]]
    # the cap does not touch targets
    assert rows_of(req.targets) == [[2, 3], [4, 8], [3, 6], [4], [1]]


def test_positives_are_the_positive_rows(log):
    req = build_requests(log)
    # 15 of the 20 rows are positive (all but the impressions of items 1, 4, 6, 5 in tab 1 and item 0)
    assert len(req.positives.item) == 15
    assert req.positives.user.tolist() == [0] * 7 + [1] * 3 + [2] * 5
    assert req.positives.item.tolist() == [7, 2, 3, 2, 4, 8, 9, 5, 3, 6, 1, 2, 3, 4, 1]


def test_empty_log_raises():
    with pytest.raises(DataError):
        build_requests(make_log([]))


# --------------------------------------------------------------------------------- Ragged

# rows: [10, 11], [], [20, 21, 22]
RAG = Ragged(np.array([0, 2, 2, 5], dtype=np.int64), np.array([10, 11, 20, 21, 22], dtype=np.int32))


def test_ragged_basics():
    assert RAG.n_rows == 3
    assert RAG.lengths().tolist() == [2, 0, 3]
    assert RAG.row_ids().tolist() == [0, 0, 2, 2, 2]
    assert RAG.row(1).tolist() == []
    built = Ragged.from_rows(np.array([0, 0, 2, 2, 2]), RAG.values, 4)  # a 4th, empty, row at the end
    assert built.indptr.tolist() == [0, 2, 2, 5, 5]


def test_ragged_take():
    sub = RAG.take(np.array([2, 0]))
    assert sub.indptr.tolist() == [0, 3, 5]
    assert sub.values.tolist() == [20, 21, 22, 10, 11]
    rep = RAG.take([1, 0, 0])
    assert rows_of(rep) == [[], [10, 11], [10, 11]]
    none = RAG.take(np.array([], dtype=np.int64))
    assert none.n_rows == 0 and len(none.values) == 0


def test_ragged_mask():
    kept = RAG.mask(np.array([True, False, False, True, True]))
    assert kept.indptr.tolist() == [0, 1, 1, 3]
    assert kept.values.tolist() == [10, 21, 22]
    nothing = RAG.mask(np.zeros(5, dtype=bool))
    assert nothing.indptr.tolist() == [0, 0, 0, 0]


def test_ragged_padded():
    vals, mask = RAG.padded(np.array([2, 1, 0]), pad=-1)
    assert vals.tolist() == [[20, 21, 22], [-1, -1, -1], [10, 11, -1]]
    assert mask.tolist() == [[True, True, True], [False, False, False], [True, True, False]]
    # only empty rows: width 1, nothing real
    vals, mask = RAG.padded(np.array([1]))
    assert vals.tolist() == [[0]] and mask.tolist() == [[False]]


def test_segment_ranges():
    # [3, 5) -> 3, 4; [7, 7) -> nothing; [0, 2) -> 0, 1; [6, 4) (negative) -> nothing
    rows, idx = segment_ranges(np.array([3, 7, 0, 6]), np.array([5, 7, 2, 4]))
    assert rows.tolist() == [0, 0, 2, 2]
    assert idx.tolist() == [3, 4, 0, 1]


def test_isin():
    pool = np.array([9, 1, 3])
    # 10 is beyond the largest pool value (searchsorted past the end), 0 before the smallest
    assert isin(np.array([1, 5, 9, 0, 10, 3]), pool).tolist() == [True, False, True, False, False, True]
    assert isin(np.array([1, 2]), np.array([], dtype=np.int64)).tolist() == [False, False]
    assert isin(np.array([[1, 2], [3, 4]]), np.array([[4], [1]])).tolist() == [[True, False], [False, True]]


# ------------------------------------------------------------------ validation split and its cuts (protocol v2)


def test_validation_day_and_the_cuts_at_each_split_end(log):
    """valid_days=1: 05-07 (Beijing) requests validate; their targets and exposures stop at the test start."""
    v1 = build_requests(log)
    req = build_requests(log, valid_days=1)
    assert req.first_valid_ms == MID - DAY_MS and req.first_test_ms == MID
    assert req.is_valid.tolist() == [True, True, True, False, False]  # r0, r1, r2 start on 05-07
    assert req.is_test.tolist() == [False, False, False, True, True]
    assert not req.is_train.any()
    # v1 keeps X_u whole: r1's item 8 (05-08 11:39) and r2's item 6 (MID + 10 min) are targets
    assert rows_of(v1.targets)[1:3] == [[4, 8], [3, 6]]
    # v2 cuts a validation request's targets at MID: r1 keeps 4, r2 keeps 3
    assert rows_of(req.targets) == [[2, 3], [4], [3], [4], [1]]
    # and its exposures: r2's item 5 was impressed at MID + 5 min, in the test period
    assert rows_of(v1.exposures)[2] == [3, 5] and rows_of(req.exposures)[2] == [3]
    assert req.split_rows("valid").tolist() == [0, 1, 2] and req.split_rows("test").tolist() == [3, 4]
    with pytest.raises(ValueError):
        req.split_rows("dev")


def test_training_requests_are_cut_at_the_validation_start():
    """A training request whose 24 h horizon runs into the validation day loses those targets."""
    day0 = MID - 2 * DAY_MS
    log = make_log([
        (0, day0 + 20 * H, 1, 1, True),  # train request at 05-06 20:00 Beijing... (MID - 2 d + 20 h)
        (0, day0 + 23 * H, 2, 4, True),  # target before the validation start
        (0, day0 + 25 * H, 3, 4, True),  # target after it (05-07 01:00): cut
        (0, MID + H, 4, 1, True),  # a test request
        (1, MID - 5 * H, 5, 1, True),  # a validation request
    ])
    req = build_requests(log, valid_days=1)
    assert req.is_train.tolist() == [True, False, False]
    assert rows_of(req.targets)[0] == [1, 2]  # item 3 is past the first validation millisecond
    assert rows_of(build_requests(log).targets)[0] == [1, 2, 3]  # v1: whole


def test_non_primary_targets_keep_only_other_scenarios(log):
    req = build_requests(log, target_tabs="non_primary")
    # r0: item 2's first positive is in tab 1 (dropped) but its repeat in tab 3 counts, after 3 (tab 2);
    # r1's 4 (tab 1) goes, 8 (tab 0) stays; r4's 1 is a tab-1 positive: no target left
    assert rows_of(req.targets) == [[3, 2], [8], [6], [4], []]
    assert (req.target_tabs != 1).all()
    with pytest.raises(ValueError, match="target_tabs"):
        build_requests(log, target_tabs="primary")
