"""Property-based tests (hypothesis) over generated logs: the time split, the RTG/ITG partition, metric
ranges and the Inc channel's de-duplication hold for every log, not just the hand-made ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bench.errors import DataError
from bench.existing.itemcf import fit_itemcf, retrieve
from bench.evaluation.metrics import Rankings, metric, metric_counts, summarise
from bench.protocol.requests import build_requests
from bench.protocol.samples import split_groups

HOUR = 3_600_000
T0 = 1_651_000_000_000  # a KuaiRand-Pure day
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def logs(draw) -> tuple[pd.DataFrame, int]:
    """A normalised log (bench.data.schema.LOG_COLUMNS, sorted by user then time) over 2-4 days."""
    n_users = draw(st.integers(1, 5))
    n_items = draw(st.integers(4, 12))
    n = draw(st.integers(4, 60))
    days = draw(st.integers(2, 4))
    user = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    item = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    time = draw(st.lists(st.integers(0, days * 24 * HOUR - 1), min_size=n, max_size=n))
    tab = draw(st.lists(st.sampled_from([1, 1, 2, 4]), min_size=n, max_size=n))
    positive = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    log = pd.DataFrame({"user": np.array(user, np.int32), "item": np.array(item, np.int32),
                        "time_ms": T0 + np.array(time, np.int64), "tab": np.array(tab, np.int16),
                        "positive": np.array(positive, bool)})
    return log.sort_values(["user", "time_ms"], kind="stable").reset_index(drop=True), n_items


def requests_or_skip(log: pd.DataFrame, **kwargs):
    try:
        return build_requests(log, session_gap_ms=HOUR, horizon_ms=6 * HOUR, max_len=5, **kwargs)
    except DataError:
        assume(False)  # no primary impression in this log: not a benchmark (its error has its own test)


@SETTINGS
@given(logs())
def test_no_test_period_information_reaches_training(data) -> None:
    log, n_items = data
    req = requests_or_skip(log)
    t_rows = req.targets.row_ids()
    pos = req.positives
    for r in range(req.n):
        hist = slice(req.hist_start[r], req.hist_end[r])
        assert (pos.time_ms[hist] < req.t1[r]).all()  # B_u: strictly before T1
        assert (pos.user[hist] == req.user[r]).all()
        assert req.is_test[r] == (req.t1[r] >= req.first_test_ms)
    # the targets and exposures training may use all precede the test period
    from bench.protocol.samples import Samples

    samples = Samples(req, req.exposures.take(np.arange(req.n)), np.ones(len(req.targets.values), bool))
    train_t = samples.train_target_mask()
    assert (req.target_times[train_t] < req.first_test_ms).all()
    assert not req.is_test[t_rows[train_t]].any()
    train_e = samples.train_exposure_mask()
    assert (req.exposure_times[train_e] < req.first_test_ms).all()


@SETTINGS
@given(logs(), st.integers(1, 6))
def test_rtg_and_itg_partition_the_targets(data, budget: int) -> None:
    log, n_items = data
    req = requests_or_skip(log)
    fit = req.positives.time_ms < req.first_test_ms
    cf = fit_itemcf(req.positives.user[fit], req.positives.item[fit], n_items, window=3, shrink=1.0, neighbors=5)
    retrieved = retrieve(cf, req.history(), budget=budget, n_triggers=3, decay=0.9, progress=False)
    samples = split_groups(req, retrieved, n_items)
    itg, rtg = samples.itg, samples.rtg
    for r in range(req.n):
        x, i, t, got = set(req.targets.row(r)), set(itg.row(r)), set(rtg.row(r)), set(retrieved.row(r))
        assert i | t == x and not (i & t)  # a partition of X_u
        assert t <= got and not (i & got)  # RTG = retrieved targets, ITG = the others
        assert len(got) <= budget


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(1, 5), st.integers(6, 40))
def test_metrics_lie_in_0_1_and_inc_never_counts_a_base_item(seed: int, k: int, n_items: int) -> None:
    rng = np.random.default_rng(seed)
    n_req = int(rng.integers(1, 8))
    from bench.protocol.ragged import Ragged

    def truth() -> Ragged:
        rows = [rng.choice(n_items, size=int(rng.integers(1, 6)), replace=False) for _ in range(n_req)]
        return Ragged.from_rows(np.repeat(np.arange(n_req), [len(r) for r in rows]), np.concatenate(rows), n_req)

    itg, etg = truth(), truth()
    depth = min(2 * k, n_items)
    assume(depth == 2 * k)
    base = np.stack([rng.permutation(n_items)[:depth] for _ in range(n_req)])
    variant = np.stack([rng.permutation(n_items)[:depth] for _ in range(n_req)])
    rankings = Rankings(base=base, popularity=base, retrieved=np.zeros((n_req, 0), dtype=np.int64), variant=variant)
    metrics = summarise(metric_counts(rankings, itg, etg, [k]))
    assert all(0.0 <= v <= 1.0 for v in metrics.values()), metrics
    channel = metric("Inc").channel(rankings, k)
    for r in range(n_req):
        kept = channel[r][channel[r] >= 0]
        assert not set(kept) & set(base[r, :k])  # Inc never counts an item the base retrieved
        assert len(set(kept)) == len(kept)  # nor one item twice
