"""Sections whose keys are a class's constructor: `model.user_tower` and the existing system (one channel, or
each of `existing.channels`). Their schema is the `_target_` class itself, so each backbone's and each
channel's own parameters are the valid keys; a parameter's annotation, when simple, gives its type."""

from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.config.schema import unknown_key
from bench.errors import ConfigError

Check = tuple[Callable[[Any], bool], str]  # predicate, what it accepts


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


BY_ANNOTATION: dict[Any, Check] = {
    int: (_is_int, "an integer"), float: (_is_number, "a number"), bool: (lambda v: isinstance(v, bool), "true or false"),
    str: (lambda v: isinstance(v, str), "a string"), int | None: (lambda v: v is None or _is_int(v), "an integer or null"),
    float | None: (lambda v: v is None or _is_number(v), "a number or null")}
CHANNEL_OWN: dict[str, Check] = {  # keys every channel node has besides its constructor's
    "name": (lambda v: isinstance(v, str), "a string"),
    "budget": (lambda v: v == "auto" or _is_int(v), "a positive integer or 'auto'")}
SYSTEM_OWN: dict[str, Check] = {  # the existing system's own keys (bench.existing.fit)
    "name": CHANNEL_OWN["name"],
    "fit": (lambda v: v in ("rolling", "train_period", "all"), "one of ['rolling', 'train_period', 'all']")}
HARNESS_PASSED = ("item_tower", "profile_cardinalities", "n_scenarios")  # user-tower arguments the harness fills in


def _constructor_checks(target: str, where: str, passed: tuple[str, ...] = ()) -> dict[str, Check | None]:
    """The constructor parameters of the class `target` names, each with a type check from its annotation (if simple)."""
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"{where}._target_={target!r}: no such class") from None
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not resolve: check names only
        hints = {}
    return {p: BY_ANNOTATION.get(hints.get(p)) for p in inspect.signature(cls).parameters if p not in passed}


def check_against_target(node: DictConfig, where: str, own: dict[str, Check], passed: tuple[str, ...] = ()) -> None:
    """`node`'s keys: its own (`own`, e.g. name and budget) or its `_target_` class's constructor parameters."""
    if "_target_" not in node:
        raise ConfigError(f"{where}._target_ is missing: which class to build (a user tower, a channel)")
    params = _constructor_checks(str(node._target_), where, passed)
    for key in node:
        if key in ("_target_", "_partial_"):
            continue
        check = own[key] if key in own else params.get(key, "unknown")
        if check == "unknown":
            raise unknown_key(f"{where}.{key}", list(params) + list(own))
        if check is not None and not OmegaConf.is_missing(node, key) and not check[0](node[key]):
            shown = OmegaConf.to_container(node[key]) if isinstance(node[key], (DictConfig, ListConfig)) else node[key]
            raise ConfigError(f"{where}.{key}={shown!r}: expected {check[1]}")


def check_existing(existing: DictConfig) -> None:
    """`existing`: one channel (its `_target_` class's parameters) or `channels`, each checked the same way."""
    if "channels" not in existing:
        check_against_target(existing, "existing", SYSTEM_OWN | CHANNEL_OWN)
        return
    if not isinstance(existing.channels, ListConfig):
        raise ConfigError("existing.channels must be a list of channel mappings")
    for i, node in enumerate(existing.channels):
        if not isinstance(node, DictConfig):
            raise ConfigError(f"existing.channels[{i}] must be a mapping with _target_, name and budget")
        check_against_target(node, f"existing.channels[{i}]", CHANNEL_OWN)
    if "budget" in existing:
        raise ConfigError("existing.budget: with existing.channels each channel has its own budget "
                          "(existing.channels.N.budget); R_u holds at most their sum")
    system_keys = [*SYSTEM_OWN, "channels"]
    extra = [k for k in existing if k not in system_keys]
    if extra:
        raise unknown_key(f"existing.{extra[0]}", system_keys)
    for key, (ok, accepts) in SYSTEM_OWN.items():
        if key in existing and not ok(existing[key]):
            raise ConfigError(f"existing.{key}={existing[key]!r}: expected {accepts}")


def check_user_tower(model: DictConfig) -> None:
    """`model.user_tower`: its `_target_` class's constructor parameters, less those the harness passes."""
    tower = model.user_tower
    if not isinstance(tower, DictConfig) or "_target_" not in tower:
        raise ConfigError("model.user_tower._target_ is missing: which user-tower class to build")
    check_against_target(tower, "model.user_tower", {}, HARNESS_PASSED)
