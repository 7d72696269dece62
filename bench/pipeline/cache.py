"""On-disk stage cache: stage outputs stored as .npz files, keyed so that a stale entry can never be read.

A key is the sha256 of (stage name, the code digest of bench/ and models/, the versions of python,
torch, numpy and the other packages the record lists, the data fingerprint and every config section
the stage depends on), so a change of data, code, packages or configuration gives a new key. Entries are written atomically (temporary file, then rename) and carry a sha256 of their
arrays; an entry that fails to open or whose digest does not match is deleted and recomputed.
Only plain arrays are stored (np.load with allow_pickle=False): nothing is unpickled.

The codecs below turn the harness's dataclasses (arrays, Ragged, nested dataclasses, ints) and
all-numeric DataFrames into flat {name: array} dicts and back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import typing
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.pipeline.record import code_digest, package_versions, write_npz_atomic

log = logging.getLogger("bench")

DIGEST = "__digest__"


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class StageCache:
    """Stage outputs under `root/<stage>/<key>.npz`; `root=None` disables caching (every lookup misses)."""

    def __init__(self, root: Path | str | None) -> None:
        self.root = Path(root) if root is not None else None
        self.events: dict[str, str] = {}  # stage -> hit | miss | off, for the run record

    def key(self, stage: str, **parts: Any) -> str:
        """sha256 of the stage name, the code digest and the given parts (JSON-serialisable)."""
        payload = json.dumps({"stage": stage, "code": code_digest(), "versions": package_versions(), **parts},
                             sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def path(self, stage: str, key: str) -> Path:
        assert self.root is not None
        return self.root / stage / f"{key}.npz"

    def load(self, stage: str, key: str, event: str | None = None) -> dict[str, np.ndarray] | None:
        """The arrays of an entry, or None (missing, disabled, or corrupt: a corrupt entry is deleted).
        `event`: the name `events` records the outcome under (default: the stage), for two lookups of one stage."""
        name = event or stage
        if self.root is None:
            self.events[name] = "off"
            return None
        path = self.path(stage, key)
        if not path.exists():
            self.events[name] = "miss"
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            stored = arrays.pop(DIGEST).tobytes().decode()
            if stored != _digest(arrays):
                raise ValueError("digest mismatch")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("cache entry %s is corrupt (%s): discarded, recomputing", path, exc)
            path.unlink(missing_ok=True)
            self.events[name] = "corrupt"
            return None
        self.events[name] = "hit"
        log.info("stage %s: cache hit %s", stage, path.name[:12])
        return arrays

    def save(self, stage: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.root is None:
            return
        payload = dict(arrays)
        payload[DIGEST] = np.frombuffer(_digest(arrays).encode(), dtype=np.uint8)
        write_npz_atomic(self.path(stage, key), payload)


# --------------------------------------------------------------------------- codecs


def json_array(obj: Any) -> np.ndarray:
    """A JSON-serialisable object as a uint8 array (stored beside the numeric arrays)."""
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode(), dtype=np.uint8)


def from_json_array(a: np.ndarray) -> Any:
    return json.loads(a.tobytes().decode())


def pack_frame(frame: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    """An all-numeric DataFrame with a RangeIndex as {prefix/column: array} plus its column order."""
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or frame.index.step != 1:
        raise ValueError(f"{prefix}: only frames with a 0-based RangeIndex are cached")
    out = {f"{prefix}/{c}": (frame[c].to_numpy() if frame[c].dtype != object else frame[c].to_numpy().astype(str))
           for c in frame.columns}  # text columns as fixed-width unicode: loadable without pickle
    out[f"{prefix}/__columns__"] = json_array([str(c) for c in frame.columns])
    return out


def unpack_frame(arrays: dict[str, np.ndarray], prefix: str) -> pd.DataFrame:
    columns = from_json_array(arrays[f"{prefix}/__columns__"])
    return pd.DataFrame({c: arrays[f"{prefix}/{c}"] for c in columns})


def pack_dataclass(obj: Any, prefix: str) -> dict[str, np.ndarray]:
    """A dataclass whose fields are arrays, ints or dataclasses of the same kind, flattened by field path."""
    out: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}/{f.name}"
        if dataclasses.is_dataclass(value):
            out |= pack_dataclass(value, name)
        elif isinstance(value, np.ndarray):
            out[name] = value
        elif isinstance(value, (int, np.integer)):
            out[name] = np.asarray(int(value), dtype=np.int64)
        else:
            raise TypeError(f"{name}: cannot cache a {type(value).__name__}")
    return out


def unpack_dataclass(cls: type, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name, hint = f"{prefix}/{f.name}", hints[f.name]
        if dataclasses.is_dataclass(hint):
            values[f.name] = unpack_dataclass(hint, arrays, name)
        elif hint is int:
            values[f.name] = int(arrays[name])
        else:
            values[f.name] = arrays[name]
    return cls(**values)
