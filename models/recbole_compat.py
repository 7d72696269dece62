"""Every RecBole 1.2.1 workaround in one place; import RecBole parts through these functions only.

- numpy 2 removed aliases RecBole still uses (np.float_, np.bool8, np.float, ...): restored here
  before RecBole is imported.
- RecBole imports `pkg_resources` (setuptools < 81, pinned in pyproject.toml).
- `recbole.model.sequential_recommender` imports a model file (sine.py) that switches autograd
  anomaly detection on for the whole process, which slows training several-fold: put back as it was.
- RecBole checkpoints are pickles (torch.load needs weights_only=False under torch >= 2.6): only
  files this harness wrote, and whose digest it recorded beside them, are ever loaded that way.
"""

from __future__ import annotations

import hashlib
import types
import warnings
from pathlib import Path

import numpy as np
import torch

_NUMPY_ALIASES = {
    "bool8": np.bool_,
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "string_": np.bytes_,
    "float": float,
    "int": int,
    "bool": bool,
    "object": object,
    "complex": complex,
    "long": np.int64,
}


def patch_numpy() -> list[str]:
    """Restore the removed numpy aliases RecBole uses; returns the names that were added."""
    added = []
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)
            added.append(name)
    return added


def _import(module: str) -> types.ModuleType:
    patch_numpy()
    try:
        with warnings.catch_warnings():  # its deprecation notice would print on every run
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            import pkg_resources  # noqa: F401  (RecBole needs it; fail here with a clear message)
    except ImportError as exc:
        raise ImportError("RecBole 1.2.1 needs pkg_resources: install setuptools<81") from exc
    anomaly = torch.is_anomaly_enabled()
    mod = __import__(module, fromlist=["_"])
    torch.autograd.set_detect_anomaly(anomaly)  # undo recbole/model/sequential_recommender/sine.py
    return mod


def recbole_layers() -> types.ModuleType:
    """`recbole.model.layers` (TransformerEncoder and friends)."""
    return _import("recbole.model.layers")


def recbole_evaluator() -> tuple[type, type]:
    """RecBole's (Collector, Evaluator): its full-ranking top-K bookkeeping and metric formulas."""
    collector = _import("recbole.evaluator.collector")
    evaluator = _import("recbole.evaluator.evaluator")
    return collector.Collector, evaluator.Evaluator


def recbole_sasrec() -> type:
    """RecBole's SASRec model class, with anomaly detection left off."""
    return _import("recbole.model.sequential_recommender.sasrec").SASRec


def recbole_sequential_names() -> list[str]:
    """Every model class `recbole.model.sequential_recommender` exports."""
    module = _import("recbole.model.sequential_recommender")
    return sorted(n for n in dir(module) if isinstance(getattr(module, n), type) and not n.startswith("_"))


def recbole_sequential_class(name: str) -> type:
    """A RecBole sequential recommender class by name (`GRU4Rec`, `NARM`, ...), anomaly detection left off."""
    cls = getattr(_import("recbole.model.sequential_recommender"), name, None)
    if not isinstance(cls, type):
        raise ValueError(f"RecBole 1.2.1 has no sequential model {name!r}; it has {', '.join(recbole_sequential_names())}")
    return cls


def recbole_model_defaults(name: str) -> dict:
    """RecBole's defaults for a model as its Config merges them: recbole/properties/overall.yaml, then the
    model's own file (recbole/properties/model/<name>.yaml)."""
    import yaml

    properties = Path(_import("recbole").__file__).parent / "properties"
    values: dict = {}
    for path in (properties / "overall.yaml", properties / "model" / f"{name}.yaml"):
        if path.is_file():
            values.update(yaml.safe_load(path.read_text()) or {})
    return {k: _yaml_float(v) for k, v in values.items()}


def _yaml_float(value: object) -> object:
    """`1e-12` as RecBole's loader reads it (a float; YAML 1.1 without a dot reads a string)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(obj: object, path: str | Path) -> Path:
    """Save with torch.save and record the file's sha256 beside it (`<path>.sha256`)."""
    path = Path(path)
    torch.save(obj, path)
    Path(f"{path}.sha256").write_text(_digest(path) + "\n")
    return path


def load_checkpoint(path: str | Path) -> object:
    """Load a checkpoint this harness saved: plain tensors with weights_only=True; a full pickle only
    when the sha256 recorded at save time matches, so a foreign file is never unpickled."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (not a pure-tensor file: fall through to the digest check)
        pass
    sidecar = Path(f"{path}.sha256")
    if not sidecar.is_file() or sidecar.read_text().strip() != _digest(path):
        raise ValueError(f"{path}: not a checkpoint written by this harness (no matching .sha256); refusing to unpickle it")
    return torch.load(path, map_location="cpu", weights_only=False)
