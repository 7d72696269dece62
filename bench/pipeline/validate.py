"""The run config checked before any work starts (unknown keys and types, then ranges and combinations), each
error naming the key and what it accepts. It reads the whole config, the existing system's channels and the
RecBole towers included, so it sits with the pipeline."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from bench.config import int_list, resolve_ks
from bench.errors import ConfigError
from models.losses import INTEREST_SCORING


def _check(ok: bool, key: str, value, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: {rule}")


def validate(cfg: DictConfig) -> None:
    """Reject bad values before any work starts, naming the key and what it accepts: unknown keys and
    types first (bench.config.spec), then ranges and combinations. A broken interpolation
    (`${...}` naming no key) is a ConfigError too."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        _validate(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(" ".join(str(exc).split())) from None


def _validate(cfg: DictConfig) -> None:
    from bench.config.spec import check_config
    from models.increc import Variant

    ds = cfg.dataset
    if ds.get("kind") == "atomic":
        for key in ("name", "root"):
            if OmegaConf.is_missing(ds, key):
                raise ConfigError(f"dataset.{key} is required for dataset=atomic: pass dataset.root=DIR dataset.name=NAME "
                                  "(the files are DIR/NAME.inter, NAME.item, NAME.user)")
    check_config(cfg)
    try:
        Variant(**OmegaConf.to_container(cfg.increc, resolve=True))
    except ValueError as exc:  # an inconsistent combination, e.g. IncRec-ori without the alignment tower
        raise ConfigError(str(exc)) from None
    if ds.kind == "kuairand" and (OmegaConf.is_missing(ds, "root") or not ds.root):
        raise ConfigError(f"dataset.root is required for dataset={ds.name}: pass dataset.root=DIR")
    if ds.kind == "synthetic":
        from bench.data.synthetic import PRESETS

        _check(ds.preset in PRESETS, "dataset.preset", ds.preset, f"choose one of {list(PRESETS)}")
        resolve_ks(cfg.eval.ks, PRESETS[ds.preset].n_items)  # the pool is known before any data is read
    ks = cfg.eval.ks
    if ks != "auto":
        _check(min(int_list(ks, "eval.ks")) >= 1, "eval.ks", ks, "K values must be positive, or 'auto'")
    r = cfg.requests
    int_list(r.primary_tabs, "requests.primary_tabs")
    _check(r.session_gap_min > 0, "requests.session_gap_min", r.session_gap_min, "must be positive")
    _check(r.horizon_h > 0, "requests.horizon_h", r.horizon_h, "must be positive")
    _check(int(r.max_len) >= 1, "requests.max_len", r.max_len, "the history needs at least one position")
    _check(int(r.test_days) >= 1, "requests.test_days", r.test_days, "at least one test day")
    _check(int(r.get("valid_days", 0)) >= 0, "requests.valid_days", r.get("valid_days"), "0 (protocol v1: no validation) or more")
    t = cfg.train
    _check(int(t.epochs) >= 0, "train.epochs", t.epochs, "must be 0 or more")
    _check(int(t.get("max_epochs", 1)) >= 1, "train.max_epochs", t.get("max_epochs"), "at least 1")
    _check(int(t.get("patience", 1)) >= 1, "train.patience", t.get("patience"), "at least 1")
    if bool(t.get("early_stopping", False)) and int(r.get("valid_days", 0)) == 0:
        raise ConfigError("train.early_stopping=true needs validation requests: requests.valid_days=0 has none "
                          "(protocol v1 is existing.fit=train_period requests.valid_days=0 train.early_stopping=false)")
    _check(int(t.batch_size) >= 1, "train.batch_size", t.batch_size, "must be at least 1")
    _check(float(t.lr) > 0, "train.lr", t.lr, "must be positive")
    _check(int(t.n_negatives) >= 1, "train.n_negatives", t.n_negatives, "must be at least 1")
    if t.get("max_batches") is not None:
        _check(int(t.max_batches) >= 1, "train.max_batches", t.max_batches,
               "must be at least 1, or null for every batch")
    _check(t.threads is None or int(t.threads) >= 1, "train.threads", t.threads, "at least 1, or null for torch's default")
    _check(str(t.device) in ("auto", "cpu") or str(t.device).startswith("cuda"), "train.device", t.device,
           "auto, cpu, cuda or cuda:N")
    e = cfg.eval
    _check(int(e.batch_size) >= 1, "eval.batch_size", e.batch_size, "must be at least 1")
    _check(int(e.curve_points) >= 0, "eval.curve_points", e.curve_points, "must be 0 or more")
    if e.get("valid_max_requests") is not None:
        _check(int(e.valid_max_requests) >= 1, "eval.valid_max_requests", e.valid_max_requests, "at least 1, or null for all")
    _check(int(cfg.seeds) >= 1, "seeds", cfg.seeds, "at least one seed")
    if cfg.get("experiment_name") == "tune":
        if cfg.get("tuned") is True:
            raise ConfigError("tuned=true with experiment=tune: a search starts from the backbone's own YAML")
        given = OmegaConf.select(cfg, "hydra.sweeper.params", default=None)  # only the command-line check sees hydra
        if "hydra" in cfg and not given and "space" not in cfg.get("tune", {}):
            raise ConfigError(f"experiment=tune: model {cfg.model.name} has no search space; add "
                              f"conf/tune/{cfg.model.name}.yaml with a 'space' mapping (config key: sweep expression)")
    from bench.existing.channel import build_channels

    build_channels(cfg.existing, n_items=1)  # each channel's constructor checks its own ranges; budgets checked here
    if cfg.model.get("recbole_model") is not None:  # model=recbole: a served name (the README's RecBole table)
        from models.backbones.recbole_seq import NOT_SERVED

        name = str(cfg.model.recbole_model)
        _check(name not in NOT_SERVED, "model.recbole_model", name,
               f"cannot be a user tower here: {NOT_SERVED.get(name, '')}")
    negatives = cfg.model.get("negatives", "uniform")
    _check(negatives in ("uniform", "in_batch"), "model.negatives", negatives, "choose uniform or in_batch")
    scoring = cfg.model.get("interest_scoring", "closest")
    _check(scoring in INTEREST_SCORING, "model.interest_scoring", scoring, f"choose one of {list(INTEREST_SCORING)}")
    tower = cfg.model.user_tower
    if "n_heads" in tower:
        _check(int(cfg.model.dim) % int(tower.n_heads) == 0, "model.user_tower.n_heads", tower.n_heads,
               f"must divide model.dim={cfg.model.dim}")
    if "max_len" in tower:
        _check(int(tower.max_len) >= int(r.max_len), "model.user_tower.max_len", tower.max_len,
               f"must be at least requests.max_len={r.max_len}")
