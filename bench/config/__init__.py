"""The run config: its schema registered with Hydra, composed from conf/, and the helpers the entry point and
the tests share (resolvers, derived defaults). The schema itself is bench.config.schema."""

from __future__ import annotations

import copy
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # bench/config/__init__.py -> the repository
CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """What composing conf/ needs, registered once: the schema (bench.config.schema) in Hydra's ConfigStore, and
    the resolvers `${project_root:}` (the repository root, so default paths do not depend on the cwd),
    `${dataset_label:}` (the dataset's name in tuning paths) and `${sweep_seeds:}`."""
    from bench.config.schema import register_schema

    register_schema()
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("dataset_label"):
        OmegaConf.register_new_resolver("dataset_label", lambda *, _root_: dataset_label(_root_))
    if not OmegaConf.has_resolver("sweep_seeds"):
        OmegaConf.register_new_resolver("sweep_seeds", lambda *, _root_: sweep_seeds(_root_))


def seeds_for(cfg: DictConfig, model: str) -> int:
    """How many seeds an experiment gives `model`: `headline_seeds` for the `headline_models`, else `seeds`."""
    headline = cfg.get("headline_seeds")
    if headline is not None and model in list(cfg.get("headline_models") or []):
        return int(headline)
    return int(cfg.seeds)


def sweep_seeds(cfg: DictConfig) -> int:
    """The seed range a sweep enumerates: the largest of `seeds` and `headline_seeds` (jobs past a backbone's
    own count are skipped, `beyond_seeds`)."""
    return max(int(cfg.seeds), int(cfg.get("headline_seeds") or 0))


def beyond_seeds(cfg: DictConfig) -> str | None:
    """Why a sweep job runs nothing (its seed is past its backbone's seed count), or None."""
    wanted = seeds_for(cfg, str(cfg.model.name))
    if int(cfg.seed) >= wanted:
        return (f"skipped: seed {int(cfg.seed)} is past the {wanted} seeds {cfg.model.name} gets "
                f"(seeds={int(cfg.seeds)}, headline_seeds={cfg.get('headline_seeds')} for {list(cfg.get('headline_models') or [])})")
    return None


def dataset_label(cfg: DictConfig) -> str:
    """The dataset's name in tuning paths (tuned values, reports, searches): `dataset.name`, with the preset
    for a synthetic preset other than the default `small` and the release for a KuaiRand release given
    explicitly, so values tuned on one never reach a run on another."""
    ds = cfg.dataset
    if ds.get("kind") == "synthetic" and str(ds.get("preset", "small")) != "small":
        return f"{ds.name}_{ds.preset}"
    if ds.get("kind") == "kuairand" and ds.get("release"):
        return f"{ds.name}_{ds.release}"
    return str(ds.name)


def _nice(x: float) -> int:
    """The largest of 1, 2, 5 x 10^n not above x (at least 1)."""
    if x < 1:
        return 1
    exp = 10 ** math.floor(math.log10(x))
    return int(max(m * exp for m in (1, 2, 5) if m * exp <= x))


def auto_ks(pool_size: int) -> list[int]:
    """K values scaled to the pool: K and 2K with K = a round number near pool/150, in [10, 1000].

    7.6k items (KuaiRand-Pure) gives 50 and 100; 4.4M items (KuaiRand-1K) gives the paper's 1k and 2k.
    """
    k = min(max(_nice(pool_size / 150), 10), 1000)
    k = min(k, max(pool_size // 4, 1))  # Sup@2K needs 4K <= pool
    return [k, 2 * k]


def resolve_ks(ks, pool_size: int) -> list[int]:
    """The K values of `eval.ks` for a pool of `pool_size` items (auto: scaled); 2K must fit in the pool."""
    values = auto_ks(pool_size) if ks == "auto" else int_list(ks, "eval.ks")
    if 2 * max(values) > pool_size:
        raise ConfigError(f"eval.ks={values}: Sup@K and Inc@K need 2K <= pool size ({pool_size}); choose smaller K")
    return sorted(set(values))


def int_list(value, key: str) -> list[int]:
    items = value if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else [value]
    try:
        return [int(v) for v in items]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: give an integer or a list of integers") from None


_COMPOSED: dict[tuple, DictConfig] = {}  # (overrides, hydra_section, conf/'s state) -> a composed config
_COMPOSED_MAX = 256


def _conf_state() -> tuple:
    """What a composition reads from disk: every file under conf/ with its size and modification time."""
    return tuple((str(p), st.st_size, st.st_mtime_ns) for p in sorted(CONF_DIR.rglob("*.yaml")) if (st := p.stat()))


def compose(*overrides: str, hydra_section: bool = False) -> DictConfig:
    """The config `python -m bench OVERRIDES` runs with (without Hydra's runtime), or a one-line ConfigError:
    an unknown key with its section's keys and the nearest one, a value of the wrong type, an unknown option.
    A composition takes about half a second (Hydra builds the defaults tree and merges every schema); the same
    overrides on the same conf/ files give a copy of the one already composed in this process."""
    key = (tuple(overrides), hydra_section, _conf_state())
    if key not in _COMPOSED:
        if len(_COMPOSED) >= _COMPOSED_MAX:
            _COMPOSED.clear()
        _COMPOSED[key] = _compose(overrides, hydra_section)
    return copy.deepcopy(_COMPOSED[key])


def _compose(overrides: tuple[str, ...], hydra_section: bool) -> DictConfig:
    """One composition. Hydra builds the defaults tree from the config-group choices, merges their files, then
    applies the other overrides (`key=value`) to the result; when every override is a plain group choice or
    `key=value`, the group choices' composition is taken from compose()'s cache and the values are applied
    with Hydra's own step, so configs that differ only in values (most tests, bench.tuning.confirm) compose once
    per set of choices. Anything else, or any failure there, goes through Hydra's compose API whole, which also
    words the errors."""
    split = None if hydra_section else _groups_and_values(overrides)
    if split is not None and split[1]:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        groups, values = split
        try:
            cfg = compose(*groups)  # a copy of the cached composition of the choices alone
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)  # what Hydra does after merging the files
            return cfg
        except Exception:  # noqa: BLE001 - the whole composition below raises the error the user reads
            pass
    return _hydra_compose(overrides, hydra_section)


def _groups_and_values(overrides: tuple[str, ...]) -> tuple[tuple[str, ...], list] | None:
    """`overrides` split into config-group choices (as given) and parsed `key=value` overrides, or None when one
    is anything else (a sweep, `+`, `++`, `~`, a package, Hydra's own keys, unparsable)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:  # noqa: BLE001 - Hydra's compose words the syntax error
        return None
    groups, values = [], []
    for line, o in zip(overrides, parsed):
        key = o.key_or_group
        if (o.type != OverrideType.CHANGE or o.is_sweep_override() or o.package is not None
                or key == "hydra" or key.startswith(("hydra.", "hydra/"))):
            return None
        if "/" in key or (CONF_DIR / key).is_dir():
            if isinstance(o.value(), dict):  # `group={...}` is a value override, applied in command-line order
                return None
            groups.append(line)
        else:
            values.append(o)
    return tuple(groups), values


def _hydra_compose(overrides: tuple[str, ...], hydra_section: bool) -> DictConfig:
    """One composition through Hydra's compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.config.schema import config_error

    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        try:
            return hydra_compose("config", overrides=list(overrides), return_hydra_config=hydra_section)
        except (HydraException, OmegaConfBaseException) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
            if isinstance(cause, OmegaConfBaseException):
                return_error = config_error(cause)
            else:
                return_error = ConfigError(" ".join(str(exc).split("Config search path")[0].split()))
            raise return_error from None
