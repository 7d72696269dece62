"""Ragged rows (CSR layout) of integer values: one variable-length list per request."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Ragged:
    """Row r holds values[indptr[r]:indptr[r+1]]."""

    indptr: np.ndarray  # [R + 1] int64
    values: np.ndarray  # [N]

    @classmethod
    def from_rows(cls, rows: np.ndarray, values: np.ndarray, n_rows: int) -> "Ragged":
        """Build from parallel arrays (row id, value) already sorted by row."""
        counts = np.bincount(rows, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, values)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row(self, r: int) -> np.ndarray:
        return self.values[self.indptr[r] : self.indptr[r + 1]]

    def row_ids(self) -> np.ndarray:
        """[N] the row of every value."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), self.lengths())

    def take(self, rows: np.ndarray) -> "Ragged":
        """The sub-ragged of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        idx = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        return Ragged(indptr, self.values[idx])

    def mask(self, keep: np.ndarray) -> "Ragged":
        """Keep only the values where `keep` ([N] bool) is set, rows preserved."""
        return Ragged.from_rows(self.row_ids()[keep], self.values[keep], self.n_rows)

    def padded(self, rows: np.ndarray, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """[len(rows), max_len] values (left-aligned) and a bool mask of real entries."""
        sub = self.take(rows)
        lens = sub.lengths()
        width = max(int(lens.max()) if len(lens) else 0, 1)
        out = np.full((len(rows), width), pad, dtype=self.values.dtype)
        mask = np.arange(width)[None, :] < lens[:, None]
        out[mask] = sub.values
        return out, mask


def segment_ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the index ranges [starts[r], ends[r]); returns (row id, index) per element."""
    lens = np.maximum(ends - starts, 0)
    rows = np.repeat(np.arange(len(starts), dtype=np.int64), lens)
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    idx = np.repeat(starts, lens) + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], lens))
    return rows, idx


def isin(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """values[i] in pool, by sorting the pool once and binary search (np.isin is far slower for a
    small `values` against a large `pool`)."""
    if np.size(pool) == 0:  # an empty pool of any shape (e.g. [R, 0]: no R_u item to skip)
        return np.zeros(values.shape, dtype=bool)
    sorted_pool = np.sort(pool, axis=None)
    pos = np.searchsorted(sorted_pool, values)
    return sorted_pool[np.minimum(pos, len(sorted_pool) - 1)] == values


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """np.unique(values) by a sort and a neighbour comparison: numpy 2.4's np.unique took 17.7 s where this
    took 0.9 s on 9M random int64 keys (2-core AMD EPYC)."""
    ordered = np.sort(np.asarray(values), axis=None)
    if len(ordered) == 0:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
