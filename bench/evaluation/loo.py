"""RecBole's sequential protocol: leave-one-out split and full-ranking NDCG@K / Hit@K.

RecBole 1.2.1's rules for sequential models (`eval_args: {order: TO, split: {LS: valid_and_test},
mode: full}`), written out so that they can be tested and reused (the SASRec-vs-RecBole benchmark
itself evaluates through RecBole's own Trainer):
- Split: a user's interactions in time order (stable); every interaction but the first is a
  target (of the prefix before it). Of a user's T = n - 1 targets, the last goes to test and the
  one before it to validation, keeping at least one for training: n = 2 gives no test item, n = 3
  a test item only, n >= 4 both. (RecBole orders by its normalised float32 timestamps; on
  ml-100k that reorders ties for a few users.)
- Full ranking: every item of the pool is scored and the top K taken by torch.topk. For sequential
  models RecBole masks no history (only its padding item 0); `mask_history=True` gives the
  general-recommender rule instead (history items masked, the target never).
- NDCG@K per user = sum over hits at rank r of 1/log2(r + 1), over the ideal DCG of min(|pos|, K)
  hits; with one target per user that is 1/log2(rank + 1) when rank <= K, else 0. The metric is
  the mean over evaluated users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.protocol.ragged import Ragged


@dataclass
class LeaveOneOut:
    """Per user (dense codes 0..U-1): the training sequence and the validation / test targets."""

    train: Ragged  # [U] item sequences in time order
    valid_item: np.ndarray  # [U] int64, -1 when the user has no validation interaction
    test_item: np.ndarray  # [U] int64, -1 when the user has no test interaction

    def history(self, phase: str) -> Ragged:
        """The items masked from ranking: training items (valid) or training + validation items (test)."""
        if phase == "valid":
            return self.train
        if phase != "test":
            raise ValueError(f"phase={phase!r}; choose valid or test")
        extra = self.valid_item >= 0
        rows = np.concatenate([self.train.row_ids(), np.flatnonzero(extra)])
        values = np.concatenate([self.train.values, self.valid_item[extra]])
        order = np.argsort(rows, kind="stable")
        return Ragged.from_rows(rows[order], values[order], self.train.n_rows)


def leave_one_out(user: np.ndarray, item: np.ndarray, time: np.ndarray, n_users: int) -> LeaveOneOut:
    """RecBole's 'LS: valid_and_test' split for sequential models; see the module docstring.
    `train` holds each user's sequence up to (without) its validation / test items."""
    order = np.lexsort((np.arange(len(user)), time, user))  # by user, then time, ties in input order
    u, i = user[order], item[order].astype(np.int64)
    counts = np.bincount(u, minlength=n_users)
    end = np.cumsum(counts)  # [U] one past each user's last interaction
    leave = np.minimum(counts - 2, 2).clip(min=0)  # targets held out per user (T = n - 1 targets, keep one)
    test_item = np.where(leave >= 1, i[np.maximum(end - 1, 0)] if len(i) else -1, -1)
    valid_item = np.where(leave >= 2, i[np.maximum(end - 2, 0)] if len(i) else -1, -1)
    keep = np.arange(len(u)) < np.repeat(end - leave, counts)
    return LeaveOneOut(Ragged.from_rows(u[keep], i[keep], n_users), valid_item.astype(np.int64),
                       test_item.astype(np.int64))


def full_ranking_hits(scores: torch.Tensor, targets: torch.Tensor, k: int, history: Ragged | None = None,
                      rows: np.ndarray | None = None) -> torch.Tensor:
    """[B] 1-based rank of each target within the top k, 0 when not in it.

    scores [B, N] for users `rows`; targets [B] item ids. With `history`, the users' history items
    are masked first, except the target itself (RecBole's rule for non-sequential models).
    """
    if history is not None:
        scores = scores.clone()
        h = history.take(rows)
        r = torch.as_tensor(h.row_ids(), device=scores.device)
        c = torch.as_tensor(h.values, device=scores.device)
        keep = c != targets[r]
        scores[r[keep], c[keep]] = -torch.inf
    top = torch.topk(scores, k, dim=1).indices  # [B, k]
    hit = top == targets[:, None]  # [B, k]
    position = torch.argmax(hit.int(), dim=1) + 1
    return torch.where(hit.any(dim=1), position, torch.zeros_like(position))


def ndcg_hit(ranks: torch.Tensor) -> tuple[float, float]:
    """Mean NDCG@K and Hit@K from full_ranking_hits' ranks (0 = not in the top K)."""
    r = ranks.double()
    gain = torch.where(r > 0, 1.0 / torch.log2(r + 1.0), torch.zeros_like(r))
    return float(gain.mean()), float((r > 0).double().mean())
