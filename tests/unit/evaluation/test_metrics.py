"""Hand-worked tests of bench.evaluation.metrics (Base / Sup / Inc / Exposure @K, PROTOCOL 5) and bench.evaluation.retrieve."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluation.metrics import Rankings, metric_counts, popularity_ranking, summarise
from bench.protocol.ragged import Ragged
from bench.evaluation.retrieve import remove_and_fill, row_membership, top_k


def ragged(rows: list[list[int]]) -> Ragged:
    lens = [len(r) for r in rows]
    return Ragged(np.r_[0, np.cumsum(lens)].astype(np.int64), np.array([x for r in rows for x in r], dtype=np.int32))


# three evaluated requests A, B, C
BASE = np.array([
    [5, 1, 7, 3],  # A
    [2, 4, 6, 8],  # B
    [0, 9, 8, 7],  # C
])
ITG = ragged([[1, 3, 9], [4], [7, 8]])
VARIANT = np.array([
    [1, 9, 5, 3, 0],  # A: without base top-2 {5, 1} -> 9, 3, 0
    [4, 2, 6, 0, 1],  # B: without {2, 4} -> 6, 0, 1
    [7, 0, 9, 8, 1],  # C: without {0, 9} -> 7, 8, 1
])
ETG = ragged([[3, 0], [6], [5]])


def declared(base: np.ndarray, ks: list[int], variant: np.ndarray | None = None) -> dict[str, float]:
    """Every declared metric the rankings allow, as the run computes them (no R_u, a dummy popularity)."""
    rankings = Rankings(base=base, popularity=np.zeros((len(base), 2 * max(ks)), dtype=np.int64),
                        retrieved=np.zeros((len(base), 0), dtype=np.int64), variant=variant)
    return summarise(metric_counts(rankings, ITG, ETG, ks))


def test_base_sup_by_hand():
    out = declared(BASE, [1, 2])
    # K = 2: Base = top 2 vs ITG: A {5,1} -> 1/3; B {2,4} -> 1/1; C {0,9} -> 0/2
    #        Sup = ranks 3-4:      A {7,3} -> 1/3; B {6,8} -> 0;   C {8,7} -> 2/2
    assert out["Base@2"] == pytest.approx((1 / 3 + 1 + 0) / 3)  # 4/9
    assert out["micro_Base@2"] == pytest.approx(2 / 6)  # (1 + 1 + 0) / (3 + 1 + 2)
    assert out["Sup@2"] == pytest.approx((1 / 3 + 0 + 1) / 3)  # 4/9
    assert out["micro_Sup@2"] == pytest.approx(3 / 6)  # (1 + 0 + 2) / 6
    # K = 1: Base = rank 1: A 5, B 2, C 0 -> no hit; Sup = rank 2: A 1 (1/3), B 4 (1/1), C 9 (0)
    assert out["Base@1"] == 0.0 and out["micro_Base@1"] == 0.0
    assert out["Sup@1"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert out["micro_Sup@1"] == pytest.approx(2 / 6)
    assert {n.split("@")[0].removeprefix("micro_") for n in out} == {"Base", "Sup", "SupR", "Pop_Base", "Pop_Sup",
                                                                     "PopR_Base"}


def test_incremental_by_hand():
    out = declared(BASE, [2], VARIANT)
    # channels (variant top 2 after removing base top 2): A [9, 3], B [6, 0], C [7, 8]
    # Inc: A {9, 3} of {1, 3, 9} -> 2/3; B none of {4} -> 0; C {7, 8} -> 2/2
    # (without de-duplication B would hit 4 and C only 7: the test tells the two apart)
    assert out["Inc@2"] == pytest.approx((2 / 3 + 0 + 1) / 3)  # 5/9
    assert out["micro_Inc@2"] == pytest.approx(4 / 6)
    # Exposure: A {3} of {3, 0} -> 1/2; B {6} of {6} -> 1; C none of {5} -> 0
    assert out["Exposure@2"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert out["micro_Exposure@2"] == pytest.approx(2 / 4)
    # K = 1: base top 1 A {5}, B {2}, C {0} -> channels A [1], B [4], C [7]: Inc = (1/3 + 1 + 1/2) / 3
    out1 = declared(BASE, [1], VARIANT)
    assert out1["Inc@1"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    assert out1["micro_Inc@1"] == pytest.approx(3 / 6)
    assert out1["Exposure@1"] == 0.0


def test_remove_and_fill():
    ranked = np.array([[10, 11, 12, 13, 14], [20, 21, 22, 23, 24]])
    exclude = np.array([[11, 13], [99, 20]])  # 99 is not in the row; 20 is its first item
    # row 0: 10, (11), 12, (13), 14 -> [10, 12, 14]; row 1: (20), 21, 22, 23 -> [21, 22, 23]
    assert remove_and_fill(ranked, exclude, 3).tolist() == [[10, 12, 14], [21, 22, 23]]
    # another row's exclusions do not apply: 20 is only removed from row 1
    assert remove_and_fill(ranked, np.array([[20, 21], [10, 11]]), 3).tolist() == [[10, 11, 12], [20, 21, 22]]
    with pytest.raises(ValueError):
        remove_and_fill(ranked, exclude, 4)  # 5 < 4 + 2


def test_row_membership_padding():
    ranked = np.array([[2, -1, 5], [-1, 0, 2]])
    pool = np.array([[5, -1], [2, -1]])
    # row 0: 2 is only in row 1's pool -> F; -1 is never a member although the pool holds -1 padding; 5 -> T
    # row 1: -1 -> F; 0 -> F; 2 -> T
    assert row_membership(ranked, pool).tolist() == [[False, False, True], [False, False, True]]
    # an all-padding pool matches nothing
    assert not row_membership(ranked, np.full((2, 3), -1)).any()


def test_popularity_ranking_ties_by_smaller_id():
    items = np.array([3, 1, 3, 2, 1, 0, 4, 4])
    # counts: 0:1, 1:2, 2:1, 3:2, 4:2, 5:0 -> [1, 3, 4] (2 each), [0, 2] (1 each), 5
    assert popularity_ranking(items, 6, 6).tolist() == [1, 3, 4, 0, 2, 5]
    assert popularity_ranking(items, 6, 4).tolist() == [1, 3, 4, 0]


def test_top_k_single_interest_against_argsort():
    rng = np.random.default_rng(0)
    users = rng.normal(size=(37, 1, 8)).astype(np.float32)
    items = rng.normal(size=(50, 8)).astype(np.float32)
    got = top_k(users, items, 7, batch=10)
    want = np.argsort(-(users[:, 0] @ items.T), axis=1, kind="stable")[:, :7]
    assert got.tolist() == want.tolist()
    with pytest.raises(ValueError):
        top_k(users, items, 51)


def test_top_k_multi_interest_against_argsort():
    rng = np.random.default_rng(1)
    users = rng.normal(size=(23, 4, 8)).astype(np.float32)
    items = rng.normal(size=(60, 8)).astype(np.float32)
    got = top_k(users, items, 9, batch=5)
    best = np.einsum("rkd,nd->rkn", users, items).max(axis=1)  # [R, N] max over interests
    want = np.argsort(-best, axis=1, kind="stable")[:, :9]
    assert got.tolist() == want.tolist()
    assert all(len(set(row)) == 9 for row in got.tolist())


def test_top_k_two_interests_share_an_item():
    # interests a = (1, 0), b = (0, 0.95); items v0 (1, 0), v1 (0, 1), v2 (.9, .9), v3 (-1, 0), v4 (.5, .1)
    # a scores: 1, 0, .9, -1, .5   -> a's top 3: 0, 2, 4
    # b scores: 0, .95, .855, 0, .095 -> b's top 3: 1, 2, 4   (both retrieve 2 and 4)
    # max:      1, .95, .9, 0, .5  -> merged: 0, 1, 2 (2 once), then 4
    users = np.array([[[1.0, 0.0], [0.0, 0.95]]], dtype=np.float32)
    items = np.array([[1, 0], [0, 1], [0.9, 0.9], [-1, 0], [0.5, 0.1]], dtype=np.float32)
    assert top_k(users, items, 3).tolist() == [[0, 1, 2]]
    assert top_k(users, items, 4).tolist() == [[0, 1, 2, 4]]


# ------------------------------------------------------------------ controls (PROTOCOL 5), from METRICS

def test_controls_by_hand():
    """SupR, IncR and Seed on the toy rankings, through the one declaration every consumer reads."""
    from bench.evaluation.metrics import CONTROLS, Rankings, metric_counts, summarise

    retrieved = np.array([[7, -1], [6, 8], [-1, -1]])  # R_u per request (padded)
    seed_base = np.array([
        [5, 3, 9, 0, 1, 2],  # A: without base top 2 {5, 1} -> 3, 9
        [4, 8, 1, 0, 2, 3],  # B: without {2, 4} -> 8, 1
        [7, 0, 9, 1, 2, 3],  # C: without {0, 9} -> 7, 1
    ])
    deep_base = np.array([
        [5, 1, 7, 3, 9, 0],  # A: without {5, 1} and R_u {7} -> 3, 9
        [2, 4, 6, 8, 1, 0],  # B: without {2, 4} and {6, 8} -> 1, 0
        [0, 9, 8, 7, 1, 2],  # C: without {0, 9} -> 8, 7
    ])
    variant = np.array([
        [1, 9, 5, 3, 0, 7],  # A: without {5, 1} and {7} -> 9, 3
        [4, 2, 6, 0, 1, 8],  # B: without {2, 4} and {6, 8} -> 0, 1
        [7, 0, 9, 8, 1, 2],  # C: without {0, 9} -> 7, 8
    ])
    pop = np.broadcast_to(np.array([9, 8, 7, 6]), (3, 4))
    r = Rankings(base=deep_base, popularity=pop, retrieved=retrieved, variant=variant, seed_base=seed_base,
                 seed2_base=deep_base)
    out = summarise(metric_counts(r, ITG, ETG, [2]))
    assert set(CONTROLS) == {"SupR", "IncR", "Seed", "SeedR", "Seed2R"}
    # SeedR: A without {5, 1} and {7} -> 3, 9: 2/3; B without {2, 4} and {6, 8} -> 1, 0: 0; C without {0, 9} -> 7, 1: 1/2
    assert out["SeedR@2"] == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    assert out["Seed2R@2"] == out["SupR@2"]  # the third base is the first one here: its R-channel is SupR's
    # popularity after R_u: A without {7} -> 9, 8: 1/3; B without {6, 8} -> 9, 7: 0; C -> 9, 8: 1/2
    assert out["PopR_Base@2"] == pytest.approx((1 / 3 + 0 + 1 / 2) / 3)
    # SupR: A {3, 9} of {1, 3, 9} -> 2/3; B {1, 0} of {4} -> 0; C {8, 7} of {7, 8} -> 1
    assert out["SupR@2"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    # Sup (ranks 3-4) for contrast: A {7, 3} -> 1/3; B {6, 8} -> 0; C {8, 7} -> 1
    assert out["Sup@2"] == pytest.approx((1 / 3 + 0 + 1) / 3)
    # IncR: A {9, 3} -> 2/3; B {0, 1} -> 0; C {7, 8} -> 1
    assert out["IncR@2"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    # Seed: A {3, 9} -> 2/3; B {8, 1} -> 0; C {7, 1} -> 1/2
    assert out["Seed@2"] == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    # popularity's top 2 {9, 8}: A 9 -> 1/3; B none -> 0; C 8 -> 1/2
    assert out["Pop_Base@2"] == pytest.approx((1 / 3 + 0 + 1 / 2) / 3)


def test_a_run_without_a_variant_or_seed_base_has_no_such_metric():
    from bench.evaluation.metrics import Rankings, metric_counts

    r = Rankings(base=BASE, popularity=np.broadcast_to(np.arange(4), (3, 4)), retrieved=np.full((3, 1), -1))
    names = {n.split("@")[0] for n in metric_counts(r, ITG, ETG, [1])}
    assert names == {"Base", "Sup", "SupR", "Pop_Base", "Pop_Sup", "PopR_Base"}


def test_remove_and_fill_on_a_whole_pool_ranking_leaves_fewer_than_k():
    ranked = np.array([[0, 1, 2]])  # the whole pool of 3 items
    out = remove_and_fill(ranked, np.array([[0, 1]]), 2, pool_size=3)
    assert out.tolist() == [[2, -1]]
    with pytest.raises(ValueError):
        remove_and_fill(ranked, np.array([[0, 1]]), 2)


def test_comparisons_are_declared_once_with_their_roles():
    """Protocol v3's comparisons (PROTOCOL 5): one primary, the paper's, the controls and the A/A, each arm a
    declared metric; Inc − SupR is not among them."""
    from bench.evaluation.metrics import COMPARISONS, METRIC_NAMES, comparison

    assert [c.name for c in COMPARISONS] == ["IncR − SupR", "Inc − Sup", "IncR − ShufR", "IncR − SeedR", "SeedR − Seed2R"]
    assert [c.role for c in COMPARISONS].count("primary") == 1 and comparison("IncR − SupR").role == "primary"
    assert comparison("SeedR − Seed2R").role == "aa" and comparison("IncR − ShufR").b_from == "twin"
    assert all(c.a in METRIC_NAMES and c.b in METRIC_NAMES for c in COMPARISONS)
    with pytest.raises(KeyError):
        comparison("Inc − SupR")
