"""The existing system's channel contract, and the channels a config names (PROTOCOL section 2).

A channel is fit on positives and then retrieves R_u for histories:

    fitted = channel.fit(FitData(user, item, time_ms, cutoff_ms), n_items)
    r_u = fitted.retrieve(history, budget, rows)  # Ragged [R], each row in item-id order, at most `budget`

Which positives a fit sees (every positive before a request's day, before the test period, or all)
is `existing.fit` (bench.existing.fit); a channel fits on whatever it is given and never looks at a
clock of its own except `cutoff_ms`, the first millisecond after the positives it was given (the
popularity channel's recency decay counts from it).

`existing` names one channel by `_target_` (conf/existing/itemcf.yaml, swing.yaml, popular.yaml,
twotower.yaml) or
several by `channels:` (conf/existing/multi.yaml), each a mapping with its own `_target_`, `name` and
`budget`; R_u is then the de-duplicated union (bench.existing.multi). A new channel is one module
with a class following `Channel` and one YAML. Its keys are its constructor's parameters, checked
like a user tower's (bench.config.targets); its constructor refuses values out of range with a
ValueError naming the parameter, which `build_channels` turns into a ConfigError naming the key.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import ConfigError
from bench.protocol.ragged import Ragged

SHARED_KEYS = ("_target_", "name", "budget")  # keys of a channel mapping that are not constructor parameters
SYSTEM_KEYS = ("name", "fit", "budget", "channels", "_target_")  # keys of `existing` itself


@dataclass
class FitData:
    """The positives one fit sees, sorted by (user, time_ms), and the cutoff they were cut at."""

    user: np.ndarray  # [P] int32
    item: np.ndarray  # [P] int32
    time_ms: np.ndarray  # [P] int64
    cutoff_ms: int  # every positive here has time_ms < cutoff_ms


@runtime_checkable
class FittedChannel(Protocol):
    def retrieve(self, history: Ragged, budget: int, rows: np.ndarray | None = None, progress: bool = False) -> Ragged:
        """R_u for every row of `history`: at most `budget` items per row, each row in item-id order. `rows`:
        the request ids of history's rows (a channel that reads more of a request than B_u, the profile, uses them)."""
        ...


@runtime_checkable
class Channel(Protocol):
    """Optional attributes: `needs_binding = True` with bind(cfg, ds, req), called once before the first fit
    (a channel that trains a model reads the requests and the dataset), and `cache_part(cfg) -> dict`:
    what its R_u depends on outside the `existing` section (a trained channel: the `train` settings, its
    model's YAML, the device, the kind of CPU), which the prepared and base stages' cache keys then hold."""

    def fit(self, data: FitData, n_items: int) -> FittedChannel:
        ...


@dataclass
class BudgetedChannel:
    """One channel of the system with its budget: how many items it contributes to R_u at most."""

    name: str
    channel: Channel
    budget: int
    target: str  # the class path, for the record


def _class(target: str, where: str):
    module, _, name = str(target).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"{where}._target_={target!r}: no such channel class") from None


def auto_budget(pool_size: int) -> int:
    """|R_u| scaled to the pool as PROTOCOL section 2 sets it for KuaiRand-Pure (200 of 7.6k items),
    within [10, 1000]."""
    return int(min(max(round(pool_size * 200 / 7583), 10), 1000))


def _budget(value, where: str, n_items: int) -> int:
    if value == "auto":
        return auto_budget(n_items)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}.budget={value!r}: a positive integer or 'auto'")
    return int(value)


def _one(node: DictConfig, where: str, n_items: int) -> BudgetedChannel:
    if "_target_" not in node:
        raise ConfigError(f"{where}._target_ is missing: which channel class to build "
                          "(e.g. bench.existing.itemcf.ItemCFChannel)")
    params = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in SHARED_KEYS}
    if where == "existing":
        params.pop("fit", None)
    cls = _class(node._target_, where)
    try:
        channel = cls(**params)
    except TypeError as exc:  # an unknown parameter (bench.config.targets names it first in a full run)
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError as exc:  # the constructor's range checks: "window=1: at least 2 ..."
        raise ConfigError(f"{where}.{exc}") from None
    name = str(node.get("name", cls.__name__))
    return BudgetedChannel(name, channel, _budget(node.get("budget", "auto"), where, n_items), str(node._target_))


def build_channels(existing: DictConfig, n_items: int) -> list[BudgetedChannel]:
    """The channels `existing` names: itself (a `_target_`), or each entry of its `channels` list."""
    if "channels" not in existing:
        return [_one(existing, "existing", n_items)]
    if "_target_" in existing:
        raise ConfigError("existing: give either _target_ (one channel) or channels (several), not both")
    entries = existing.channels
    if not isinstance(entries, ListConfig) or len(entries) == 0:
        raise ConfigError("existing.channels: a non-empty list of channel mappings (each with _target_, name, budget)")
    out = [_one(node, f"existing.channels[{i}]", n_items) for i, node in enumerate(entries)]
    names = [c.name for c in out]
    if len(set(names)) < len(names):
        raise ConfigError(f"existing.channels: names must differ, got {names}")
    return out


def check_positive(name: str, value, *, minimum: float = 1, allow_none: bool = False, what: str = "",
                   integer: bool = False) -> None:
    """A ValueError 'name=value: ...' when value is below minimum (or None where that is not allowed, or not
    a whole number where `integer`: a count such as a cap is never silently truncated)."""
    if value is None and allow_none:
        return
    if value is None or isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
            or value < minimum:
        rule = what or (f"at least {minimum:g}" + (", or null" if allow_none else ""))
        raise ValueError(f"{name}={value!r}: {rule}")


def check_triggers(n_triggers, decay) -> None:
    """The trigger settings item-CF's retrieval reads (bench.existing.itemcf.retrieve), shared by its users."""
    check_positive("n_triggers", n_triggers, what="must be at least 1")
    if not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ValueError(f"decay={decay!r}: must lie in (0, 1]")
