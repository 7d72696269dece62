"""RTG / ITG / ETG sample groups (paper 2.1) and the statistics the run records about them.

RTG = X_u ∩ R_u (targets the existing system already retrieves), ITG = X_u \\ R_u (incremental
targets), ETG = the items exposed in the request. The training targets of a train request are
restricted to positives before the first test millisecond, and its exposures to impressions
before it, so no test-period label or exposure is learnt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.ragged import Ragged, isin
from bench.requests import Requests


@dataclass
class Samples:
    """Requests with their existing-system retrieval and every target flagged RTG or ITG."""

    requests: Requests
    retrieved: Ragged  # R_u per request
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
        """[T] targets usable for training: of a train request, from a positive before the test period."""
        req = self.requests
        return ~req.is_test[req.targets.row_ids()] & (req.target_times < req.first_test_ms)

    def train_exposure_mask(self) -> np.ndarray:
        """[len(exposures.values)] exposures usable for training (L_align, eq. 7): of a train request,
        impressed before the test period (a request running past midnight is cut there)."""
        req = self.requests
        return ~req.is_test[req.exposures.row_ids()] & (req.exposure_times < req.first_test_ms)

    def eval_rows(self) -> np.ndarray:
        """Test requests with a non-empty ITG: the rows every metric averages over (PROTOCOL 5)."""
        return np.flatnonzero(self.requests.is_test & (self.itg_counts() > 0))


def split_groups(requests: Requests, retrieved: Ragged, n_items: int) -> Samples:
    """Flag every target of X_u as RTG (in R_u) or ITG (not in R_u)."""
    target_key = requests.targets.row_ids() * n_items + requests.targets.values
    retrieved_key = retrieved.row_ids() * n_items + retrieved.values
    return Samples(requests, retrieved, ~isin(target_key, retrieved_key))


def _share(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def sample_statistics(samples: Samples, tabs: np.ndarray | None = None) -> dict[str, float | int | None | dict]:
    """The statistics PROTOCOL section 2 tabulates, plus per-scenario ITG shares.

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
        "requests_train": int((~req.is_test).sum()),
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
        "itg_share_per_tab": per_tab,
    }
