"""The run config checked before any work starts, each error naming the key and what it accepts: every section
against its schema (bench.config.schema: keys, types, choices and ranges; bench.config.targets: a user tower's
and the existing system's constructors), then the combinations that span sections. It reads the whole config,
the existing system's channels and the RecBole towers included, so it sits with the pipeline."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config import resolve_ks
from bench.config.schema import (DATASET_BY_KIND, DATASET_KINDS, Increc, Logger, Model, RecBoleModel, Run,
                                 config_error, typed_section)
from bench.config.targets import check_existing, check_user_tower
from bench.errors import ConfigError


def _check(ok: bool, key: str, value, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: {rule}")


def validate(cfg: DictConfig) -> None:
    """Reject bad values before any work starts, naming the key and what it accepts: the schema first, then
    ranges and combinations. A broken interpolation (`${...}` naming no key) is a ConfigError too."""
    try:
        _validate(cfg)
    except OmegaConfBaseException as exc:
        raise config_error(exc) from None


def check_schema(cfg: DictConfig) -> None:
    """Every section against its schema, whether `cfg` was composed by Hydra (already typed) or built by hand."""
    ds = cfg.dataset
    kind = ds.get("kind")
    _check(kind in DATASET_KINDS, "dataset.kind", kind, f"expected one of {list(DATASET_KINDS)}")
    required = {"atomic": ("name", "root")}.get(kind, ())  # kuairand: root or a release (its schema checks)
    for key in required:
        if OmegaConf.is_missing(ds, key) or not ds.get(key):
            hint = "pass dataset.root=DIR dataset.name=NAME (the files are DIR/NAME.inter, NAME.item, NAME.user)"
            raise ConfigError(f"dataset.{key} is required for dataset={ds.get('name', kind)}: {hint}")
    top = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])  # Hydra's own section is Hydra's to check
    typed_section(top, "", Run)
    typed_section(cfg, "dataset", DATASET_BY_KIND[kind])
    typed_section(cfg, "model", RecBoleModel if "recbole_model" in cfg.model else Model)
    check_user_tower(cfg.model)
    check_existing(cfg.existing)
    typed_section(cfg, "increc", Increc)
    if cfg.get("logger") is not None:
        typed_section(cfg, "logger", Logger)
    from models.increc import Variant

    try:
        Variant(**OmegaConf.to_container(cfg.increc, resolve=True))
    except (TypeError, ValueError) as exc:  # an unknown key, or a combination, e.g. IncRec-ori without alignment
        raise ConfigError(" ".join(str(exc).split())) from None


def _validate(cfg: DictConfig) -> None:
    check_schema(cfg)
    ds, r, t = cfg.dataset, cfg.requests, cfg.train
    if ds.kind == "synthetic":
        from bench.data.synthetic import PRESETS

        _check(ds.preset in PRESETS, "dataset.preset", ds.preset, f"choose one of {list(PRESETS)}")
        resolve_ks(cfg.eval.ks, PRESETS[ds.preset].n_items)  # the pool is known before any data is read
    if t.early_stopping and int(r.valid_days) == 0:
        raise ConfigError("train.early_stopping=true needs validation requests: requests.valid_days=0 has none "
                          "(protocol v1 is existing.fit=train_period requests.valid_days=0 train.early_stopping=false)")
    if cfg.get("experiment_name") == "tune":
        if cfg.get("tuned") is True:
            raise ConfigError("tuned=true with experiment=tune: a search starts from the backbone's own YAML")
        given = OmegaConf.select(cfg, "hydra.sweeper.params", default=None)  # only the command-line check sees hydra
        if "hydra" in cfg and not given and not cfg.tune.get("space"):
            raise ConfigError(f"experiment=tune: model {cfg.model.name} has no search space; add "
                              f"conf/tune/{cfg.model.name}.yaml with a 'space' mapping (config key: sweep expression)")
    from bench.existing.channel import build_channels

    build_channels(cfg.existing, n_items=1)  # each channel's constructor checks its own ranges; budgets checked here
    if cfg.model.get("recbole_model") is not None:  # model=recbole: a served name (docs/backbones.md's RecBole table)
        from models.backbones.recbole_seq import NOT_SERVED

        name = str(cfg.model.recbole_model)
        _check(name not in NOT_SERVED, "model.recbole_model", name,
               f"cannot be a user tower here: {NOT_SERVED.get(name, '')}")
    tower = cfg.model.user_tower
    if "n_heads" in tower:
        _check(int(cfg.model.dim) % int(tower.n_heads) == 0, "model.user_tower.n_heads", tower.n_heads,
               f"must divide model.dim={cfg.model.dim}")
    if "max_len" in tower:
        _check(int(tower.max_len) >= int(r.max_len), "model.user_tower.max_len", tower.max_len,
               f"must be at least requests.max_len={r.max_len}")
