"""bench.evaluation.loo: RecBole's leave-one-out split (worked by hand) and full-ranking NDCG/Hit, checked against
RecBole's own Collector + Evaluator on the same scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.evaluation.loo import full_ranking_hits, leave_one_out, ndcg_hit


def test_split_by_hand() -> None:
    # RecBole's rule for sequential models: the first interaction is never a target; of T = n - 1
    # targets the last is test, the one before valid, and at least one stays for training.
    # user 0: items 7, 8, 9, 3 at times 3, 1, 2, 4 -> order 8, 9, 7, 3: train [8, 9], valid 7, test 3
    # user 1: three interactions 5, 6, 2 -> train [5, 6], test 2, no validation
    # user 2: two interactions -> both train (one target, kept for training); user 3: none
    user = np.array([0, 1, 0, 2, 0, 1, 0, 1, 2])
    item = np.array([7, 5, 8, 4, 9, 6, 3, 2, 1])
    time = np.array([3, 1, 1, 5, 2, 2, 4, 3, 6])
    s = leave_one_out(user, item, time, n_users=4)
    assert [list(s.train.row(u)) for u in range(4)] == [[8, 9], [5, 6], [4, 1], []]
    assert s.valid_item.tolist() == [7, -1, -1, -1]
    assert s.test_item.tolist() == [3, 2, -1, -1]
    assert [list(s.history("test").row(u)) for u in range(4)] == [[8, 9, 7], [5, 6], [4, 1], []]
    with pytest.raises(ValueError, match="valid or test"):
        s.history("train")


def test_ties_in_time_keep_input_order() -> None:
    s = leave_one_out(np.zeros(4, int), np.array([1, 2, 3, 4]), np.zeros(4, int), n_users=1)
    assert list(s.train.row(0)) == [1, 2] and s.valid_item[0] == 3 and s.test_item[0] == 4


def test_ndcg_hit_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    targets = torch.tensor([3, 0])
    # sequential rule, nothing masked: user 0 ranks 0, 1, 3 -> target 3 third, outside the top 2
    assert full_ranking_hits(scores, targets, k=2).tolist() == [0, 0]
    assert full_ranking_hits(scores, targets, k=3).tolist() == [3, 0]
    # history rule: user 0's history {0, 3} is masked except its target 3 -> order 1, 3: rank 2
    from bench.protocol.ragged import Ragged

    history = Ragged.from_rows(np.array([0, 0]), np.array([0, 3]), 2)
    ranks = full_ranking_hits(scores, targets, k=2, history=history, rows=np.array([0, 1]))
    assert ranks.tolist() == [2, 0]
    ndcg, hit = ndcg_hit(ranks)
    assert ndcg == pytest.approx((1 / np.log2(3)) / 2) and hit == 0.5


def test_same_ndcg_and_hit_as_recboles_evaluator() -> None:
    from models.recbole_compat import recbole_evaluator

    Collector, Evaluator = recbole_evaluator()
    rng = np.random.default_rng(0)
    n_users, n_items, k = 64, 40, 10
    n = 600
    split = leave_one_out(rng.integers(0, n_users, n), rng.integers(0, n_items, n), rng.integers(0, 10**6, n), n_users)
    users = np.flatnonzero(split.test_item >= 0)
    history = split.history("test")
    scores = torch.from_numpy(rng.normal(size=(len(users), n_items)))

    ours = ndcg_hit(full_ranking_hits(scores, torch.from_numpy(split.test_item[users]), k, history=history, rows=users))

    # RecBole's trainer path (_full_sort_batch_eval) for a general model: item ids shifted by one (0 is its
    # padding item), scores[:, 0] = -inf, scores[history] = -inf, then its Collector and Evaluator. This
    # checks the top-K bookkeeping and the metric formulas; the split and masking rules are tested above.
    config = {"metrics": ["NDCG", "Hit"], "topk": [k], "metric_decimal_place": 12, "device": torch.device("cpu"),
              "eval_args": {"mode": {"valid": "full", "test": "full"}}}
    rb = torch.cat([torch.zeros(len(users), 1, dtype=scores.dtype), scores], dim=1)
    rb[:, 0] = -torch.inf
    h = history.take(users)
    keep = h.values != split.test_item[users][h.row_ids()]  # RecBole's history excludes the positive items
    rb[torch.from_numpy(h.row_ids()[keep]), torch.from_numpy(h.values[keep] + 1)] = -torch.inf
    collector = Collector(config)
    collector.eval_batch_collect(rb, None, torch.arange(len(users)), torch.from_numpy(split.test_item[users] + 1))
    theirs = Evaluator(config).evaluate(collector.get_data_struct())
    assert ours == pytest.approx((theirs[f"ndcg@{k}"], theirs[f"hit@{k}"]), abs=1e-10)
    assert 0 < ours[1] < 1  # some hits and some misses: the comparison is not vacuous
