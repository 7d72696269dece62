"""bench.existing.fit (`existing.fit` = rolling | train_period | all, PROTOCOL section 2), by hand.

The toy log spans three Beijing days D0, D1, D2 (D2 = the test day). Item-CF with window None,
shrink 0 and no neighbour cut, so sim(i, j) = c_ij / sqrt(n_i n_j) is worked out in the comments.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

from bench.pipeline.cache import StageCache
from bench.existing import itemcf as itemcf_module
from bench.existing.channel import BudgetedChannel
from bench.existing.fit import FIT_MODES, day_start_ms, existing_retrieval
from bench.existing.itemcf import ItemCFChannel, fit_itemcf, retrieve
from bench.protocol.ragged import Ragged
from bench.protocol.requests import DAY_MS, Positives, build_requests

from tests.conftest import compose_config

H = 3_600_000
D2 = 1_651_939_200_000  # 2022-05-08 00:00 Beijing: the test day (first_test_ms)
D1 = D2 - DAY_MS
D0 = D1 - DAY_MS

# Positives sorted by (user, time): (user, item, time_ms)
POS = [
    (0, 1, D0 + 1 * H), (0, 2, D0 + 2 * H),  # user 0 on D0: 1, 2
    (1, 1, D0 + 3 * H), (1, 3, D1 + 2 * H),  # user 1: 1 on D0, 3 on D1 (the target of r2)
    (3, 2, D2 + 1 * H), (3, 4, D2 + 2 * H),  # user 3 on the test day: 2, 4
]
# Requests (user, T1, history = the user's positives before T1):
#   r0: user 0 at D0 + 12 h, B_u = [1, 2]  (first day: no positive before D0)
#   r1: user 0 at D2 + 5 h,  B_u = [1, 2]  (test)
#   r2: user 1 at D1 + 1 h,  B_u = [1]     (its target 3 comes at D1 + 2 h)
T1 = np.array([D0 + 12 * H, D2 + 5 * H, D1 + 1 * H], dtype=np.int64)
HISTORY = [[1, 2], [1, 2], [1]]
N_ITEMS = 6


def itemcf(budget: int, **kw) -> list[BudgetedChannel]:
    """The item-CF system of existing=itemcf, as bench.existing.channel.build_channels builds it."""
    return [BudgetedChannel("itemcf", ItemCFChannel(**kw), budget, "bench.existing.itemcf.ItemCFChannel")]


KW = dict(first_test_ms=D2, channels=itemcf(10, window=None, shrink=0.0, neighbors=None, n_triggers=20, decay=0.9))


def toy() -> tuple[Positives, Ragged]:
    user, item, time_ms = (np.array(c) for c in zip(*POS))
    pos = Positives(user.astype(np.int32), item.astype(np.int32), np.ones(len(POS), np.int16), time_ms.astype(np.int64))
    rows = np.repeat(np.arange(len(HISTORY)), [len(h) for h in HISTORY])
    hist = Ragged.from_rows(rows, np.array(sum(HISTORY, []), dtype=np.int32), len(HISTORY))
    return pos, hist


def rows_of(r: Ragged) -> list[list[int]]:
    return [r.row(i).tolist() for i in range(r.n_rows)]


@pytest.fixture
def recorded(monkeypatch):
    """The (user, item) positives every fit_itemcf call of the item-CF channel saw."""
    calls: list[list[tuple[int, int]]] = []

    def spy(user, item, n_items, **kw):
        calls.append(list(zip(np.asarray(user).tolist(), np.asarray(item).tolist())))
        return fit_itemcf(user, item, n_items, **kw)

    monkeypatch.setattr(itemcf_module, "fit_itemcf", spy)
    return calls


def test_day_start_is_beijing_midnight():
    assert day_start_ms(np.array([D0, D0 + DAY_MS - 1, D1, D2 + 5 * H])).tolist() == [D0, D0, D1, D2]
    assert (D2 + 8 * H) % DAY_MS == 0  # Beijing midnight = 16:00 UTC the day before


def test_rolling_by_hand(recorded):
    pos, hist = toy()
    r, _, info = existing_retrieval(pos, hist, T1, N_ITEMS, fit="rolling", **KW)
    # D0: no positive before it -> no fit, r0 gets an empty R_u although its history is not empty.
    # D1 fit (before D1): users 0 {1, 2}, 1 {1}: n_1 = 2, n_2 = 1, c_12 = 1 -> sim(1, 2) = 1 / sqrt 2.
    #   r2 (B_u = [1]) -> {2}. Its own target 3 (D1 + 2 h) is not in the fit, so 3 is not retrieved.
    # D2 fit (before D2): adds user 1's 3: sim(1, 3) = sim(3, 1) = 1 / sqrt 2; sim(2, 1) = 1 / sqrt 2.
    #   r1 (B_u = [1, 2]: triggers 2 w 1, 1 w 0.9) -> scores 1: 0.707, 2: 0.636, 3: 0.636 -> {1, 2, 3}.
    assert rows_of(r) == [[], [1, 2, 3], [2]]
    assert recorded == [[(0, 1), (0, 2), (1, 1)], [(0, 1), (0, 2), (1, 1), (1, 3)]]
    assert info["mode"] == "rolling" and info["n_fits"] == 2
    assert info["cutoffs_ms"] == [D1, D2] and info["first_cutoff_ms"] == D1 and info["last_cutoff_ms"] == D2
    assert info["positives_per_fit"] == [3, 4] and info["requests_per_fit"] == [1, 1]
    assert info["requests_without_fit"] == 1
    assert info["leaks_test_period"] is False


def test_rolling_fit_never_sees_the_requests_own_day():
    """Every fit rolling uses for a request excludes every positive of that request's day and later."""
    pos, hist = toy()
    seen: list[int] = []

    def spy(user, item, n_items, **kw):
        seen.append(len(user))
        return fit_itemcf(user, item, n_items, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(itemcf_module, "fit_itemcf", spy)
        _, _, info = existing_retrieval(pos, hist, T1, N_ITEMS, fit="rolling", **KW)
    for cutoff, n in zip(info["cutoffs_ms"], seen):
        assert n == int((pos.time_ms < cutoff).sum())
        assert cutoff % DAY_MS == (D0 % DAY_MS)  # a Beijing midnight


def test_train_period_by_hand(recorded):
    pos, hist = toy()
    r, _, info = existing_retrieval(pos, hist, T1, N_ITEMS, fit="train_period", **KW)
    # One fit before D2 (the D2 fit above) for every request: r0 and r1 -> {1, 2, 3}; r2 (B_u = [1]) ->
    # 2 and 3 at 1 / sqrt 2: its own target 3 is retrieved (an RTG target under v1, ITG under rolling).
    assert rows_of(r) == [[1, 2, 3], [1, 2, 3], [2, 3]]
    assert recorded == [[(0, 1), (0, 2), (1, 1), (1, 3)]]
    assert info["n_fits"] == 1 and info["cutoffs_ms"] == [D2] and info["positives_per_fit"] == [4]
    assert info["requests_without_fit"] == 0 and info["leaks_test_period"] is False


def test_all_sees_the_test_period(recorded):
    pos, hist = toy()
    r, _, info = existing_retrieval(pos, hist, T1, N_ITEMS, fit="all", **KW)
    # Adds user 3's {2, 4}: n_2 = 2, n_4 = 1: sim(2, 1) = 1 / 2, sim(2, 4) = 1 / sqrt 2, sim(1, 3) = 1 / sqrt 2.
    # r0, r1 (triggers 2 w 1, 1 w 0.9) -> 1: 0.5, 4: 0.707, 2: 0.45, 3: 0.636; r2 (1) -> 2: 0.5, 3: 0.707.
    assert rows_of(r) == [[1, 2, 3, 4], [1, 2, 3, 4], [2, 3]]
    assert recorded == [[(0, 1), (0, 2), (1, 1), (1, 3), (3, 2), (3, 4)]]
    assert info["n_fits"] == 1 and info["positives_per_fit"] == [6]
    assert info["last_cutoff_ms"] == D2 + 2 * H + 1  # every positive lies before it
    assert info["leaks_test_period"] is True


def test_unknown_mode_names_the_choices():
    pos, hist = toy()
    with pytest.raises(ValueError, match="rolling, train_period, all"):
        existing_retrieval(pos, hist, T1, N_ITEMS, fit="daily", **KW)
    assert FIT_MODES == ("rolling", "train_period", "all")


# ------------------------------------------------------------------- random logs, against direct calls


def random_requests(seed: int, n_days: int = 4):
    """A random log over n_days Beijing days through build_requests (the last day is the test day)."""
    rng = np.random.default_rng(seed)
    n = 600
    user = np.sort(rng.integers(0, 25, n))
    start = D2 - (n_days - 1) * DAY_MS
    time_ms = start + rng.integers(0, n_days * DAY_MS, n)
    order = np.lexsort((time_ms, user))
    log = pd.DataFrame({"user": user[order].astype(np.int32), "item": rng.integers(0, 40, n)[order].astype(np.int32),
                        "time_ms": time_ms[order].astype(np.int64), "tab": rng.integers(0, 3, n)[order].astype(np.int16),
                        "positive": (rng.random(n) < 0.6)[order]})
    return build_requests(log, primary_tabs=(1,), test_days=1), 40


FIT_KW = dict(window=5, shrink=1.0, neighbors=6)
RET_KW = dict(budget=8, n_triggers=4, decay=0.8)


@pytest.mark.parametrize("seed", [0, 1])
def test_train_period_is_the_old_single_fit_exactly(seed):
    req, n_items = random_requests(seed)
    pos = req.positives
    rows = pos.time_ms < req.first_test_ms  # what bench.pipeline.prepare did before existing.fit
    old = retrieve(fit_itemcf(pos.user[rows], pos.item[rows], n_items, **FIT_KW), req.history(), **RET_KW)
    new, _, _ = existing_retrieval(pos, req.history(), req.t1, n_items, fit="train_period",
                                first_test_ms=req.first_test_ms,
                                channels=itemcf(RET_KW["budget"], **FIT_KW, n_triggers=4, decay=0.8))
    assert np.array_equal(new.indptr, old.indptr) and np.array_equal(new.values, old.values)
    assert new.values.dtype == old.values.dtype


@pytest.mark.parametrize("seed", [0, 1])
def test_rolling_equals_one_fit_per_request(seed):
    """Brute force: fit on the positives before each request's own day, retrieve for that request alone."""
    req, n_items = random_requests(seed)
    pos, hist = req.positives, req.history()
    new, _, info = existing_retrieval(pos, hist, req.t1, n_items, fit="rolling", first_test_ms=req.first_test_ms,
                                      channels=itemcf(RET_KW["budget"], **FIT_KW, n_triggers=4, decay=0.8))
    start = D2 - 3 * DAY_MS  # the log's first Beijing midnight
    assert info["n_fits"] == 3 and info["requests_without_fit"] == int((req.t1 < start + DAY_MS).sum())
    models = {}
    for r in range(req.n):
        day = start + (int(req.t1[r]) - start) // DAY_MS * DAY_MS
        if day not in models:
            keep = pos.time_ms < day
            models[day] = fit_itemcf(pos.user[keep], pos.item[keep], n_items, **FIT_KW) if keep.any() else None
        want = [] if models[day] is None else retrieve(models[day], hist.take(np.array([r])), **RET_KW).row(0).tolist()
        assert new.row(r).tolist() == want, r
    assert new.lengths().sum() > 0 and (new.lengths() == 0).sum() >= info["requests_without_fit"]
    assert sum(info["requests_per_fit"]) + info["requests_without_fit"] == req.n


def test_prepare_records_the_fits_and_the_cache_round_trips_them(synthetic_cache):
    from bench.pipeline.prepare import _pack, _unpack, prepare

    cfg = compose_config("dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}")
    prep = prepare(cfg, StageCache(None), lambda name: contextlib.nullcontext(), False)
    assert prep.existing_fits["mode"] == "rolling" and prep.existing_fits["n_fits"] >= 2
    assert prep.retrieved.n_rows == prep.req.n
    back = _unpack(_pack(prep), prep.fingerprint)
    assert back.existing_fits == prep.existing_fits
