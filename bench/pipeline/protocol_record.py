"""Which protocol a run follows (PROTOCOL sections 1-3), and the warnings its record carries.

v2: `existing.fit=rolling`, a validation split, early stopping. v1: `existing.fit=train_period`,
`requests.valid_days=0`, `train.early_stopping=false`. Anything else is "custom".
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

log = logging.getLogger("bench")

ITG_SHARE_GAP = 0.10  # training and test ITG shares further apart than this: labels from different processes


def protocol_version(existing_fit: str, valid_days: int, early_stopping: bool) -> str:
    if existing_fit == "rolling" and valid_days >= 1 and early_stopping:
        return "v2"
    if existing_fit == "train_period" and valid_days == 0 and not early_stopping:
        return "v1"
    return "custom"


def protocol_record(cfg: DictConfig, sample_stats: dict) -> dict:
    """The record's `protocol` entry; logs each warning it holds."""
    fit = str(cfg.existing.get("fit", "rolling"))
    valid_days = int(cfg.requests.get("valid_days", 0))
    early = bool(cfg.train.early_stopping)
    warnings = []
    if fit == "all":
        warnings.append("existing.fit=all: the existing system is fit on the validation and test periods too, so the "
                        "RTG / ITG labels leak them (the paper's literal 'over all samples')")
    if fit == "train_period" and valid_days > 0:
        warnings.append("existing.fit=train_period with a validation split: the system that labels validation "
                        "requests was fit on their own targets, so model selection reads labels unlike the test's")
    splits = sample_stats.get("splits", {})
    train_share = splits.get("train", {}).get("itg_share")
    test_share = splits.get("test", {}).get("itg_share")
    if train_share is not None and test_share is not None and abs(train_share - test_share) > ITG_SHARE_GAP:
        advice = (f"existing.fit={fit} labels training and test requests with different systems; rolling fits the "
                  "system as it stood at each request" if fit != "rolling" else
                  "existing.fit=rolling already labels every request alike, so the log itself changes between periods")
        warnings.append(f"ITG share of training targets {train_share:.3f} vs test {test_share:.3f} (gap above "
                        f"{ITG_SHARE_GAP}): the incremental tower learns from another RTG / ITG mix than it is tested "
                        f"on; {advice}")
    for w in warnings:
        log.warning(w)
    return {"version": protocol_version(fit, valid_days, early), "existing_fit": fit, "leaks_test_period": fit == "all",
            "valid_days": valid_days, "early_stopping": early, "warnings": warnings}
