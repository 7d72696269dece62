"""bench.existing.itemcf against PROTOCOL section 2, by hand and against a brute force written here.

The brute force loops over users and positions in plain Python and follows the protocol's words:
c_ij counts users with i and j (i != j) fewer than `window` positions apart, each user once per pair;
n_i counts users with i; sim = c / (sqrt(n_i n_j) + shrink); each item keeps its top `neighbors`
(ties: smaller id); triggers are the `n_triggers` newest distinct history items with weights
decay**age; R_u is the top `budget` items by score among those that score (ties: smaller id).
R_u is a set: it is compared sorted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.existing import itemcf
from bench.existing.itemcf import _top_per_row, fit_itemcf, retrieve, triggers
from bench.existing.kernels import _top_k_by_column, occurrences_by_item
from bench.protocol.ragged import Ragged

# ------------------------------------------------------------------------------ brute force


def brute_fit(seqs: dict[int, list[int]], window: int | None, shrink: float, neighbors: int | None):
    """{i: {j: sim}} with each row cut to its top `neighbors`."""
    co: dict[tuple[int, int], int] = {}
    n: dict[int, int] = {}
    for u, seq in seqs.items():
        for i in set(seq):
            n[i] = n.get(i, 0) + 1
        pairs = set()
        for p in range(len(seq)):
            for q in range(len(seq)):
                if p == q or seq[p] == seq[q]:
                    continue
                if window is not None and abs(p - q) > window - 1:
                    continue
                pairs.add((seq[p], seq[q]))
        for pair in pairs:  # once per user
            co[pair] = co.get(pair, 0) + 1
    full: dict[int, dict[int, float]] = {}
    for (i, j), c in co.items():
        full.setdefault(i, {})[j] = c / (math.sqrt(n[i] * n[j]) + shrink)
    out = {}
    for i, row in full.items():
        ranked = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))
        if neighbors is not None:
            ranked = ranked[:neighbors]
        out[i] = dict(ranked)
    return out


def brute_triggers(history: list[int], n_triggers: int, decay: float) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    seen = set()
    for it in reversed(history):  # newest first
        if it in seen:
            continue
        seen.add(it)
        if len(out) == n_triggers:
            break
        out.append((it, decay ** len(out)))
    return out


def brute_retrieve(sim, history: list[int], budget: int, n_triggers: int, decay: float) -> list[int]:
    score: dict[int, float] = {}
    # sum in ascending trigger id: the order a sparse product accumulates in, so that float sums of the
    # same terms are bit-identical and exact ties stay exact ties
    for t, w in sorted(brute_triggers(history, n_triggers, decay)):
        for j, s in sim.get(t, {}).items():
            score[j] = score.get(j, 0.0) + w * s
    ranked = sorted((kv for kv in score.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    return sorted(j for j, _ in ranked[:budget])


def as_dicts(model) -> dict[int, dict[int, float]]:
    m = model.neighbors.tocsr()
    out = {}
    for i in range(m.shape[0]):
        lo, hi = m.indptr[i], m.indptr[i + 1]
        if hi > lo:
            out[i] = dict(zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist()))
    return out


def to_arrays(seqs: dict[int, list[int]]):
    user = np.array([u for u in sorted(seqs) for _ in seqs[u]], dtype=np.int32)
    item = np.array([i for u in sorted(seqs) for i in seqs[u]], dtype=np.int32)
    return user, item


def random_log(seed: int, n_users: int = 40, n_items: int = 30) -> dict[int, list[int]]:
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1)  # skewed, so pairs repeat across users
    pop /= pop.sum()
    seqs = {}
    for u in range(n_users):
        if rng.random() < 0.1:
            continue  # a user without positives
        seq = rng.choice(n_items, size=int(rng.integers(1, 12)), p=pop).tolist()
        if rng.random() < 0.3 and len(seq) > 2:
            seq += seq[:2]  # repeated items within a user
        seqs[u] = seq
    return seqs


def random_histories(rng: np.random.Generator, n_items: int, n_rows: int = 25) -> list[list[int]]:
    hist = [rng.integers(0, n_items, size=int(rng.integers(0, 8))).tolist() for _ in range(n_rows)]
    hist[0] = []  # empty history: nothing retrieved
    hist[1] = [3, 3, 3]  # one distinct trigger
    return hist


def ragged(rows: list[list[int]]) -> Ragged:
    lens = [len(r) for r in rows]
    return Ragged(np.r_[0, np.cumsum(lens)].astype(np.int64), np.array([x for r in rows for x in r], dtype=np.int32))


# ------------------------------------------------------------------------------- hand-worked

# u0: 0 1 2;  u1: 1 0 1 (item 1 twice);  u2: 2 3
HAND = {0: [0, 1, 2], 1: [1, 0, 1], 2: [2, 3]}


def test_hand_worked_whole_history():
    user, item = to_arrays(HAND)
    # n0 = 2 (u0, u1), n1 = 2 (u0, u1), n2 = 2 (u0, u2), n3 = 1 (u2)
    # c01 = 2 (u0; u1 once although 0 and 1 meet twice), c02 = 1, c12 = 1 (u0), c23 = 1 (u2), c03 = c13 = 0
    # shrink 1: sim01 = 2/(sqrt(4)+1) = 2/3, sim02 = sim12 = 1/(2+1) = 1/3, sim23 = 1/(sqrt(2)+1) = sqrt2 - 1
    model = fit_itemcf(user, item, 5, window=None, shrink=1.0, neighbors=None)
    got = as_dicts(model)
    expected = {0: {1: 2 / 3, 2: 1 / 3}, 1: {0: 2 / 3, 2: 1 / 3},
                2: {0: 1 / 3, 1: 1 / 3, 3: 0.41421356237309503}, 3: {2: 0.41421356237309503}}
    assert got.keys() == expected.keys()  # item 4 never seen: no row
    for i in expected:
        assert got[i] == pytest.approx(expected[i], abs=1e-12)

    # neighbors = 2: row 2 keeps 3 (0.414) and, of the tie 0 / 1 at 1/3, the smaller id 0
    model2 = fit_itemcf(user, item, 5, window=None, shrink=1.0, neighbors=2)
    assert as_dicts(model2)[2] == pytest.approx({3: 0.41421356237309503, 0: 1 / 3})
    assert as_dicts(model2)[0] == pytest.approx({1: 2 / 3, 2: 1 / 3})

    # R_u with neighbors = 2 (row 2 = {3: .4142, 0: .3333}, row 3 = {2: .4142}, row 0 = {1: .6667, 2: .3333},
    # row 1 = {0: .6667, 2: .3333}), decay 0.9:
    #   history [3, 2, 2]: triggers 2 (w 1), 3 (w 0.9):
    #     score 3 = .41421, score 0 = .33333, score 2 = 0.9 * .41421 = .37279 -> budget 2: {3, 2}; budget 10: all 3
    #   history [0, 1], n_triggers 1: trigger 1 only -> 0 = .6667, 2 = .3333 -> {0, 2}
    #   history []: nothing
    h = ragged([[3, 2, 2], [0, 1], []])
    assert rows(retrieve(model2, h, budget=2, decay=0.9))[0] == [2, 3]
    assert rows(retrieve(model2, h, budget=10, decay=0.9))[0] == [0, 2, 3]
    r = rows(retrieve(model2, h, budget=2, n_triggers=1, decay=0.9))
    assert r[1] == [0, 2] and r[2] == []
    # decay 0.5, history [1, 0]: triggers 0 (w 1), 1 (w .5): 1 = 2/3, 2 = 1/3 + .5/3 = .5, 0 = .5 * 2/3 = 1/3
    #   -> budget 2: {1, 2}
    assert rows(retrieve(model2, ragged([[1, 0]]), budget=2, decay=0.5)) == [[1, 2]]
    # all neighbours kept: history [2] scores 3 = .4142, 0 = 1 = .3333 -> budget 2 breaks the tie for 0
    assert rows(retrieve(model, ragged([[2]]), budget=2)) == [[0, 3]]


def test_hand_worked_window():
    user, item = to_arrays(HAND)
    # window 2 = adjacent positions only: u0 gives (0,1), (1,2); u1 gives (1,0), (0,1) -> counted once;
    # u2 gives (2,3). c01 = 2, c12 = 1, c23 = 1, c02 = 0 (0 and 2 are two apart in u0)
    model = fit_itemcf(user, item, 4, window=2, shrink=1.0, neighbors=None)
    expected = {0: {1: 2 / 3}, 1: {0: 2 / 3, 2: 1 / 3}, 2: {1: 1 / 3, 3: 0.41421356237309503}, 3: {2: 0.41421356237309503}}
    got = as_dicts(model)
    assert got.keys() == expected.keys()
    for i in expected:
        assert got[i] == pytest.approx(expected[i], abs=1e-12)
    # window 3 reaches 0-2 in u0 again: c02 = 1 -> sim02 = 1/3
    assert as_dicts(fit_itemcf(user, item, 4, window=3, shrink=1.0, neighbors=None))[0] == pytest.approx({1: 2 / 3, 2: 1 / 3})
    # window 1: no pair at all
    assert fit_itemcf(user, item, 4, window=1, shrink=1.0).neighbors.nnz == 0


def test_hand_worked_triggers():
    # row 0, newest first: 7 (w 1), 5 (w .5), 3 (w .25; cut by n_triggers = 2); row 1 empty; row 2: 1 once
    r, i, w = triggers(ragged([[5, 3, 5, 7], [], [1, 1]]), n_triggers=2, decay=0.5)
    assert r.tolist() == [0, 0, 2]
    assert i.tolist() == [7, 5, 1]
    assert w.tolist() == [1.0, 0.5, 1.0]
    r, i, w = triggers(ragged([[5, 3, 5, 7]]), n_triggers=20, decay=0.5)
    assert i.tolist() == [7, 5, 3] and w.tolist() == [1.0, 0.5, 0.25]


def rows(rag: Ragged) -> list[list[int]]:
    return [sorted(rag.row(r).tolist()) for r in range(rag.n_rows)]


# ------------------------------------------------------------------------------ brute force


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("window", [2, 3, None])
@pytest.mark.parametrize("shrink", [0.0, 2.0])
def test_against_brute_force(seed, window, shrink):
    n_items = 30
    seqs = random_log(seed, n_items=n_items)
    user, item = to_arrays(seqs)
    neighbors, budget, n_trig, decay = 3, 4, 3, 0.8
    model = fit_itemcf(user, item, n_items, window=window, shrink=shrink, neighbors=neighbors)
    want = brute_fit(seqs, window, shrink, neighbors)
    got = as_dicts(model)
    assert got.keys() == want.keys()
    for i in want:
        assert got[i].keys() == want[i].keys(), f"item {i}"
        assert got[i] == pytest.approx(want[i], rel=1e-12)

    rng = np.random.default_rng(100 + seed)
    hist = random_histories(rng, n_items)
    r_t, i_t, w_t = triggers(ragged(hist), n_trig, decay)
    brute_t = [(r, it, w) for r, h in enumerate(hist) for it, w in brute_triggers(h, n_trig, decay)]
    assert list(zip(r_t.tolist(), i_t.tolist())) == [(r, it) for r, it, _ in brute_t]
    assert w_t.tolist() == pytest.approx([w for _, _, w in brute_t], rel=1e-12)

    got_r = rows(retrieve(model, ragged(hist), budget=budget, n_triggers=n_trig, decay=decay, chunk=7))
    assert got_r == [brute_retrieve(want, h, budget, n_trig, decay) for h in hist]


def test_ties_are_frequent_enough_to_matter():
    """Guard for the brute-force test: with shrink 0 the random logs do produce cut ties."""
    seqs = random_log(0)
    full = brute_fit(seqs, None, 0.0, None)
    cut_ties = 0
    for row in full.values():
        vals = sorted(row.values(), reverse=True)
        if len(vals) > 3 and vals[2] == vals[3]:
            cut_ties += 1
    assert cut_ties >= 3


@pytest.mark.parametrize("window", [2, 4, None])
def test_user_labels_do_not_matter(window):
    # the fit needs each user's positives contiguous and time-ordered, not users in id order
    seqs = random_log(7)
    user, item = to_arrays(seqs)
    ref = fit_itemcf(user, item, 30, window=window, shrink=0.0, neighbors=None).neighbors
    relabel = np.random.default_rng(1).permutation(int(user.max()) + 1)
    other = fit_itemcf(relabel[user], item, 30, window=window, shrink=0.0, neighbors=None).neighbors
    assert ref.nnz > 0 and (ref != other).nnz == 0


def test_item_ids_outside_the_pool_are_refused():
    with pytest.raises(ValueError, match="item ids"):
        fit_itemcf(np.array([0, 0]), np.array([1, 5]), 5)


def test_top_per_row():
    # rows of 5, 4 and 2 entries; keep 2 per row; ties broken by the smaller column
    import scipy.sparse as sp

    dense = np.array([
        [0.0, 3.0, 1.0, 3.0, 2.0, 1.0],  # 3.0 at cols 1 and 3 -> {1, 3}
        [1.0, 0.0, 1.0, 1.0, 1.0, 0.0],  # four-way tie -> {0, 2}
        [0.0, 0.0, 0.0, 0.0, 5.0, 4.0],  # two entries: untouched
    ])
    for k in (2,):
        out = _top_per_row(sp.csr_matrix(dense), k).toarray()
        assert (out != 0).tolist() == [
            [False, True, False, True, False, False],
            [True, False, True, False, False, False],
            [False, False, False, False, True, True],
        ]
        assert out[0, 1] == 3.0 and out[2, 4] == 5.0


@pytest.mark.parametrize("seed", range(20))
def test_top_k_by_column_against_a_full_sort(seed):
    # columns in any order (the fit hands them over in first-touch order), values with many ties
    rng = np.random.default_rng(seed)
    m = int(rng.integers(0, 60))
    cols = rng.permutation(200)[:m].astype(np.int64)
    vals = rng.integers(0, 4, m).astype(np.float64) / 3.0
    for k in (-1, 0, 1, 5, m - 1, m, m + 3):
        got = _top_k_by_column(cols, vals, k)
        ranked = np.lexsort((cols, -vals))  # by value descending, then smaller column
        kept = ranked if k < 0 else ranked[:max(k, 0)]
        expected = kept[np.argsort(cols[kept])]  # reported in ascending column order
        assert got.tolist() == expected.tolist(), (m, k)


def test_occurrences_by_item_is_a_stable_grouping():
    items = np.random.default_rng(0).integers(0, 50, 1000).astype(np.int32)
    occ_ptr, occ_pos = occurrences_by_item(items, 60)  # items 50..59 never occur
    assert occ_pos.tolist() == np.argsort(items, kind="stable").tolist()
    assert occ_ptr.tolist() == np.r_[0, np.cumsum(np.bincount(items, minlength=60))].tolist()
