"""The normalised dataset every reader produces and every later stage consumes.

Readers (KuaiRand files, the synthetic generator's files) map raw ids to dense codes and raw
feature values to categorical codes, where code 0 always means "unknown" (blank, out of range).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Normalised log columns and their dtypes. Rows are sorted by (user, time_ms), ties kept in file order.
LOG_COLUMNS: dict[str, str] = {
    "user": "int32",  # dense user code, index into Dataset.users
    "item": "int32",  # dense item code, index into Dataset.items (the pool)
    "time_ms": "int64",  # epoch milliseconds; the authoritative time of the impression
    "tab": "int16",  # scenario
    "positive": "bool",  # the configured label column equals 1
}


@dataclass
class Dataset:
    """One dataset after reading: the log, the item pool with side features, user profiles."""

    name: str
    log: pd.DataFrame  # LOG_COLUMNS, sorted by (user, time_ms)
    items: pd.DataFrame  # index = item code; column raw_id, then categorical feature codes (0 = unknown)
    users: pd.DataFrame  # index = user code; column raw_id, then categorical profile codes (0 = unknown)
    stats: dict[str, int | float] = field(default_factory=dict)  # reading statistics (rows, duplicates, ...)
    files: list[Path] = field(default_factory=list)  # the files read, for the data fingerprint

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def item_feature_names(self) -> list[str]:
        return [c for c in self.items.columns if c != "raw_id"]

    @property
    def profile_feature_names(self) -> list[str]:
        return [c for c in self.users.columns if c != "raw_id"]

    def item_features(self) -> np.ndarray:
        """[n_items, n_item_features] int64 codes, 0 = unknown."""
        return self.items[self.item_feature_names].to_numpy(dtype=np.int64)

    def profiles(self) -> np.ndarray:
        """[n_users, n_profile_features] int64 codes, 0 = unknown."""
        return self.users[self.profile_feature_names].to_numpy(dtype=np.int64)

    @staticmethod
    def cardinalities(frame: pd.DataFrame) -> dict[str, int]:
        """Number of codes per categorical column, the unknown code 0 included."""
        return {c: int(frame[c].max()) + 1 if len(frame) else 1 for c in frame.columns if c != "raw_id"}


def encode_categories(values: pd.Series, *, numeric: bool) -> np.ndarray:
    """Map raw categorical values to codes 1..n in sorted value order; blanks and bad codes to 0.

    Bad codes: for numeric columns, negative values (KuaiRand uses -124 as an out-of-range marker);
    for text columns, empty strings and the literal "UNKNOWN".
    """
    if numeric:
        num = pd.to_numeric(values, errors="coerce")
        valid = num.notna() & (num >= 0)
        keys = num.where(valid)
    else:
        text = values.astype("string").str.strip()
        valid = text.notna() & (text != "") & (text.str.upper() != "UNKNOWN")
        keys = text.where(valid)
    uniques = np.sort(pd.unique(keys[valid]).astype(float if numeric else object))
    codes = np.zeros(len(values), dtype=np.int32)
    if len(uniques):
        codes[valid.to_numpy()] = np.searchsorted(uniques, keys[valid].to_numpy(dtype=float if numeric else object)) + 1
    return codes
