"""Training batches and serving inputs built from Samples with array operations (no loop per row)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.protocol.ragged import Ragged, segment_ranges
from bench.protocol.requests import calendar_day
from bench.protocol.samples import Samples
from models.increc import TrainBatch
from models.inputs import UserInput


@dataclass
class TrainingSet:
    """Per-request arrays a batch is cut from, restricted to what training may see."""

    samples: Samples
    profiles: np.ndarray  # [n_users, F] int64
    n_items: int
    max_len: int
    targets: Ragged  # training targets of X_u (positives of later splits removed)
    target_is_itg: np.ndarray  # [len(targets.values)] bool
    exposures: Ragged  # training ETG (impressions of later splits removed)
    rows: np.ndarray  # request ids to train on
    with_exposures: bool  # exposures are positives too (L_align)
    labels_changed: dict | None = None  # with permuted labels: the share of training flags changed, and its expectation

    def log_q(self) -> np.ndarray:
        """[n_items] log frequency of each item among the training positives (targets, and exposures
        when they are positives): the in-batch sampling distribution the logQ correction removes."""
        items = self.targets.values
        if self.with_exposures:
            items = np.concatenate([items, self.exposures.values])
        counts = np.bincount(items, minlength=self.n_items).astype(np.float64)
        with np.errstate(divide="ignore"):
            return np.log(counts / max(counts.sum(), 1.0))

    @classmethod
    def build(cls, samples: Samples, profiles: np.ndarray, n_items: int, max_len: int, *, with_exposures: bool,
              shuffle_labels_seed: int | None = None, shuffle_within: str = "request") -> "TrainingSet":
        """The training requests' arrays; `shuffle_labels_seed` set: RTG / ITG flags permuted at random among
        the training targets of each request (`shuffle_within="request"`, v2's na_shuffled) or of each calendar
        day of T1 (`"day"`, v3's na_permuted: the day's ITG share kept, the link to R_u broken; PROTOCOL 5)."""
        req = samples.requests
        usable = samples.train_target_mask()
        targets = req.targets.mask(usable)
        is_itg = samples.is_itg[usable]
        changed = None
        if shuffle_labels_seed is not None:
            rows = targets.row_ids()  # [T] the request of each training target, ascending
            groups = rows if shuffle_within == "request" else calendar_day(req.t1)[rows]  # the day of each target's T1
            shuffled = permute_within_groups(groups, is_itg, np.random.default_rng(shuffle_labels_seed))
            changed = {"share": float((shuffled != is_itg).mean()) if len(is_itg) else 0.0,
                       "expected": expected_changed_share(groups, is_itg), "within": shuffle_within,
                       "itg_share": float(is_itg.mean()) if len(is_itg) else 0.0}
            is_itg = shuffled
        exposures = req.exposures.mask(samples.train_exposure_mask())
        has = targets.lengths() > 0
        if with_exposures:  # L_align also learns from train requests without targets
            has = has | (exposures.lengths() > 0)
        rows = np.flatnonzero(req.is_train & has)
        return cls(samples, profiles, n_items, max_len, targets, is_itg, exposures, rows, with_exposures, changed)


def permute_within_groups(groups: np.ndarray, flags: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N] `flags` permuted at random within each group (groups [N], any order): each group keeps its count of
    True. For sorted groups (one per request) this is v2's within-request shuffle, draw for draw."""
    order = np.lexsort((rng.random(len(groups)), groups))  # each group's positions, in a random order
    slots = np.argsort(groups, kind="stable")  # each group's positions, in their own order
    out = np.empty_like(flags)
    out[slots] = flags[order]
    return out


def shuffle_within_rows(rows: np.ndarray, flags: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N] `flags` permuted at random within each row (rows [N] sorted): each row keeps its count of True."""
    return permute_within_groups(rows, flags, rng)


def expected_changed_share(groups: np.ndarray, flags: np.ndarray) -> float:
    """The share of flags a uniform permutation within each group changes in expectation: Σ_g 2·k_g(n_g − k_g)/n_g
    over all N flags (2·p·(1 − p) for one group with ITG share p; PROTOCOL 5)."""
    if len(flags) == 0:
        return 0.0
    _, inverse = np.unique(groups, return_inverse=True)
    n = np.bincount(inverse).astype(np.float64)
    k = np.bincount(inverse, weights=flags.astype(np.float64))
    return float(np.sum(2.0 * k * (n - k) / n) / len(flags))


def user_input(samples: Samples, profiles: np.ndarray, rows: np.ndarray, max_len: int) -> UserInput:
    """(P_u, B_u) of the given requests; histories left-aligned (oldest first), as wide as the longest."""
    req = samples.requests
    starts = np.maximum(req.hist_start[rows], req.hist_end[rows] - max_len)  # a tower may read fewer than requests.max_len
    ends = req.hist_end[rows]
    lens = ends - starts
    width = int(lens.max()) if len(lens) else 0
    r, idx = segment_ranges(starts, ends)
    col = np.arange(len(idx)) - np.repeat(np.cumsum(lens) - lens, lens)  # position within the history
    items = np.zeros((len(rows), width), dtype=np.int64)
    tabs = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    items[r, col] = req.positives.item[idx]
    tabs[r, col] = req.positives.tab[idx]
    mask[r, col] = True
    return UserInput(
        profile=torch.from_numpy(profiles[req.user[rows]]),
        items=torch.from_numpy(items),
        tabs=torch.from_numpy(tabs),
        mask=torch.from_numpy(mask),
    )


def _hit_mask(row_of: np.ndarray, items: np.ndarray, negatives: np.ndarray, n_rows: int) -> np.ndarray:
    """[n_rows, M] True where negative m equals one of row r's items (row_of[p], items[p])."""
    order = np.argsort(negatives, kind="stable")
    sorted_neg = negatives[order]
    lo = np.searchsorted(sorted_neg, items, side="left")
    hi = np.searchsorted(sorted_neg, items, side="right")
    pair, pos = segment_ranges(lo, hi)
    mask = np.zeros((n_rows, len(negatives)), dtype=bool)
    mask[row_of[pair], order[pos]] = True
    return mask


def _padded(ragged: Ragged, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    values, mask = ragged.padded(rows)
    return torch.from_numpy(values.astype(np.int64)), torch.from_numpy(mask)


SAMPLERS = ("uniform", "in_batch")


def train_batch(ts: TrainingSet, rows: np.ndarray, n_negatives: int, rng: np.random.Generator,
                sampler: str = "uniform", log_q: np.ndarray | None = None) -> TrainBatch:
    """The TrainBatch of requests `rows`.

    Negatives: `uniform` draws `n_negatives` items uniformly from the pool (no correction needed);
    `in_batch` uses the batch's own positives (targets, and exposures when they are positives), with
    the logQ correction from `log_q` ([n_items], TrainingSet.log_q()).
    """
    b = len(rows)
    x = ts.targets.take(rows)
    etg = ts.exposures.take(rows)
    if sampler == "uniform":
        negatives = rng.integers(0, ts.n_items, size=n_negatives)
    elif sampler == "in_batch":
        negatives = np.concatenate([x.values, etg.values] if ts.with_exposures else [x.values]).astype(np.int64)
    else:
        raise ValueError(f"negative sampler {sampler!r}; choose one of {list(SAMPLERS)}")
    x_rows = x.row_ids()
    sub_itg = _take_flags(ts.targets, ts.target_is_itg, rows)
    etg_rows = etg.row_ids()
    rtg = Ragged.from_rows(x_rows[~sub_itg], x.values[~sub_itg], b)
    rtg_pad, rtg_mask = _padded(rtg, np.arange(b))
    etg_pad, etg_mask = _padded(etg, np.arange(b))
    return TrainBatch(
        user=user_input(ts.samples, ts.profiles, rows, ts.max_len),
        negatives=torch.from_numpy(negatives),
        x_rows=torch.from_numpy(x_rows),
        x_items=torch.from_numpy(x.values.astype(np.int64)),
        x_is_itg=torch.from_numpy(sub_itg),
        x_itg_index=torch.from_numpy(np.flatnonzero(sub_itg)),  # host-built: the step indexes without a device sync
        x_neg_mask=torch.from_numpy(_hit_mask(x_rows, x.values, negatives, b)),
        rtg=rtg_pad,
        rtg_mask=rtg_mask,
        etg_rows=torch.from_numpy(etg_rows),
        etg_items=torch.from_numpy(etg.values.astype(np.int64)),
        etg=etg_pad,
        etg_mask=etg_mask,
        etg_neg_mask=torch.from_numpy(_hit_mask(etg_rows, etg.values, negatives, b)),
        **_logq(log_q if sampler == "in_batch" else None, negatives, x.values, etg.values),
    )


def _logq(log_q: np.ndarray | None, negatives: np.ndarray, targets: np.ndarray, exposed: np.ndarray) -> dict:
    if log_q is None:
        return {}
    as_tensor = lambda items: torch.from_numpy(log_q[items].astype(np.float32))  # noqa: E731
    return {"neg_logq": as_tensor(negatives), "x_logq": as_tensor(targets), "etg_logq": as_tensor(exposed)}


def _take_flags(ragged: Ragged, flags: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The per-value flags of `ragged.take(rows)`."""
    return Ragged(ragged.indptr, flags).take(rows).values
