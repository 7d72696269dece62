"""The existing system's channels (bench.existing: Swing, popularity, the multi-channel union) against
brute force written here, the rolling fit for every channel, and their configs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from bench.config import CONF_DIR
from bench.pipeline.validate import validate
from bench.errors import ConfigError
from bench.existing.channel import BudgetedChannel, FitData, build_channels
from bench.existing.fit import day_start_ms, existing_retrieval
from bench.existing.multi import channel_statistics, union
from bench.existing.popular import PopularChannel, popularity_scores
from bench.existing.swing import SwingChannel, distinct_pairs, fit_swing, recent_pairs, sampled_item_users
from bench.protocol.ragged import Ragged
from bench.protocol.requests import DAY_MS
from bench.pipeline.run import run

from tests.conftest import compose_config
from tests.unit.existing.test_existing_fit import random_requests

SINGLE_CHANNELS = sorted(p.stem for p in (CONF_DIR / "existing").glob("*.yaml")
                         if "_target_" in OmegaConf.load(p))  # every one-channel choice of existing=
ROLLING_CHANNELS = [c for c in SINGLE_CHANNELS if c != "twotower"]  # twotower's schedule: its own test below


def brute_swing(user, item, n_items, *, alpha, beta, offset, cap, seed, time_ms=None,
                item_cap=None) -> dict[tuple[int, int], float]:
    """sim(i, j) of bench.existing.swing's docstring with Python sets, over the same sampled U_i."""
    latest: dict[int, dict[int, int]] = {}
    for u, i, t in zip(user.tolist(), item.tolist(), (time_ms if time_ms is not None else np.zeros(len(user))).tolist()):
        latest.setdefault(u, {})[i] = max(t, latest.get(u, {}).get(i, t))
    holdings = {u: set(sorted(last, key=lambda i: (-last[i], i))[:item_cap] if item_cap else last)
                for u, last in latest.items()}  # the item cap: each user's most recent items
    pair_user = np.array([u for u in sorted(holdings) for _ in holdings[u]], dtype=np.int64)
    pair_item = np.array([i for u in sorted(holdings) for i in sorted(holdings[u])], dtype=np.int64)
    codes = {u: c for c, u in enumerate(sorted(holdings))}
    ptr, sampled = sampled_item_users(np.array([codes[u] for u in pair_user.tolist()]), pair_item, n_items, cap, seed)
    by_code = {c: u for u, c in codes.items()}
    sim = {}
    for i in range(n_items):
        users = [by_code[c] for c in sampled[ptr[i]:ptr[i + 1]].tolist()]
        for j in range(n_items):
            if j == i:
                continue
            s = 0.0
            for u, v in itertools.combinations(users, 2):
                if j in holdings[u] and j in holdings[v]:
                    w_u = (len(holdings[u]) + offset) ** -beta
                    w_v = (len(holdings[v]) + offset) ** -beta
                    s += w_u * w_v / (alpha + len(holdings[u] & holdings[v]))
            if s > 0:
                sim[(i, j)] = s
    return sim


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 6), st.integers(0, 9)), min_size=1, max_size=60),
       st.sampled_from([None, 2, 3]), st.sampled_from([None, 1, 2, 4]), st.floats(0.0, 2.0), st.floats(0.0, 1.0),
       st.integers(0, 3))
def test_swing_equals_the_brute_force(positives, cap, item_cap, alpha, beta, seed):
    positives.sort()  # (user, time) order
    user = np.array([p[0] for p in positives], dtype=np.int32)
    time_ms = np.array([p[1] for p in positives], dtype=np.int64)  # few distinct times: ties between items
    item = np.array([p[2] for p in positives], dtype=np.int32)
    n_items = 10
    model = fit_swing(user, item, n_items, alpha=alpha, beta=beta, offset=1.0, max_users_per_item=cap,
                      max_items_per_user=item_cap, time_ms=time_ms, neighbors=None, seed=seed)
    got = {(i, int(j)): float(v) for i in range(n_items)
           for j, v in zip(model.neighbors[i].indices, model.neighbors[i].data)}
    want = brute_swing(user, item, n_items, alpha=alpha, beta=beta, offset=1.0, cap=cap, seed=seed, time_ms=time_ms,
                       item_cap=item_cap)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4), st.integers(0, 5)), min_size=20, max_size=60),
       st.sampled_from([None, 2, 3, 4]), st.integers(0, 3))
def test_swing_item_cap_against_the_brute_force(positives, item_cap, seed):
    """Dense logs over 6 items, where users hold more items than the cap, so cutting the wrong items shows."""
    positives.sort()
    user = np.array([p[0] for p in positives], dtype=np.int32)
    time_ms = np.array([p[1] for p in positives], dtype=np.int64)
    item = np.array([p[2] for p in positives], dtype=np.int32)
    model = fit_swing(user, item, 6, alpha=1.0, beta=0.5, offset=1.0, max_users_per_item=None,
                      max_items_per_user=item_cap, time_ms=time_ms, neighbors=None, seed=seed)
    got = {(i, int(j)): float(v) for i in range(6) for j, v in zip(model.neighbors[i].indices, model.neighbors[i].data)}
    want = brute_swing(user, item, 6, alpha=1.0, beta=0.5, offset=1.0, cap=None, seed=seed, time_ms=time_ms,
                       item_cap=item_cap)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7), st.integers(-3, 3)), max_size=40), st.integers(1, 5))
def test_recent_pairs_keeps_each_user_s_latest_items(positives, cap):
    """recent_pairs against a dictionary: unsorted input, negative and tied times (ties: the smaller item)."""
    user = np.array([p[0] for p in positives], dtype=np.int64)
    item = np.array([p[1] for p in positives], dtype=np.int64)
    time_ms = np.array([p[2] for p in positives], dtype=np.int64)
    latest: dict[int, dict[int, int]] = {}
    for u, i, t in positives:
        latest.setdefault(u, {})[i] = max(t, latest.get(u, {}).get(i, t))
    want = sorted((u, i) for u, last in latest.items() for i in sorted(last, key=lambda i: (-last[i], i))[:cap])
    pu, pi = recent_pairs(user, item, time_ms, cap)
    assert list(zip(pu.tolist(), pi.tolist())) == want  # pairs ascending, as distinct_pairs returns them


def test_swing_caps_must_be_whole_numbers():
    with pytest.raises(ValueError, match=r"max_items_per_user=200.5: a whole number"):
        SwingChannel(max_items_per_user=200.5)
    with pytest.raises(ValueError, match=r"max_users_per_item=1: a whole number of at least 2"):
        SwingChannel(max_users_per_item=1)


def test_swing_by_hand():
    # users 0: {1, 2}, 1: {1, 2, 3}, 2: {2, 3}; offset 0, beta 1: w = 1/2, 1/3, 1/2.
    # sim(1, 2): U_1 = {0, 1}, the pair holds 2, |I_0 ∩ I_1| = 2 -> (1/2)(1/3) / (1 + 2) = 1/18.
    # sim(2, 3): U_2 = {0, 1, 2}; pairs holding 3: {1, 2}, |I_1 ∩ I_2| = 2 -> (1/3)(1/2) / 3 = 1/18.
    # sim(2, 1): pairs of U_2 holding 1: {0, 1} -> 1/18. sim(3, 1): U_3 = {1, 2}, 2 lacks 1 -> none.
    user = np.array([0, 0, 1, 1, 1, 2, 2])
    item = np.array([1, 2, 1, 2, 3, 2, 3])
    sim = fit_swing(user, item, 4, alpha=1.0, beta=1.0, offset=0.0, max_users_per_item=None, neighbors=None).neighbors
    assert sim[1, 2] == pytest.approx(1 / 18) and sim[2, 3] == pytest.approx(1 / 18) and sim[2, 1] == pytest.approx(1 / 18)
    assert sim[3, 1] == 0 and sim[1, 3] == 0 and sim[3, 2] == pytest.approx(1 / 18)


def test_the_user_cap_draws_that_many_users_per_item_reproducibly():
    rng = np.random.default_rng(0)
    user, item = distinct_pairs(rng.integers(0, 300, 5000), rng.integers(0, 20, 5000))
    ptr, users = sampled_item_users(user, item, 20, 10, seed=4)
    full_ptr, full = sampled_item_users(user, item, 20, None, seed=4)
    assert (np.diff(ptr) == np.minimum(np.diff(full_ptr), 10)).all()
    for i in range(20):
        row = users[ptr[i]:ptr[i + 1]]
        assert (np.diff(row) > 0).all() and set(row) <= set(full[full_ptr[i]:full_ptr[i + 1]])
    again = sampled_item_users(user, item, 20, 10, seed=4)
    other = sampled_item_users(user, item, 20, 10, seed=5)
    assert np.array_equal(again[1], users) and not np.array_equal(other[1], users)


def test_popularity_decays_by_half_life():
    cutoff = 10 * DAY_MS
    item = np.array([0, 0, 1, 2])
    time_ms = np.array([cutoff - DAY_MS, cutoff - 3 * DAY_MS, cutoff - DAY_MS, cutoff - 5 * DAY_MS])
    scores = popularity_scores(item, time_ms, cutoff, 4, half_life_days=2.0)
    assert scores.tolist() == pytest.approx([2 ** -0.5 + 2 ** -1.5, 2 ** -0.5, 2 ** -2.5, 0.0])
    assert popularity_scores(item, time_ms, cutoff, 4, None).tolist() == [2, 1, 1, 0]
    fitted = PopularChannel(half_life_days=2.0).fit(FitData(np.zeros(4), item, time_ms, cutoff), 4)
    hist = Ragged(np.array([0, 0, 3]), np.array([1, 2, 3]))
    got = fitted.retrieve(hist, budget=2)
    assert [got.row(0).tolist(), got.row(1).tolist()] == [[0, 1], [0, 1]]
    assert fitted.retrieve(hist, budget=10).row(0).tolist() == [0, 1, 2]  # item 3 has no positive


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.lists(st.integers(0, 15), max_size=8), min_size=4, max_size=4), min_size=1, max_size=3))
def test_union_is_the_deduplicated_row_union(channels):
    parts = []
    for rows in channels:
        sets = [sorted(set(r)) for r in rows]
        indptr = np.r_[0, np.cumsum([len(r) for r in sets])].astype(np.int64)
        parts.append(Ragged(indptr, np.array(sum(sets, []), dtype=np.int32)))
    got = union(parts, 16)
    for r in range(4):
        want = sorted(set().union(*(set(rows[r]) for rows in channels)))
        assert got.row(r).tolist() == want
    assert got.values.dtype == np.int32


def _system(names: list[str], budget: int) -> list[BudgetedChannel]:
    node = OmegaConf.create({"channels": [{"_target_": OmegaConf.load(CONF_DIR / "existing" / f"{n}.yaml")._target_,
                                           "name": n, "budget": budget} for n in names]})
    return build_channels(node, n_items=40)


@pytest.mark.parametrize("name", ROLLING_CHANNELS)
def test_under_rolling_every_channel_sees_no_positive_of_the_requests_day(name, monkeypatch):
    req, n_items = random_requests(3)
    (channel,) = _system([name], budget=6)
    seen = []
    cls = type(channel.channel)
    fit = cls.fit

    def spy(self, data, n):
        seen.append(data)
        return fit(self, data, n)

    monkeypatch.setattr(cls, "fit", spy)
    by_day = {}
    r, by_channel, info = existing_retrieval(req.positives, req.history(), req.t1, n_items, fit="rolling",
                                             first_test_ms=req.first_test_ms, channels=[channel])
    assert [d.cutoff_ms for d in seen] == info["cutoffs_ms"] and len(seen) >= 2
    for data in seen:
        by_day[data.cutoff_ms] = data
        assert (data.time_ms < data.cutoff_ms).all()
        assert len(data.item) == int((req.positives.time_ms < data.cutoff_ms).sum())  # every earlier positive
    assert by_channel[name] is r and (r.lengths() <= 6).all()
    # each request's R_u against its own fit, built here: every positive before its day's midnight, one row
    fresh, pos, hist, fits = _system([name], budget=6)[0].channel, req.positives, req.history(), {}
    for row in range(req.n):
        cutoff = int(day_start_ms(req.t1[row : row + 1])[0])
        assert cutoff <= req.t1[row] < cutoff + DAY_MS
        keep = pos.time_ms < cutoff
        if not keep.any():
            assert r.lengths()[row] == 0
            continue
        if cutoff not in fits:
            fits[cutoff] = fit(fresh, FitData(pos.user[keep], pos.item[keep], pos.time_ms[keep], cutoff), n_items)
        one = np.array([row])
        assert r.row(row).tolist() == fits[cutoff].retrieve(hist.take(one), 6, rows=one).row(0).tolist()


def test_multi_is_the_union_of_its_channels_and_records_each():
    req, n_items = random_requests(1)
    channels = _system(["itemcf", "swing", "popular"], budget=5)
    r, by_channel, info = existing_retrieval(req.positives, req.history(), req.t1, n_items, fit="rolling",
                                             first_test_ms=req.first_test_ms, channels=channels)
    assert list(by_channel) == ["itemcf", "swing", "popular"]
    for row in range(req.n):
        want = set().union(*(set(p.row(row).tolist()) for p in by_channel.values()))
        assert r.row(row).tolist() == sorted(want) and len(want) <= 15
    assert (r.lengths() < sum(p.lengths() for p in by_channel.values())).any()  # channels overlap: de-duplicated
    assert [c["name"] for c in info["channels"]] == ["itemcf", "swing", "popular"]
    stats = channel_statistics(req, r, by_channel, n_items)
    for split in stats["splits"].values():
        shares = split["channel_rtg_share"]
        assert max(shares.values()) <= 1 and sum(shares.values()) >= 1 - 1e-12  # every RTG target from some channel
        assert all(split["channel_only_rtg_share"][n] <= shares[n] for n in shares)


def test_channel_configs_are_validated_by_key():
    base = ("dataset.preset=tiny",)
    with pytest.raises(ConfigError, match=r"existing\.alpha=-1\.0: must be 0 or more"):
        validate(compose_config(*base, "existing=swing", "existing.alpha=-1.0"))
    with pytest.raises(ConfigError, match=r"unknown key 'existing\.shrinkage'.*did you mean 'existing\.shrink'"):
        validate(compose_config(*base, "+existing.shrinkage=3"))
    with pytest.raises(ConfigError, match=r"existing\.channels\[2\]\.half_life_days=0\.0"):
        validate(compose_config(*base, "existing=multi", "+existing.channels.2.half_life_days=0.0"))
    with pytest.raises(ConfigError, match=r"unknown key 'existing\.channels\[1\]\.window'"):
        validate(compose_config(*base, "existing=multi", "+existing.channels.1.window=5"))
    with pytest.raises(ConfigError, match="names must differ"):
        validate(compose_config(*base, "existing=multi", "existing.channels.1.name=itemcf"))
    with pytest.raises(ConfigError, match=r"existing\.channels\[0\]\.budget=0"):
        validate(compose_config(*base, "existing=multi", "existing.channels.0.budget=0"))
    with pytest.raises(ConfigError, match=r"existing\.budget: with existing\.channels each channel has its own"):
        validate(compose_config(*base, "existing=multi", "+existing.budget=300"))
    with pytest.raises(ConfigError, match=r"unknown key 'existing\.chanels'") as single:
        validate(compose_config(*base, "existing=swing", "+existing.chanels=3"))
    assert "channels" not in str(single.value).split(" has ")[1]  # a one-channel system does not offer `channels`


def test_uncapped_swing_refuses_a_pair_table_too_large(monkeypatch):
    import bench.existing.swing as swing

    user, item = np.arange(30) % 10, np.arange(30) % 3  # 10 users on each of 3 items
    assert swing.fit_swing(user, item, 3, max_users_per_item=None).neighbors.nnz > 0
    monkeypatch.setattr(swing, "PAIR_TABLE_LIMIT", 8 * 9 * 9)  # a 9 x 9 table at most
    with pytest.raises(ConfigError, match="an item has 10 users"):
        swing.fit_swing(user, item, 3, max_users_per_item=None)
    assert swing.fit_swing(user, item, 3, max_users_per_item=5).neighbors.nnz > 0  # a cap bounds it


def test_multi_runs_end_to_end_and_records_every_channels_share(tmp_path: Path, synthetic_cache: Path):
    cfg = compose_config("dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}", "existing=multi",
                         "existing.channels.0.budget=8", "existing.channels.1.budget=5", "existing.channels.2.budget=3",
                         "model=dssm", "increc=na", "train.max_epochs=2", "train.max_batches=2", "train.progress=false",
                         "eval.seed_control=false")
    rec = run(cfg, tmp_path).record
    assert rec["existing_budget"] == 16 and rec["sample_stats"]["mean_retrieved"] <= 16
    by = rec["sample_stats"]["rtg_by_channel"]
    assert set(by["mean_retrieved_by_channel"]) == {"itemcf", "swing", "popular"}
    assert by["mean_retrieved"] == pytest.approx(rec["sample_stats"]["mean_retrieved"])
    assert set(by["splits"]) == {"train", "valid", "test"}
    assert [c["budget"] for c in rec["existing_fits"]["channels"]] == [8, 5, 3]
    assert rec["config"]["existing"]["name"] == "multi"
    assert any(k.startswith("Inc@") for k in rec["metrics"])


def test_twotower_fits_once_on_the_training_period_or_every_refit_days(tmp_path: Path, synthetic_cache: Path,
                                                                       monkeypatch):
    import bench.existing.twotower as twotower
    import bench.engine.train

    trained: list[int] = []
    real_train = bench.engine.train.train

    def spy_train(model, ts, cfg, seed, device, desc, evaluate=None, negatives="uniform"):
        if desc.startswith("existing twotower"):  # what the channel trains on, read from the run's own requests
            req = _bound_requests[0]
            cutoff = ts.samples.requests.first_valid_ms
            trained.append(int(cutoff))
            assert (req.t1[ts.rows] < cutoff).all() and not req.is_test[ts.rows].any()
            times = req.target_times[np.isin(req.targets.row_ids(), ts.rows)]
            assert ts.targets.values.size == int((times < cutoff).sum())  # every target before the cutoff, no other
        return real_train(model, ts, cfg, seed, device, desc, evaluate, negatives)

    _bound_requests: list = []
    real_bind = twotower.TwoTowerChannel.bind

    def spy_bind(self, cfg, ds, req):
        _bound_requests[:] = [req]
        return real_bind(self, cfg, ds, req)

    monkeypatch.setattr(bench.engine.train, "train", spy_train)
    monkeypatch.setattr(twotower.TwoTowerChannel, "bind", spy_bind)
    common = ("dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}", "existing=twotower", "existing.epochs=1",
              "model=dssm", "increc=off", "train.max_epochs=1", "train.max_batches=2", "train.progress=false",
              "eval.seed_control=false", "existing.model=dssm")
    once = run(compose_config(*common), tmp_path / "once").record
    assert trained == [once["sample_stats"]["first_valid_ms"]]  # one fit, on the training period
    assert once["existing_fits"]["n_fits"] >= 2  # asked once per day
    trained.clear()
    rolling = run(compose_config(*common, "existing.refit_days=2"), tmp_path / "every2").record
    days = rolling["existing_fits"]["cutoffs_ms"]
    assert trained[0] == days[0] and all(b - a >= 2 * DAY_MS for a, b in zip(trained, trained[1:]))
    assert all((t - days[0]) % (2 * DAY_MS) == 0 for t in trained)  # refit days: the first, then every 2nd
    for day in days:  # every day's model was trained before that day, at most 2 days before
        assert any(t <= day < t + 2 * DAY_MS for t in trained)
    assert 0 < rolling["sample_stats"]["mean_retrieved"] <= rolling["existing_budget"]
    trained.clear()
    period = run(compose_config(*common, "existing.fit=train_period"), tmp_path / "period").record
    assert trained == [period["sample_stats"]["first_test_ms"]]  # train_period: its own cutoff


def test_twotower_cache_key_holds_what_its_model_reads():
    from bench.pipeline.prepare import cache_parts

    def key(*over):
        return cache_parts(compose_config("dataset.preset=tiny", *over), "fp")

    assert key("existing=twotower") != key("existing=twotower", "train.lr=0.05")  # R_u from another training
    assert key("existing=twotower") == key("existing=twotower", "train.progress=false")
    assert "existing_channels" not in key("existing=itemcf")
    assert key("existing=itemcf") == key("existing=itemcf", "train.lr=0.05")  # item-CF reads no training setting


def test_twotower_config_errors():
    with pytest.raises(ConfigError, match=r"existing\.model='nope': no conf/model/nope\.yaml"):
        validate(compose_config("dataset.preset=tiny", "existing=twotower", "existing.model=nope"))
    with pytest.raises(ConfigError, match=r"existing\.refit_days=0"):
        validate(compose_config("dataset.preset=tiny", "existing=twotower", "existing.refit_days=0"))


def test_compare_tabulates_each_systems_labels(tmp_path: Path, synthetic_cache: Path, capsys):
    from bench.pipeline.compare_existing import main

    out = tmp_path / "systems.json"
    assert main(["dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}", "cache.enabled=false", "--out", str(out),
                 "--", "existing=itemcf", "--", "existing=multi", "existing.channels.0.budget=8"]) == 0
    printed = capsys.readouterr().out
    rows = __import__("json").loads(out.read_text())["systems"]
    assert [r["budget"] for r in rows] == [rows[0]["budget"], 8 + 60 + 40]
    assert "| existing=itemcf |" in printed and "popular" in printed and f"{rows[1]['mean_retrieved']:.3f}" in printed
    assert all(0 <= r["itg_share"]["test"] <= 1 for r in rows)


# --- the two-tower channel's approximate search (existing.index=ivf) ---

def _vectors(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    return rng.standard_normal((n, dim)).astype(np.float32)


@pytest.mark.parametrize("interests", [1, 3])
def test_ivf_probing_every_list_is_exact_search(interests: int):
    from bench.evaluation.retrieve import IVFIndex, recall_against_exact, top_k

    rng = np.random.default_rng(0)
    items, users = _vectors(rng, 2000), _vectors(rng, 40 * interests).reshape(40, interests, 16)
    index = IVFIndex(items, lists=20, probe=20, seed=0)
    exact = top_k(users, items, 25)
    approx = index.top_k(users, 25)
    assert np.array_equal(np.sort(approx, axis=1), np.sort(exact, axis=1))
    assert recall_against_exact(approx, exact) == 1.0


def test_ivf_few_probes_pad_with_minus_one_and_repeat_under_a_seed():
    from bench.evaluation.retrieve import IVFIndex, default_ivf_lists, recall_against_exact, top_k

    rng = np.random.default_rng(1)
    items, users = _vectors(rng, 400), _vectors(rng, 60).reshape(30, 2, 16)
    index = IVFIndex(items, lists=10, probe=1, seed=3)
    approx = index.top_k(users, 120)  # 2 interests x 1 list of ~40 items: fewer than 120 found
    assert (approx == -1).any()
    for row in approx:
        found = row[row >= 0]
        assert len(set(found.tolist())) == len(found) and found.max() < len(items)
        assert (row[len(found):] == -1).all()  # padding only after what was found
    assert np.array_equal(approx, IVFIndex(items, lists=10, probe=1, seed=3).top_k(users, 120))
    assert 0 < recall_against_exact(approx, top_k(users, items, 120)) < 1
    assert default_ivf_lists(4_370_000) == 8362 and default_ivf_lists(100) == 2 and default_ivf_lists(5) == 1
    with pytest.raises(ValueError, match="1 to 400 lists"):
        IVFIndex(items, lists=401)


def test_twotower_ivf_search_is_recorded_with_its_recall(tmp_path: Path, synthetic_cache: Path):
    common = ("dataset.preset=tiny", f"dataset.cache_dir={synthetic_cache}", "existing=twotower", "existing.epochs=1",
              "model=dssm", "increc=off", "train.max_epochs=1", "train.max_batches=2", "train.progress=false",
              "eval.seed_control=false", "existing.model=dssm", "existing.index=ivf", "cache.enabled=false")
    full = run(compose_config(*common, "existing.ivf_lists=4", "existing.ivf_probe=4"), tmp_path / "all").record
    (search,) = full["existing_fits"]["channels"][0]["search"]  # one fit, on the training period
    assert search["index"] == "ivf" and search["lists"] == search["probe"] == 4
    assert search["recall_at_budget"] >= 0.99  # every list probed: exact search, ties of near-equal scores aside
    one = run(compose_config(*common, "existing.ivf_lists=4", "existing.ivf_probe=1", "existing.refit_days=2"),
              tmp_path / "one").record
    fits = one["existing_fits"]["channels"][0]["search"]
    assert len(fits) >= 2 and all(f["recall_at_budget"] < 1 and f["probe"] == 1 for f in fits)  # one per refit
    assert 0 < one["sample_stats"]["mean_retrieved"] <= one["existing_budget"]
    with pytest.raises(ConfigError, match=r"existing\.ivf_lists=1000000: at most the pool's"):
        run(compose_config(*common, "existing.ivf_lists=1000000"), tmp_path / "too_many")


def test_twotower_search_config_errors():
    for key, match in (("existing.index=hnsw", r"existing\.index='hnsw'"), ("existing.ivf_probe=0", r"existing\.ivf_probe=0"),
                       ("existing.ivf_lists=2.5", r"existing\.ivf_lists=2\.5")):
        with pytest.raises(ConfigError, match=match):
            validate(compose_config("dataset.preset=tiny", "existing=twotower", key))
