"""Dataset readers: every source goes through the KuaiRand reader into bench.data.schema.Dataset."""

from __future__ import annotations

from pathlib import Path

from bench.data.atomic import find_atomic_files, load_atomic
from bench.data.download import local_copy
from bench.data.kuairand import KuaiRandFiles, find_files, load_kuairand
from bench.data.schema import Dataset
from bench.errors import ConfigError, DataError

KINDS = ("synthetic", "kuairand", "atomic")


def dataset_root(cfg, progress: bool = True) -> Path:
    """The directory a `dataset` config group points at (synthetic files are generated there first; a KuaiRand
    `root: null` is the downloaded copy of `release`, bench.data.download)."""
    kind = cfg.kind
    if kind == "synthetic":
        from bench.data.synthetic import ensure_generated

        root = ensure_generated(cfg.preset, int(cfg.data_seed), Path(cfg.cache_dir), progress=progress)
    elif kind == "kuairand" and cfg.get("root") is None:  # the downloaded copy of the release (bench.data.download)
        root = local_copy(str(cfg.release), fetch=bool(cfg.get("download", False)), progress=progress)
    elif kind in ("kuairand", "atomic"):
        root = Path(cfg.root)
        if not root.is_dir():
            hint = " (the real sample is expected beside the project root)" if cfg.name == "kuairand_sample" else ""
            raise DataError(f"{root}: data directory not found{hint}; set dataset.root=DIR")
    else:
        raise ConfigError(f"dataset.kind={kind!r}; choose one of {list(KINDS)}")
    return root


def dataset_files(cfg, progress: bool = True) -> list[Path]:
    """The files `load_dataset` reads for this config: what the data fingerprint hashes."""
    if cfg.kind == "atomic":
        return find_atomic_files(dataset_root(cfg, progress), cfg.atomic_name).all
    found: KuaiRandFiles = find_files(dataset_root(cfg, progress), include_random=bool(cfg.include_random),
                                      release=cfg.get("release"))
    return [*found.logs, *found.videos] + ([found.users] if found.users else [])


def load_dataset(cfg, progress: bool = True) -> Dataset:
    """Read the dataset a `dataset` config group describes (synthetic files are generated first)."""
    if cfg.kind == "atomic":
        return load_atomic(dataset_root(cfg, progress), cfg.atomic_name, min_rating=cfg.min_rating,
                           unknown_items=cfg.unknown_items, dataset_name=cfg.name)
    return load_kuairand(
        dataset_root(cfg, progress),
        label=cfg.label,
        include_random=bool(cfg.include_random),
        release=cfg.get("release"),
        unknown_items=cfg.unknown_items,
        name=cfg.name,
        progress=progress,
    )
