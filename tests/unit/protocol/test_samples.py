"""Hand-worked tests of bench.protocol.samples: RTG / ITG flags, eval rows, trainable targets, statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.protocol.ragged import Ragged
from bench.protocol.requests import build_requests
from bench.protocol.samples import Samples, sample_statistics, split_groups

M = 60_000
H = 60 * M
MID = 1_651_939_200_000  # 2022-05-08 00:00 Beijing: the first test millisecond of this log
N_ITEMS = 10

LOG = [  # (user, time_ms, item, tab, positive)
    (0, MID - 6 * H, 8, 0, True),  # history
    (0, MID - 5 * H, 1, 1, True),  # r0 (train): T1, target 1 (tab 1)
    (0, MID - 4 * H, 2, 2, True),  # r0 target 2 (tab 2)
    (0, MID - 1, 3, 1, True),  # r1 (train, T1 one ms before the test day): target 3 (tab 1)
    (0, MID + 10 * M, 4, 0, True),  # r1 target 4 (tab 0), a positive in the test period
    (1, MID, 5, 1, True),  # r2 (test): target 5 (tab 1)
    (1, MID + 5 * M, 7, 1, False),  # r2 exposure 7
    (1, MID + H, 6, 0, True),  # r2 target 6 (tab 0)
    (1, MID + 2 * H, 9, 1, False),  # r3 (test)
    (1, MID + 3 * H, 2, 0, True),  # r3 target 2 (tab 0)
    (2, MID + H, 0, 1, False),  # r4 (test): no target
]

# R_u by hand: r0 {1, 9}, r1 {}, r2 {6}, r3 {2, 3}, r4 {5}
RETRIEVED = Ragged(np.array([0, 2, 2, 3, 5, 6], dtype=np.int64), np.array([1, 9, 6, 2, 3, 5], dtype=np.int32))


def make_log(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user", "time_ms", "item", "tab", "positive"])
    return frame.astype({"user": "int32", "item": "int32", "time_ms": "int64", "tab": "int16", "positive": "bool"})[
        ["user", "item", "time_ms", "tab", "positive"]]


@pytest.fixture(scope="module")
def samples() -> Samples:
    req = build_requests(make_log(LOG))
    # the toy requests are what the comments above say
    assert req.first_test_ms == MID
    assert req.is_test.tolist() == [False, False, True, True, True]
    assert [req.targets.row(r).tolist() for r in range(req.n)] == [[1, 2], [3, 4], [5, 6], [2], []]
    assert req.target_tabs.tolist() == [1, 2, 1, 0, 1, 0, 0]
    return split_groups(req, RETRIEVED, N_ITEMS)


def test_rtg_itg_flags(samples):
    # r0: 1 in R -> RTG, 2 not -> ITG; r1: R empty -> both ITG; r2: 5 ITG, 6 RTG; r3: 2 RTG (the same item 2
    # is ITG in r0 and RTG in r3: membership is per request)
    assert samples.is_itg.tolist() == [False, True, True, True, True, False, False]
    assert [samples.itg.row(r).tolist() for r in range(5)] == [[2], [3, 4], [5], [], []]
    assert [samples.rtg.row(r).tolist() for r in range(5)] == [[1], [], [6], [2], []]


def test_r_u_of_another_row_does_not_count():
    # the same targets with R_u shifted one row down: r1 gets {1, 9}, r0 nothing -> every r0 target is ITG
    req = build_requests(make_log(LOG))
    shifted = Ragged(np.array([0, 0, 2, 2, 3, 5], dtype=np.int64), np.array([1, 9, 6, 2, 3], dtype=np.int32))
    s = split_groups(req, shifted, N_ITEMS)
    # r0 [1, 2] vs {} -> T T; r1 [3, 4] vs {1, 9} -> T T; r2 [5, 6] vs {} -> T T; r3 [2] vs {6} -> T
    assert s.is_itg.tolist() == [True] * 7


def test_itg_counts_and_eval_rows(samples):
    assert samples.itg_counts().tolist() == [1, 2, 1, 0, 0]
    # test requests r2, r3, r4; only r2 has an ITG item
    assert samples.eval_rows().tolist() == [2]


def test_train_target_mask(samples):
    # r0: both train targets before MID -> T T; r1: 3 at MID - 1 -> T, 4 at MID + 10 min -> F (test-period
    # positive of a train request); r2, r3: test requests -> F F F
    assert samples.train_target_mask().tolist() == [True, True, True, False, False, False, False]


def test_sample_statistics(samples):
    st = sample_statistics(samples)
    assert st["requests"] == 5
    assert st["requests_train"] == 2
    assert st["requests_test"] == 3
    assert st["requests_nonempty_targets"] == 4
    assert st["mean_targets"] == pytest.approx(7 / 5)  # 2 + 2 + 2 + 1 + 0
    assert st["mean_exposures"] == pytest.approx(6 / 5)  # {1}, {3}, {5, 7}, {9}, {0}
    assert st["mean_history"] == pytest.approx(6 / 5)  # [8], [8, 1, 2], [], [5, 6], []
    assert st["mean_retrieved"] == pytest.approx(6 / 5)  # 2 + 0 + 1 + 2 + 1
    assert st["mean_itg"] == pytest.approx(4 / 5)  # 1 + 2 + 1 + 0 + 0
    assert st["mean_rtg"] == pytest.approx(3 / 5)  # 1 + 0 + 1 + 1 + 0
    assert st["itg_share"] == pytest.approx(4 / 7)
    # test-request targets: 5 (ITG), 6 (RTG), 2 (RTG) -> 1/3
    assert st["itg_share_test"] == pytest.approx(1 / 3)
    assert st["test_requests_nonempty_itg"] == 1
    assert st["first_test_ms"] == MID
    # per tab: tab 0 = targets 4 (ITG), 6, 2 (RTG) -> 1/3; tab 1 = 1 (RTG), 3, 5 (ITG) -> 2/3; tab 2 = 2 (ITG) -> 1
    per_tab = st["itg_share_per_tab"]
    assert sorted(per_tab) == ["0", "1", "2"]
    assert per_tab["0"]["targets"] == 3 and per_tab["0"]["itg_share"] == pytest.approx(1 / 3)
    assert per_tab["1"]["targets"] == 3 and per_tab["1"]["itg_share"] == pytest.approx(2 / 3)
    assert per_tab["2"]["targets"] == 1 and per_tab["2"]["itg_share"] == pytest.approx(1.0)


def test_statistics_without_test_targets():
    # a log whose only test request has no target: the test share is undefined (None), not 0 or an error
    log = make_log([
        (0, MID - 2 * H, 1, 1, False),
        (0, MID - H, 2, 0, True),  # target of the train request
        (1, MID, 3, 1, False),  # test request, no positive
    ])
    req = build_requests(log)
    s = split_groups(req, Ragged(np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int32)), 4)
    st = sample_statistics(s)
    assert st["itg_share"] == 1.0
    assert st["itg_share_test"] is None
    assert st["test_requests_nonempty_itg"] == 0
    assert s.eval_rows().tolist() == []
