"""RTG / ITG / ETG sample groups (paper 2.1) and the statistics the run records about them.

RTG = X_u ∩ R_u (targets the existing system already retrieves), ITG = X_u \\ R_u (incremental
targets), ETG = the items exposed in the request. Targets and exposures are already cut at the end of
their request's split (bench.protocol.requests); the training masks also drop test-period positives, which
is what protocol v1 (no validation split, X_u kept whole) relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.protocol.ragged import Ragged, isin, unique_sorted
from bench.protocol.requests import Requests


@dataclass
class Samples:
    """Requests with their existing-system retrieval and every target flagged RTG or ITG."""

    requests: Requests
    retrieved: Ragged | None  # R_u per request (released by bench.pipeline.run once the evaluation sets hold theirs)
    is_itg: np.ndarray  # [len(requests.targets.values)] bool: target not in R_u

    @property
    def itg(self) -> Ragged:
        return self.requests.targets.mask(self.is_itg)

    @property
    def rtg(self) -> Ragged:
        return self.requests.targets.mask(~self.is_itg)

    def itg_counts(self) -> np.ndarray:
        """[R] |ITG| per request."""
        return np.bincount(self.requests.targets.row_ids()[self.is_itg], minlength=self.requests.n)

    def train_target_mask(self) -> np.ndarray:
        """[T] targets usable for training: of a train request, from a positive before the validation
        (or test) period."""
        req = self.requests
        return req.is_train[req.targets.row_ids()] & (req.target_times < req.first_valid_ms)

    def train_exposure_mask(self) -> np.ndarray:
        """[len(exposures.values)] exposures usable for training (L_align, eq. 7): of a train request,
        impressed before the validation (or test) period (a request running past midnight is cut there)."""
        req = self.requests
        return req.is_train[req.exposures.row_ids()] & (req.exposure_times < req.first_valid_ms)

    def split_target_mask(self, split: str) -> np.ndarray:
        """[T] the targets a split's statistics count: training's usable targets (train_target_mask), or
        every target of a validation or test request."""
        if split == "train":
            return self.train_target_mask()
        req = self.requests
        return {"valid": req.is_valid, "test": req.is_test}[split][req.targets.row_ids()]

    def eval_rows(self, split: str = "test") -> np.ndarray:
        """Requests of `split` (test | valid) with a non-empty ITG: the rows every metric averages over (PROTOCOL 5)."""
        rows = self.requests.split_rows(split)
        return rows[self.itg_counts()[rows] > 0]


def split_groups(requests: Requests, retrieved: Ragged, n_items: int) -> Samples:
    """Flag every target of X_u as RTG (in R_u) or ITG (not in R_u)."""
    target_key = requests.targets.row_ids() * n_items + requests.targets.values
    retrieved_key = retrieved.row_ids() * n_items + retrieved.values
    return Samples(requests, retrieved, ~isin(target_key, retrieved_key))


def _share(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def split_statistics(samples: Samples) -> dict[str, dict[str, float | int | None]]:
    """Per split (train, valid when there is one, test): requests, targets and the ITG share, overall
    and on requests with a non-empty history (PROTOCOL 2). Training targets are those training reads."""
    req = samples.requests
    t_rows = req.targets.row_ids()
    has_history = (req.hist_end > req.hist_start)[t_rows]  # [T]
    out = {}
    for split in ("train", "valid", "test"):
        rows = req.split_rows(split)
        if split == "valid" and len(rows) == 0:
            continue
        sel = samples.split_target_mask(split)
        itg_rows = np.bincount(t_rows[sel & samples.is_itg], minlength=req.n)  # [R] ITG targets counted here
        out[split] = {
            "requests": int(len(rows)),
            "requests_nonempty_targets": int(len(unique_sorted(t_rows[sel]))),
            "targets": int(sel.sum()),
            "itg_share": _share(samples.is_itg[sel].sum(), sel.sum()),
            "itg_share_with_history": _share(samples.is_itg[sel & has_history].sum(), (sel & has_history).sum()),
            "requests_nonempty_itg": int((itg_rows[rows] > 0).sum()),
        }
    return out


def premise_statistics(samples: Samples, primary_tabs: list[int] | tuple[int, ...]) -> dict[str, float | int | None]:
    """What the IncRec claim needs the data to hold (PROTOCOL 5, premise diagnostics)."""
    req = samples.requests
    t_rows = req.targets.row_ids()
    eval_rows = samples.eval_rows("test")
    test_itg = samples.is_itg & req.is_test[t_rows]
    train_itg = samples.is_itg & samples.train_target_mask()
    n_items = int(max(req.targets.values.max(initial=0), req.exposures.values.max(initial=0))) + 1
    exposed = isin(t_rows * n_items + req.targets.values, req.exposures.row_ids() * n_items + req.exposures.values)
    empty_history = (req.hist_end == req.hist_start)[eval_rows]
    return {
        "test_itg_non_primary_share": _share((~np.isin(req.target_tabs[test_itg], primary_tabs)).sum(), test_itg.sum()),
        "train_itg_exposed_share": _share(exposed[train_itg].sum(), train_itg.sum()),
        "eval_empty_history_share": _share(empty_history.sum(), len(eval_rows)),
        "eval_mean_itg": _share(samples.itg_counts()[eval_rows].sum(), len(eval_rows)),
        "eval_requests": int(len(eval_rows)),
    }


def sample_statistics(samples: Samples, tabs: np.ndarray | None = None,
                      primary_tabs: list[int] | tuple[int, ...] = (1,)) -> dict[str, float | int | None | dict]:
    """The statistics PROTOCOL section 2 tabulates, per split, the premise diagnostics, and per-scenario ITG shares.

    `tabs`: every scenario of the log; one without any target is listed with 0 targets and a null
    share (a reported zero, never a division by zero).
    """
    req = samples.requests
    x_len = req.targets.lengths()
    itg_len = samples.itg_counts()
    t_rows = req.targets.row_ids()
    test_t = req.is_test[t_rows]
    per_tab: dict[str, dict[str, float | int | None]] = {}
    for tab in np.unique(req.target_tabs if tabs is None else np.concatenate([req.target_tabs, tabs])):
        sel = req.target_tabs == tab
        per_tab[str(int(tab))] = {
            "targets": int(sel.sum()),
            "itg_share": _share(samples.is_itg[sel].sum(), sel.sum()),
        }
    return {
        "requests": int(req.n),
        "requests_train": int(req.is_train.sum()),
        "requests_valid": int(req.is_valid.sum()),
        "requests_test": int(req.is_test.sum()),
        "requests_nonempty_targets": int((x_len > 0).sum()),
        "mean_targets": float(x_len.mean()),
        "mean_exposures": float(req.exposures.lengths().mean()),
        "mean_history": float((req.hist_end - req.hist_start).mean()),
        "mean_retrieved": float(samples.retrieved.lengths().mean()),
        "mean_rtg": float((x_len - itg_len).mean()),
        "mean_itg": float(itg_len.mean()),
        "itg_share": _share(samples.is_itg.sum(), len(samples.is_itg)),
        "itg_share_test": _share(samples.is_itg[test_t].sum(), test_t.sum()),
        "test_requests_nonempty_itg": int((req.is_test & (itg_len > 0)).sum()),
        "first_test_ms": int(req.first_test_ms),
        "first_valid_ms": int(req.first_valid_ms),
        "splits": split_statistics(samples),
        "premise": premise_statistics(samples, primary_tabs),
        "itg_share_per_tab": per_tab,
    }
