"""Tuned values: written by a search (`experiment=tune`), read back by `tuned=true`.

A tuned file, `<tune.dir>/<dataset>/<model>.yaml` (`tune.dir` is `tuned/` at the repository root by
default; `<dataset>` is bench.config.dataset_label), holds the best trial's values as dotted config keys under `values`, and where they came from under
`provenance` (the command, the commit, the number of trials, the best validation value, the date).
It does not live under `conf/`: Hydra reads every folder there as a config group, and a `tuned`
group would make `tuned=true` a group choice instead of a flag.

`tuned`: auto (on for experiment=table1..3 when the file exists, off otherwise) | true (the file
must exist) | false. An IncRec variant of a backbone reads the same file as its base, so every
variant trains with its base's tuned values. A key given on the command line wins over the file's
value (recorded as overridden).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from bench.config import dataset_label
from bench.errors import ConfigError

TABLE_EXPERIMENTS = ("table1", "table2", "table3")  # where tuned=auto switches the tuned values on


def tuned_path(cfg: DictConfig) -> Path:
    """Where the tuned values of this dataset and backbone live."""
    return Path(str(cfg.tune.dir)) / dataset_label(cfg) / f"{cfg.model.name}.yaml"


def read_tuned(path: Path) -> dict:
    """The tuned file's mapping ({values, provenance}); a ConfigError naming the file when it is malformed."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"tuned values {path}: cannot read it ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict) or not data["values"]:
        raise ConfigError(f"tuned values {path}: expected a mapping with a non-empty 'values' section")
    return data


def resolve_tuned(cfg: DictConfig) -> bool:
    """Whether this run applies tuned values (tuned=auto|true|false; see the module docstring)."""
    setting = cfg.get("tuned", "auto")
    if cfg.get("experiment_name") == "tune":
        if setting is True:
            raise ConfigError("tuned=true with experiment=tune: a search starts from the backbone's own YAML")
        return False
    path = tuned_path(cfg)
    if setting == "auto":
        return cfg.get("experiment_name") in TABLE_EXPERIMENTS and path.exists()
    if setting is True and not path.exists():
        raise ConfigError(f"tuned=true but {path} does not exist: run python -m bench -m experiment=tune "
                          f"model={cfg.model.name} dataset={cfg.dataset.name} first, or pass tuned=false")
    return bool(setting)


def check_tuned_data(cfg: DictConfig, fingerprint: str) -> None:
    """A ConfigError when the applied tuned values were searched on other data than this run reads."""
    applied = cfg.get("tuning_applied")
    searched = applied.get("provenance", {}).get("data_fingerprint") if applied else None
    if searched and searched != fingerprint:
        raise ConfigError(f"tuned values {applied.file} were searched on other data (fingerprint {searched[:16]}, "
                          f"this run's {fingerprint[:16]}): rerun the search, or pass tuned=false")


def apply_tuned(cfg: DictConfig, command_line: list[str] | None = None) -> DictConfig:
    """`cfg` with the tuned values applied when `resolve_tuned` says so; `tuning_applied` records what
    was done (file, values set, values the command line overrode, provenance) or null."""
    keys_given = {o.split("=", 1)[0].lstrip("+~") for o in (command_line or [])}
    applied = None
    if resolve_tuned(cfg):
        path = tuned_path(cfg)
        data = read_tuned(path)
        values, overridden = {}, {}
        for key, value in data["values"].items():
            current = OmegaConf.select(cfg, key, default="__missing__")
            if isinstance(current, str) and current == "__missing__":
                raise ConfigError(f"tuned values {path}: '{key}' is not a key of this config")
            if isinstance(current, (DictConfig, ListConfig)) or isinstance(value, (dict, list)):
                raise ConfigError(f"tuned values {path}: '{key}' is not a single value (a tuned file sets leaves)")
            if key in keys_given:
                overridden[key] = value
                continue
            OmegaConf.update(cfg, key, value, merge=False)
            values[key] = value
        applied = {"file": str(path), "values": values, "overridden_by_command_line": overridden,
                   "provenance": data.get("provenance", {})}
    with open_dict(cfg):
        cfg.tuning_applied = applied
    return cfg
