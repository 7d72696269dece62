"""Hand-worked tests of bench.engine.batches: history layout, accidental-hit masks, RTG / ETG pads, the test-period cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.engine.batches import TrainingSet, _hit_mask, train_batch, user_input
from bench.protocol.ragged import Ragged
from bench.protocol.requests import build_requests
from bench.protocol.samples import split_groups

M = 60_000
H = 60 * M
MID = 1_651_939_200_000  # 2022-05-08 00:00 Beijing
N_ITEMS = 10

LOG = [  # (user, time_ms, item, tab, positive)
    (0, MID - 9 * H, 8, 0, True),  # history of u0
    (0, MID - 8 * H, 9, 4, True),  # history of u0
    (0, MID - 5 * H, 1, 1, True),  # r0 (train): T1, exposure 1, target 1
    (0, MID - 5 * H + M, 3, 1, False),  # r0 exposure 3
    (0, MID - 4 * H, 2, 2, True),  # r0 target 2
    (1, MID - 10 * M, 4, 1, True),  # r1 (train, crosses midnight): exposure 4, target 4
    (1, MID + 5 * M, 5, 1, True),  # r1: exposure 5 and target 5 fall in the test period: not trainable
    (2, MID + H, 6, 1, True),  # r2 (test)
]
# R_u by hand: r0 {1}, r1 {}, r2 {}  ->  r0: RTG [1], ITG [2]; r1: ITG [4, 5]
RETRIEVED = Ragged(np.array([0, 1, 1, 1], dtype=np.int64), np.array([1], dtype=np.int32))


def _samples():
    log = pd.DataFrame(LOG, columns=["user", "time_ms", "item", "tab", "positive"]).astype(
        {"user": "int32", "item": "int32", "time_ms": "int64", "tab": "int16", "positive": "bool"})
    req = build_requests(log[["user", "item", "time_ms", "tab", "positive"]])
    assert req.is_test.tolist() == [False, False, True]
    return split_groups(req, RETRIEVED, N_ITEMS)


def test_hit_mask_marks_negatives_equal_to_a_row_item() -> None:
    # row 0 owns items {3, 5}, row 1 owns {5}; negatives [5, 1, 3, 5]
    mask = _hit_mask(np.array([0, 0, 1]), np.array([3, 5, 5]), np.array([5, 1, 3, 5]), 2)
    assert mask.tolist() == [[True, False, True, True], [True, False, False, True]]


def test_user_input_is_left_aligned_oldest_first() -> None:
    samples = _samples()
    profiles = np.arange(3 * 2).reshape(3, 2)
    u = user_input(samples, profiles, np.array([0, 1]), max_len=50)
    # r0's history: 8 (tab 0), 9 (tab 4); r1 (user 1) has none
    assert u.items.tolist() == [[8, 9], [0, 0]]
    assert u.tabs.tolist() == [[0, 4], [0, 0]]
    assert u.mask.tolist() == [[True, True], [False, False]]
    assert u.profile.tolist() == [[0, 1], [2, 3]]
    assert user_input(samples, profiles, np.array([0]), max_len=1).items.tolist() == [[9]]  # newest kept


def test_train_batch_groups_masks_and_test_period_cut() -> None:
    samples = _samples()
    ts = TrainingSet.build(samples, np.zeros((3, 1), dtype=np.int64), N_ITEMS, 50, with_exposures=True)
    assert ts.rows.tolist() == [0, 1]  # the test request r2 never trains
    batch = train_batch(ts, np.array([0, 1]), n_negatives=200, rng=np.random.default_rng(0))
    # targets: r0 -> 1 (RTG), 2 (ITG); r1 -> 4 (ITG); 5 is a test-period positive, cut
    assert batch.x_rows.tolist() == [0, 0, 1]
    assert batch.x_items.tolist() == [1, 2, 4]
    assert batch.x_is_itg.tolist() == [False, True, True]
    assert batch.rtg[batch.rtg_mask].tolist() == [1] and batch.rtg_mask.tolist() == [[True], [False]]
    # exposures: r0 -> 1, 3; r1 -> 4 (5 was impressed after midnight, cut)
    assert batch.etg_rows.tolist() == [0, 0, 1] and batch.etg_items.tolist() == [1, 3, 4]
    neg = batch.negatives
    own_x = [{1, 2}, {4}]
    own_e = [{1, 3}, {4}]
    for r in range(2):
        expect_x = torch.tensor([int(n) in own_x[r] for n in neg])
        expect_e = torch.tensor([int(n) in own_e[r] for n in neg])
        assert torch.equal(batch.x_neg_mask[r], expect_x)
        assert torch.equal(batch.etg_neg_mask[r], expect_e)
    assert batch.x_neg_mask.any()  # 200 draws from 10 items: the masks are exercised


def test_in_batch_negatives_carry_the_logq_correction() -> None:
    samples = _samples()
    ts = TrainingSet.build(samples, np.zeros((3, 1), dtype=np.int64), N_ITEMS, 50, with_exposures=True)
    log_q = ts.log_q()
    # training positives: targets 1, 2, 4 and exposures 1, 3, 4 -> counts 1:2, 2:1, 3:1, 4:2 of 6
    assert np.allclose(np.exp(log_q[[1, 2, 3, 4]]), [2 / 6, 1 / 6, 1 / 6, 2 / 6])
    batch = train_batch(ts, np.array([0, 1]), 999, np.random.default_rng(0), "in_batch", log_q)
    assert batch.negatives.tolist() == [1, 2, 4, 1, 3, 4]  # the batch's targets, then its exposures
    assert torch.allclose(batch.neg_logq, torch.tensor(log_q[[1, 2, 4, 1, 3, 4]], dtype=torch.float32))
    assert torch.allclose(batch.x_logq, torch.tensor(log_q[[1, 2, 4]], dtype=torch.float32))
    # a row's own positives are accidental hits among the in-batch negatives
    assert batch.x_neg_mask[0].tolist() == [True, True, False, True, False, False]
    assert train_batch(ts, np.array([0]), 5, np.random.default_rng(0)).neg_logq is None  # uniform: no correction


def test_shuffled_labels_keep_each_requests_itg_count() -> None:
    """The na_shuffled control: RTG / ITG flags permuted within each request, never across requests."""
    from bench.engine.batches import shuffle_within_rows

    rows = np.repeat(np.arange(200), 5)  # 200 requests of 5 targets
    flags = np.tile(np.array([True, False, False, True, False]), 200)
    out = shuffle_within_rows(rows, flags, np.random.default_rng(0))
    assert (np.bincount(rows[out], minlength=200) == 2).all()  # each request keeps its 2 ITG
    assert (out != flags).any()  # and they moved
    again = shuffle_within_rows(rows, flags, np.random.default_rng(0))
    assert np.array_equal(out, again)  # seeded


def test_permuted_labels_keep_each_days_itg_count_and_change_about_2p_1_minus_p() -> None:
    """The na_permuted control (PROTOCOL 5): flags permuted across the training targets of each day, so
    single-target requests change too; each day keeps its ITG count, and the share changed is near its
    expectation Σ 2·k(n − k)/n / N (2·p·(1 − p) for one day)."""
    from bench.engine.batches import expected_changed_share, permute_within_groups, shuffle_within_rows

    rng = np.random.default_rng(1)
    days = rng.integers(0, 3, size=6000)  # unsorted: targets are ordered by request, not by day
    flags = rng.random(6000) < np.array([0.9, 0.5, 0.2])[days]  # a different ITG share per day
    out = permute_within_groups(days, flags, np.random.default_rng(0))
    assert [int(out[days == d].sum()) for d in range(3)] == [int(flags[days == d].sum()) for d in range(3)]
    want = sum(2 * flags[days == d].sum() * (~flags[days == d]).sum() / (days == d).sum() for d in range(3)) / 6000
    assert expected_changed_share(days, flags) == pytest.approx(want)
    assert abs(float((out != flags).mean()) - want) < 0.02  # ~0.34 here; a within-request shuffle of singletons: 0
    one_day = np.zeros(6000, dtype=np.int64)
    p = flags.mean()
    assert expected_changed_share(one_day, flags) == pytest.approx(2 * p * (1 - p))
    singletons = np.arange(6000)  # one target per request: v2's within-request shuffle changes nothing
    assert np.array_equal(shuffle_within_rows(singletons, flags, np.random.default_rng(0)), flags)
    assert expected_changed_share(singletons, flags) == 0.0
