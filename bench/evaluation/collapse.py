"""A collapsed user tower: one that ranks (nearly) the same top K for every request.

A tower whose output no longer depends on its input (P_u, B_u) serves a single global ranking, a
learnt popularity, not a personalised retrieval. Early stopping and tuning select on validation
Base@K₀ alone (PROTOCOL 3), which such a model can win where the validation requests are few. On the
synthetic default, SASRec tuned to lr 0.06 ranked one and the same top 40 for all 954 test requests
and was the search's best trial. The harness measures it on the validation ranking a base already
computes: the share of validation requests whose top-K₀ set is the most common one.
"""

from __future__ import annotations

import numpy as np

COLLAPSED_SHARE = 0.5  # at or over this share of requests with the same top-K₀ set, the tower has collapsed


def modal_top_share(top: np.ndarray) -> float:
    """[R, K] item ids of each request's top K -> the share of requests whose set of K items is the most
    common one (1/R when every request's differs, 1.0 when all are equal)."""
    if top.shape[0] == 0:
        return 0.0
    sets = np.sort(top, axis=1)  # [R, K]: the same items in any order give the same row
    _, counts = np.unique(sets, axis=0, return_counts=True)
    return float(counts.max() / top.shape[0])


def ranking_spread(top: np.ndarray) -> dict[str, float | int | bool]:
    """What the run record keeps of a base's validation top K₀ ([R_valid, K₀])."""
    share = modal_top_share(top)
    return {"requests": int(top.shape[0]), "k": int(top.shape[1]),
            "modal_top_share": round(share, 4), "collapsed": share >= COLLAPSED_SHARE}


def collapse_message(spread: dict) -> str:
    """One line for the console, the record's warnings and a rejected tuning trial's reason."""
    return (f"the user tower collapsed: {100 * spread['modal_top_share']:.0f}% of the {spread['requests']} validation "
            f"requests get the same top {spread['k']} (a global ranking, not a personalised one)")
