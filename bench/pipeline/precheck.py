"""Check a `python -m bench` command line before Hydra starts any job.

Composes the config the overrides ask for, once per value of every swept key or group (the
command line's and an experiment's `hydra.sweeper.params`), and validates each: an unknown key
(with the keys its section has), an unknown group option (with the options), a wrong type, a
value out of range or an inconsistent combination stops the command with one line, so a sweep
never fails on its fifth job for a typo.
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from bench.config import CONF_DIR, compose
from bench.pipeline.validate import validate
from bench.config.schema import unknown_key
from bench.errors import ConfigError

GROUPS = tuple(sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir()))  # dataset, existing, experiment, increc, model


def _values(override) -> list[str]:
    """The values one parsed override stands for (several for a sweep like a,b or range(0,3))."""
    if override.is_sweep_override():
        try:
            return [str(v) for v in override.sweep_string_iterator()]
        except Exception:  # a sweep form the parser cannot enumerate here (e.g. an interval): checked by the job
            return []
    return [override.get_value_element_as_str()]


def _one_line(exc: BaseException) -> str:
    """Hydra's message on one line, without its config-search-path listing."""
    return " ".join(str(exc).split("Config search path")[0].split())


def _compose(overrides: list[str]) -> DictConfig:
    """The config with Hydra's section (the sweep's parameters), or a one-line ConfigError."""
    return compose(*overrides, hydra_section=True)


def _check_keys(cfg: DictConfig, keys: list[str]) -> None:
    for key in keys:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None, throw_on_missing=False) if parent else cfg
        if not isinstance(node, DictConfig) or leaf not in node.keys():  # keys() lists ??? (required) keys too
            valid = [str(k) for k in node] if isinstance(node, DictConfig) else []
            raise unknown_key(key, [k for k in valid if k != "hydra"])


def precheck(argv: list[str]) -> None:
    """Raise ConfigError for the first problem of the command line's overrides (argv without flags)."""
    args = [a for a in argv if not a.startswith("-")]
    parser = OverridesParser.create()
    parsed = []
    for arg in args:
        try:
            parsed.append(parser.parse_override(arg))
        except HydraException as exc:
            raise ConfigError(f"cannot read the override '{arg}': {_one_line(exc)}") from None
    fixed: list[str] = []  # overrides applied to every composition
    swept: dict[str, list[str]] = {}  # key -> values, each composed once
    key_overrides: list[str] = []  # plain keys that must exist (not +added, not ~deleted)
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra") or o.package:
            continue
        values = _values(o)
        if not values:
            continue
        if len(values) > 1:
            swept[key] = values
        fixed.append(f"{o.input_line.split('=', 1)[0]}={values[0]}")
        if key not in GROUPS and not o.is_add() and not o.is_force_add() and not o.is_delete():
            key_overrides.append(key)

    groups_only = [f for f in fixed if f.split("=", 1)[0].lstrip("+~") in GROUPS]
    _check_keys(_compose(groups_only), key_overrides)
    first = _compose(fixed)
    params = first.hydra.sweeper.get("params") or {}
    for key, value in params.items():  # an experiment's sweep, unless the command line sets the key
        if key in swept or any(f.split("=", 1)[0] == key for f in fixed) or "$" in str(value):
            continue
        values = _values(OverridesParser.create().parse_override(f"{key}={value}"))
        if len(values) > 1:
            swept[key] = values
        elif values:  # one value: every job of the sweep has it (e.g. model=recbole beside its model list)
            fixed.append(f"{key}={values[0]}")
    validate(first)
    for key, values in swept.items():
        for value in values[1:]:
            cfg = _compose([f for f in fixed if f.split("=", 1)[0].lstrip("+~") != key] + [f"{key}={value}"])
            validate(cfg)
