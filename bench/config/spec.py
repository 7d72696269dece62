"""The schema of the run config: every key the harness reads, with its type or its choices.

`check_config` rejects an unknown key (listing the keys its section has, and the nearest one), a
value of the wrong type and a value outside its choices, naming the key; bench.config.validate
runs it first, then checks ranges and combinations. The user tower's keys are checked against
the constructor of its `_target_`, so each backbone's own parameters are the valid choices; so are
the existing system's (one channel's `_target_`, or each entry of `existing.channels`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import ConfigError


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_list(v: Any) -> bool:
    return _int(v) or (isinstance(v, (list, ListConfig)) and len(v) > 0 and all(_int(x) for x in v))


Check = tuple[Callable[[Any], bool], str]  # predicate, what it accepts

INT: Check = (_int, "an integer")
NUMBER: Check = (_number, "a number")
BOOL: Check = (lambda v: isinstance(v, bool), "true or false")
AUTO_BOOL: Check = (lambda v: isinstance(v, bool) or v == "auto", "true, false or auto")
STR: Check = (lambda v: isinstance(v, str), "a string")
OPT_STR: Check = (lambda v: v is None or isinstance(v, str), "a string or null")
OPT_INT: Check = (lambda v: v is None or _int(v), "an integer or null")
OPT_NUMBER: Check = (lambda v: v is None or _number(v), "a number or null")
INT_LIST: Check = (_int_list, "an integer or a non-empty list of integers")
AUTO_INT: Check = (lambda v: v == "auto" or _int(v), "a positive integer or 'auto'")
AUTO_INT_LIST: Check = (lambda v: v == "auto" or _int_list(v), "'auto', an integer or a list of integers")


def choice(*options: str) -> Check:
    return (lambda v: v in options, f"one of {list(options)}")


SPEC: dict[str, dict[str, Check]] = {
    "": {"seed": INT, "seeds": INT, "headline_models": (lambda v: isinstance(v, ListConfig) and all(isinstance(x, str) for x in v),
                                                        "a list of backbone names"),
         "headline_seeds": OPT_INT, "resume": BOOL, "experiment_name": OPT_STR, "tuned": AUTO_BOOL,
         "tuning_applied": (lambda v: v is None or isinstance(v, DictConfig), "set by the harness (bench.config.tuned)")},
    "tune": {"dir": STR, "report_dir": STR, "reject_collapsed": BOOL,
             "space": (lambda v: isinstance(v, DictConfig) and len(v) > 0, "a mapping of config keys to sweep expressions")},
    "requests": {"primary_tabs": INT_LIST, "session_gap_min": NUMBER, "horizon_h": NUMBER, "max_len": INT,
                 "test_days": INT, "valid_days": INT, "target_tabs": choice("all", "non_primary")},
    "train": {"epochs": INT, "batch_size": INT, "lr": NUMBER, "n_negatives": INT, "device": STR, "threads": OPT_INT,
              "progress": BOOL, "sparse_item_grads": AUTO_BOOL,
              "max_batches": OPT_INT, "early_stopping": BOOL, "max_epochs": INT, "patience": INT,
              "precision": choice("auto", "fp32", "bf16"), "dropout_sampler": choice("bits", "torch"),
              "item_vectors_once": BOOL, "compile": BOOL},
    "eval": {"ks": AUTO_INT_LIST, "batch_size": INT, "curve_points": INT, "valid_max_requests": OPT_INT,
             "seed_control": BOOL, "aa_control": BOOL},
    "cache": {"enabled": BOOL, "dir": STR},
    "existing": {"name": STR, "fit": choice("rolling", "train_period", "all"), "budget": AUTO_INT,
                 "channels": (lambda v: isinstance(v, ListConfig), "a list of channel mappings")},
    "increc": {"name": STR, "incremental": BOOL, "alignment": BOOL, "alpha": choice("one", "item", "nearest_exposed"),
               "alpha_transform": choice("raw", "sigmoid", "softplus"), "alpha_normalise": BOOL,
               "basic_targets": choice("all", "itg"), "itg_weight": NUMBER, "alpha_exclude_self": BOOL,
               "shuffle_labels": BOOL, "shuffle_within": choice("request", "day")},
    "dataset": {"name": STR, "kind": choice("synthetic", "kuairand", "atomic"), "preset": STR, "data_seed": INT,
                "cache_dir": STR, "root": STR, "release": OPT_STR, "label": STR, "include_random": BOOL,
                "atomic_name": STR, "min_rating": (lambda v: v is None or _number(v), "a number or null"),
                "unknown_items": choice("drop", "add"), "ks": AUTO_INT_LIST, "existing_budget": AUTO_INT},
    "model": {"name": STR, "dim": INT, "item_side_features": BOOL, "item_normalize": BOOL,
              "negatives": choice("uniform", "in_batch"), "interest_scoring": choice("closest", "max"),
              "recbole_model": STR, "params": (lambda v: isinstance(v, DictConfig), "a mapping of RecBole hyper-parameters"),
              "user_tower": (lambda v: isinstance(v, DictConfig), "a user-tower mapping with _target_")},
}
TOP_LEVEL_SECTIONS = [s for s in SPEC if s]
OPTIONAL_TOP_LEVEL = ("tuning_applied",)  # set by the harness (bench.config.tuned.apply_tuned), absent before
HARNESS_PASSED = ("item_tower", "profile_cardinalities", "n_scenarios")  # user-tower arguments the harness fills in


def unknown_key(key: str, valid: list[str]) -> ConfigError:
    """An error naming the unknown key, the valid keys of its section and the nearest one."""
    section, _, name = key.rpartition(".")
    near = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean '{(section + '.' if section else '') + near[0]}'?" if near else ""
    where = f"'{section}'" if section else "the top level"
    return ConfigError(f"unknown key '{key}': {where} has {', '.join(sorted(valid))}{hint}")


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
    by_type = {int: INT, float: NUMBER, bool: BOOL, str: STR, int | None: OPT_INT, float | None: OPT_NUMBER}
    return {p: by_type.get(hints.get(p)) for p in inspect.signature(cls).parameters if p not in passed}


def _check_mapping_against(node: DictConfig, where: str, own: dict[str, Check], passed: tuple[str, ...] = ()) -> None:
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
            raise ConfigError(f"{where}.{key}={node[key]!r}: expected {check[1]}")


CHANNEL_OWN: dict[str, Check] = {"name": STR, "budget": AUTO_INT}


def check_existing(existing: DictConfig) -> None:
    """`existing`: one channel (its `_target_` class's parameters) or `channels`, each checked the same way."""
    if "channels" in existing:
        for i, node in enumerate(existing.channels):
            if not isinstance(node, DictConfig):
                raise ConfigError(f"existing.channels[{i}] must be a mapping with _target_, name and budget")
            _check_mapping_against(node, f"existing.channels[{i}]", CHANNEL_OWN)
        system_keys = [k for k in SPEC["existing"] if k not in ("budget", "_target_")]
        if "budget" in existing:
            raise ConfigError("existing.budget: with existing.channels each channel has its own budget "
                              "(existing.channels.N.budget); R_u holds at most their sum")
        extra = [k for k in existing if k not in system_keys]
        if extra:
            raise unknown_key(f"existing.{extra[0]}", system_keys)
    else:
        _check_mapping_against(existing, "existing", {k: v for k, v in SPEC["existing"].items() if k != "channels"})


def check_config(cfg: DictConfig) -> None:
    """Unknown keys, wrong types and out-of-choice values anywhere the harness reads: a ConfigError naming the key."""
    allowed_top = set(SPEC[""]) | set(TOP_LEVEL_SECTIONS) | {"hydra"}
    for key in cfg:
        if key not in allowed_top:
            raise unknown_key(str(key), sorted(allowed_top - {"hydra"}))
    for section, spec in SPEC.items():
        node = cfg if not section else cfg.get(section)
        if section and not isinstance(node, DictConfig):
            raise ConfigError(f"'{section}' must be a mapping of keys, got {node!r}")
        for key in (node if section and section != "existing" else []):  # existing: check_existing, below
            if key not in spec:
                raise unknown_key(f"{section}.{key}", list(spec))
        for key, (ok, accepts) in spec.items():
            if key not in node and (section or key in OPTIONAL_TOP_LEVEL):
                continue  # optional in this choice of group (e.g. dataset.root for synthetic data, tune.space)
            if OmegaConf.is_missing(node, key):
                continue  # ??? values are reported where they are needed (e.g. dataset.root)
            value = node[key]
            if not ok(value):
                shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
                raise ConfigError(f"{(section + '.') if section else ''}{key}={shown!r}: expected {accepts}")
    check_existing(cfg.existing)
    tower = cfg.model.user_tower
    if "_target_" not in tower:
        raise ConfigError("model.user_tower._target_ is missing: which user-tower class to build")
    _check_mapping_against(tower, "model.user_tower", {}, HARNESS_PASSED)
