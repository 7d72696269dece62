"""`existing=multi`: several channels, each with its own budget; R_u is their de-duplicated union.

    R_u = R_u(channel 1) ∪ ... ∪ R_u(channel n),  |R_u(c)| <= budget(c)

so |R_u| can fall below the summed budgets when channels retrieve the same item (the record gives
the mean of each). Every channel is fit on the same positives (`existing.fit` applies to all).
`channel_statistics` says what each channel contributes to the RTG of every split.
"""

from __future__ import annotations

import numpy as np

from bench.protocol.ragged import Ragged, isin, unique_sorted
from bench.protocol.requests import Requests
from bench.protocol.samples import split_groups


def union(parts: list[Ragged], n_items: int) -> Ragged:
    """Row-wise de-duplicated union of Ragged sets with the same rows, each row in item-id order."""
    if len(parts) == 1:
        return parts[0]
    n_rows = parts[0].n_rows
    keys = np.concatenate([p.row_ids() * n_items + p.values.astype(np.int64) for p in parts])
    keys = unique_sorted(keys)  # by row, then item
    return Ragged.from_rows(keys // n_items, (keys % n_items).astype(parts[0].values.dtype), n_rows)


def _share(num: int, den: int) -> float | None:
    return float(num) / float(den) if den else None


def channel_statistics(req: Requests, retrieved: Ragged, by_channel: dict[str, Ragged], n_items: int) -> dict:
    """Per split (train: the targets training reads; valid; test): each channel's share of the split's RTG
    targets (it retrieves them; shares overlap, so they can sum above 1) and the share only it retrieves;
    and the mean |R_u| per channel and of the union."""
    samples = split_groups(req, retrieved, n_items)
    t_rows = req.targets.row_ids()
    target_key = t_rows * n_items + req.targets.values
    hit = {name: isin(target_key, r.row_ids() * n_items + r.values) for name, r in by_channel.items()}  # [T] each
    n_hits = np.sum(list(hit.values()), axis=0) if hit else np.zeros(len(target_key), int)
    rtg = ~samples.is_itg
    splits = {}
    for split in ("train", "valid", "test"):
        if split == "valid" and not req.is_valid.any():
            continue
        sel = samples.split_target_mask(split)
        sel_rtg = sel & rtg
        splits[split] = {
            "rtg_targets": int(sel_rtg.sum()),
            "rtg_share": _share(int(sel_rtg.sum()), int(sel.sum())),
            "channel_rtg_share": {name: _share(int((h & sel_rtg).sum()), int(sel_rtg.sum())) for name, h in hit.items()},
            "channel_only_rtg_share": {name: _share(int((h & sel_rtg & (n_hits == 1)).sum()), int(sel_rtg.sum()))
                                       for name, h in hit.items()},
        }
    return {
        "mean_retrieved": float(retrieved.lengths().mean()) if retrieved.n_rows else 0.0,
        "mean_retrieved_by_channel": {name: float(r.lengths().mean()) if r.n_rows else 0.0
                                      for name, r in by_channel.items()},
        "splits": splits,
    }
