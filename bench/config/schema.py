"""The run config's schema: one dataclass per section, registered in Hydra's ConfigStore (conf/ extends it).

Hydra merges each YAML into its dataclass, so an unknown key or a value of the wrong type stops the
composition; `typed_section` then builds the dataclass, whose `__post_init__` checks choices and ranges.
A new key of a section is a field here and, when users should see its default, a commented line in
its YAML. Sections whose keys are a class's constructor (`model.user_tower`, `existing`) are checked
against that class instead (bench.config.targets); `increc` has models.increc.Variant's fields.
`config_error` turns OmegaConf's errors into the harness's one-line ConfigError.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from bench.errors import ConfigError
from models.increc import Variant


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_list(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, (list, tuple, ListConfig)) and len(v) > 0 and all(_is_int(x) for x in v))


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        raise ConfigError(f"{key}={shown!r}: {rule}")


def _choice(key: str, value: Any, options: tuple[str, ...]) -> None:
    _require(value in options, key, value, f"expected one of {list(options)}")


# --------------------------------------------------------------------------- sections


@dataclass
class Requests:
    """PROTOCOL section 1: how impressions become requests and targets."""

    primary_tabs: Any = field(default_factory=lambda: [1])  # an integer or a list of them
    session_gap_min: float = 30
    horizon_h: float = 24
    max_len: int = 50
    test_days: int = 1
    valid_days: int = 1
    target_tabs: str = "all"

    def __post_init__(self) -> None:
        _require(_int_list(self.primary_tabs), "requests.primary_tabs", self.primary_tabs,
                 "expected an integer or a non-empty list of integers")
        _require(self.session_gap_min > 0, "requests.session_gap_min", self.session_gap_min, "must be positive")
        _require(self.horizon_h > 0, "requests.horizon_h", self.horizon_h, "must be positive")
        _require(self.max_len >= 1, "requests.max_len", self.max_len, "the history needs at least one position")
        _require(self.test_days >= 1, "requests.test_days", self.test_days, "at least one test day")
        _require(self.valid_days >= 0, "requests.valid_days", self.valid_days, "0 (protocol v1: no validation) or more")
        _choice("requests.target_tabs", self.target_tabs, ("all", "non_primary"))


@dataclass
class Levers:
    """The training-speed settings (bench.engine.levers); the reference path is fp32 / torch / false / false."""

    precision: str = "auto"  # auto | fp32 | bf16: the user towers' matmuls in training
    dropout_sampler: str = "bits"  # bits | torch
    item_vectors_once: bool = True  # one item-tower call per step on every item id it reads
    compile: bool = False  # torch.compile the user towers for training

    def __post_init__(self) -> None:
        _choice("train.precision", self.precision, ("auto", "fp32", "bf16"))
        _choice("train.dropout_sampler", self.dropout_sampler, ("bits", "torch"))

    @property
    def levers(self) -> Levers:
        """Just the speed settings (a Train's are its own)."""
        return Levers(**{f.name: getattr(self, f.name) for f in fields(Levers)})


# train.* keys that change no result: progress bars, and batches built ahead (the same batches either way; tests/
# unit/engine/test_prefetch.py). The stage cache, resume and the report's one-setting check leave them out.
RESULT_NEUTRAL_TRAIN_KEYS = ("progress", "prefetch")


@dataclass
class Train(Levers):
    """The training loop's settings (bench.engine.train; PROTOCOL section 3 for early stopping)."""

    early_stopping: bool = True
    max_epochs: int = 40
    patience: int = 4
    epochs: int = 4
    batch_size: int = 256
    lr: float = 0.01
    n_negatives: int = 1024
    device: str = "auto"
    threads: Optional[int] = None
    progress: bool = True
    max_batches: Optional[int] = None
    sparse_item_grads: Any = "auto"  # true | false | auto
    prefetch: Any = "auto"  # auto | batches built ahead by a background thread (0: inline)

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.epochs >= 0, "train.epochs", self.epochs, "must be 0 or more")
        _require(self.max_epochs >= 1, "train.max_epochs", self.max_epochs, "at least 1")
        _require(self.patience >= 1, "train.patience", self.patience, "at least 1")
        _require(self.batch_size >= 1, "train.batch_size", self.batch_size, "must be at least 1")
        _require(self.lr > 0, "train.lr", self.lr, "must be positive")
        _require(self.n_negatives >= 1, "train.n_negatives", self.n_negatives, "must be at least 1")
        _require(self.max_batches is None or self.max_batches >= 1, "train.max_batches", self.max_batches,
                 "must be at least 1, or null for every batch")
        _require(self.threads is None or self.threads >= 1, "train.threads", self.threads,
                 "at least 1, or null for torch's default")
        _require(self.device in ("auto", "cpu") or self.device.startswith("cuda"), "train.device", self.device,
                 "auto, cpu, cuda or cuda:N")
        _require(self.prefetch == "auto" or (_is_int(self.prefetch) and int(self.prefetch) >= 0), "train.prefetch",
                 self.prefetch, "expected auto or a number of batches (0 = built inline)")
        _require(isinstance(self.sparse_item_grads, bool) or self.sparse_item_grads == "auto",
                 "train.sparse_item_grads", self.sparse_item_grads, "expected true, false or auto")


def _check_ks(key: str, ks: Any) -> None:
    if isinstance(ks, str) and ks.startswith("${"):
        return  # the schema's own default (eval.ks = ${dataset.ks}): checked once resolved
    _require(ks == "auto" or _int_list(ks), key, ks, "expected 'auto', an integer or a list of integers")
    if ks != "auto":
        _require(min([ks] if _is_int(ks) else list(ks)) >= 1, key, ks, "K values must be positive, or 'auto'")


@dataclass
class Eval:
    """Retrieval and its metrics (bench.evaluation; PROTOCOL section 5 for the controls)."""

    ks: Any = "${dataset.ks}"  # auto | an integer | a list of integers
    batch_size: int = 1024
    curve_points: int = 8
    valid_max_requests: Optional[int] = None
    seed_control: bool = False  # single runs: off (a quicker first run); the table experiments turn it on
    aa_control: bool = True

    def __post_init__(self) -> None:
        _check_ks("eval.ks", self.ks)
        _require(self.batch_size >= 1, "eval.batch_size", self.batch_size, "must be at least 1")
        _require(self.curve_points >= 0, "eval.curve_points", self.curve_points, "must be 0 or more")
        _require(self.valid_max_requests is None or self.valid_max_requests >= 1, "eval.valid_max_requests",
                 self.valid_max_requests, "at least 1, or null for all")


@dataclass
class Cache:
    """The stage cache (bench.pipeline.cache)."""

    enabled: bool = True
    dir: str = "${project_root:}/.cache/stages"


@dataclass
class Tune:
    """experiment=tune (bench.tuning); conf/tune/<model>.yaml adds `space`."""

    dir: str = "${project_root:}/tuned"
    report_dir: str = "${project_root:}/results"
    reject_collapsed: bool = True
    confirm: bool = True
    max_candidates: int = 3  # trials confirmed, best first, before the best three-seed mean is kept
    space: Optional[dict[str, Any]] = None  # config key -> sweep expression

    def __post_init__(self) -> None:
        _require(self.max_candidates >= 1, "tune.max_candidates", self.max_candidates, "expected an integer >= 1")
        _require(self.space is None or len(self.space) > 0, "tune.space", self.space,
                 "expected a mapping of config keys to sweep expressions")


LOGGERS = ("none", "csv", "tensorboard", "mlflow")


@dataclass
class Logger:
    """logger=none|csv|tensorboard|mlflow: where each epoch's losses, validation value and seconds go, per model
    of the run, with the final metrics (bench.tracking). Never read back by the run: it changes no result."""

    name: str = "none"
    dir: Optional[str] = None  # csv, tensorboard: the folder written; null = <the run's folder>/logs
    tracking_uri: str = "sqlite:///${project_root:}/outputs/mlflow.db"  # mlflow: a local store, no server
    experiment: str = "increc-bench"  # mlflow: the experiment the runs go to

    def __post_init__(self) -> None:
        _choice("logger.name", self.name, LOGGERS)


DATASET_KINDS = ("synthetic", "kuairand", "atomic")


@dataclass
class Dataset:
    """What every dataset kind has (bench.data)."""

    name: str = MISSING
    kind: str = MISSING
    unknown_items: str = "drop"
    ks: Any = "auto"  # auto | an integer | a list of integers
    existing_budget: Any = "auto"  # auto | a positive integer

    def __post_init__(self) -> None:
        _choice("dataset.kind", self.kind, DATASET_KINDS)
        _choice("dataset.unknown_items", self.unknown_items, ("drop", "add"))
        _check_ks("dataset.ks", self.ks)
        _require(self.existing_budget == "auto" or (_is_int(self.existing_budget) and self.existing_budget >= 1),
                 "dataset.existing_budget", self.existing_budget, "expected a positive integer or 'auto'")


@dataclass
class SyntheticDataset(Dataset):
    """dataset=synthetic: generated in KuaiRand's schema (bench.data.synthetic)."""

    preset: str = "small"
    data_seed: int = 0
    cache_dir: str = "${project_root:}/.cache/synthetic"
    label: str = "is_click"
    include_random: bool = False


@dataclass
class KuaiRandDataset(Dataset):
    """dataset=kuairand / kuairand_sample: an official release's files (bench.data.kuairand); `root: null` is the
    downloaded copy of `release` (bench.data.download, issue 43), fetched on demand when `download` is true."""

    root: Optional[str] = None
    release: Optional[str] = None
    label: str = "is_click"
    include_random: bool = False
    download: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.root is None and self.release not in ("pure", "1k", "27k"):
            raise ConfigError(f"dataset.root is required for dataset={self.name} without a downloadable release: "
                              f"set dataset.root=DIR or dataset.release=pure|1k|27k (its downloaded copy)")


@dataclass
class AtomicDataset(Dataset):
    """dataset=atomic: RecBole atomic files (bench.data.atomic)."""

    atomic_name: str = "${.name}"
    root: str = MISSING
    min_rating: Optional[float] = None


@dataclass
class Model:
    """The backbone: item tower settings and the user tower (`user_tower`, checked against its `_target_`)."""

    name: str = MISSING
    dim: int = 64
    item_side_features: bool = True
    item_normalize: bool = False
    negatives: str = "uniform"  # uniform | in_batch
    interest_scoring: str = "closest"  # closest | max (models.losses.INTEREST_SCORING)
    user_tower: Any = MISSING

    def __post_init__(self) -> None:
        from models.losses import INTEREST_SCORING

        _require(self.dim >= 1, "model.dim", self.dim, "must be at least 1")
        _choice("model.negatives", self.negatives, ("uniform", "in_batch"))
        _choice("model.interest_scoring", self.interest_scoring, tuple(INTEREST_SCORING))


@dataclass
class RecBoleModel(Model):
    """model=recbole: a RecBole sequential model as the user tower."""

    recbole_model: str = "GRU4Rec"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """The top level: one run = one dataset x one backbone x one IncRec variant x one seed."""

    seed: int = 0
    seeds: int = 5
    headline_models: list[str] = field(default_factory=list)
    headline_seeds: Optional[int] = None
    experiment_name: Optional[str] = None
    tuned: Any = "auto"  # auto | true | false
    resume: bool = True
    tuning_applied: Optional[dict[str, Any]] = None  # set by the harness (bench.config.tuned.apply_tuned)
    cache: Cache = field(default_factory=Cache)
    tune: Tune = field(default_factory=Tune)
    requests: Requests = field(default_factory=Requests)
    train: Train = field(default_factory=Train)
    eval: Eval = field(default_factory=Eval)
    dataset: Any = MISSING
    model: Any = MISSING
    increc: Any = MISSING
    existing: Any = MISSING
    logger: Logger = field(default_factory=Logger)  # a group (conf/logger); a config without it logs nothing

    def __post_init__(self) -> None:
        _require(self.seeds >= 1, "seeds", self.seeds, "at least one seed")
        _require(self.headline_seeds is None or self.headline_seeds >= 1, "headline_seeds", self.headline_seeds,
                 "at least one seed, or null for `seeds`")
        _require(isinstance(self.tuned, bool) or self.tuned == "auto", "tuned", self.tuned,
                 "expected true, false or auto")


def _variant_schema() -> type:
    """`increc`'s schema: models.increc.Variant's fields, in a dataclass Hydra may write into (Variant is frozen)."""
    return dataclasses.make_dataclass(
        "Increc", [(f.name, f.type, dataclasses.field(default=f.default)) for f in fields(Variant)])


Increc = _variant_schema()

# name in the ConfigStore -> dataclass; conf/config.yaml lists `schema`, each group's YAML its own
SCHEMAS: dict[str, type] = {"schema": Run, "schema/dataset/synthetic": SyntheticDataset,
                            "schema/dataset/kuairand": KuaiRandDataset, "schema/dataset/atomic": AtomicDataset,
                            "schema/model/tower": Model, "schema/model/recbole": RecBoleModel,
                            "schema/increc/variant": Increc, "schema/logger/logger": Logger}
TYPED_SECTIONS: dict[str, type] = {"requests": Requests, "train": Train, "eval": Eval, "cache": Cache, "tune": Tune}
DATASET_BY_KIND: dict[str, type] = {"synthetic": SyntheticDataset, "kuairand": KuaiRandDataset,
                                    "atomic": AtomicDataset}


def register_schema() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent), before any composition."""
    store = ConfigStore.instance()
    for path, node in SCHEMAS.items():
        group, _, name = path.rpartition("/")
        store.store(group=group or None, name=name, node=node)


# --------------------------------------------------------------------------- reading and errors


@functools.lru_cache(maxsize=None)
def _empty_schema(cls: type) -> DictConfig:
    """`OmegaConf.structured(cls)`, built once per dataclass: building it was a third of a validation's time."""
    return OmegaConf.structured(cls)


def typed_section(cfg: DictConfig, section: str, cls: type | None = None) -> Any:
    """`cfg.<section>` as its dataclass, checked by its `__post_init__`: a ConfigError naming the key otherwise."""
    cls = cls or TYPED_SECTIONS[section]
    try:
        node = OmegaConf.to_container(cfg if section == "" else cfg[section], resolve=True)  # in the whole config's context
        merged = OmegaConf.merge(_empty_schema(cls), node)  # merge copies its first argument: the cache stays empty
        return OmegaConf.to_object(merged)
    except (OmegaConfBaseException, ValueError) as exc:
        raise config_error(exc, prefix=section) from None


def train_settings(cfg: DictConfig) -> Train:
    """`cfg.train` typed (bench.engine.train reads it)."""
    return typed_section(cfg, "train")


def unknown_key(key: str, valid: list[str]) -> ConfigError:
    """An error naming the unknown key, the valid keys of its section and the nearest one."""
    section, _, name = key.rpartition(".")
    near = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean '{(section + '.' if section else '') + near[0]}'?" if near else ""
    where = f"'{section}'" if section else "the top level"
    return ConfigError(f"unknown key '{key}': {where} has {', '.join(sorted(valid))}{hint}")


EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            "int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
            "Optional[int]": "an integer or null", "Optional[float]": "a number or null",
            "Optional[str]": "a string or null"}


def _field_type(cls: Any, name: str) -> Any:
    for f in fields(cls) if is_dataclass(cls) else ():
        if f.name == name:
            return f.type
    return None


def config_error(exc: BaseException, prefix: str = "") -> ConfigError:
    """OmegaConf's (or a schema check's) error as one line naming the key: an unknown key with the keys its
    section has and the nearest one; a wrong type with what the field accepts."""
    while not isinstance(exc, (OmegaConfBaseException, ConfigError, ValueError)) and exc.__cause__ is not None:
        exc = exc.__cause__  # Hydra wraps OmegaConf's error
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, OmegaConfBaseException):
        key = ".".join(p for p in (prefix, str(exc.full_key or "")) if p)
        cls = exc.object_type
        if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and is_dataclass(cls) and exc.key is not None:
            return unknown_key(key, [f.name for f in fields(cls)])
        if isinstance(exc, ValidationError) and exc.key is not None and is_dataclass(cls):
            expected = EXPECTED.get(_field_type(cls, str(exc.key)))
            if expected:
                return ConfigError(f"{key}={exc.value!r}: expected {expected}")
        return ConfigError(" ".join(str(exc).split()))
    return ConfigError(" ".join(str(exc).split()))
