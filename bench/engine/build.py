"""Models and training settings from the config: the variant (models.increc.Variant), the training and
speed settings (bench.engine.train, bench.engine.levers) and a fresh IncRec of the configured backbone."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.data.schema import Dataset
from bench.errors import ConfigError
from bench.engine.train import TrainConfig
from bench.engine.levers import Levers
from models.increc import IncRec, Variant
from models.item_tower import ItemTower

SPARSE_AUTO_ITEMS = 1_000_000  # train.sparse_item_grads=auto: sparse gradients from this pool size on


def variant_from_config(cfg: DictConfig) -> Variant:
    fields = OmegaConf.to_container(cfg, resolve=True)
    try:
        return Variant(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"increc: {exc}") from None


def train_config(cfg: DictConfig) -> TrainConfig:
    """The training settings of `cfg.train` (and the backbone's negative sampler)."""
    t = cfg.train
    return TrainConfig(epochs=int(t.epochs), batch_size=int(t.batch_size), lr=float(t.lr),
                       n_negatives=int(t.n_negatives), negatives=str(cfg.model.get("negatives", "uniform")),
                       progress=bool(t.progress), max_batches=t.get("max_batches"),
                       early_stopping=bool(t.get("early_stopping", False)), max_epochs=int(t.get("max_epochs", 40)),
                       patience=int(t.get("patience", 4)), levers=levers_config(cfg))


def levers_config(cfg: DictConfig) -> Levers:
    """The training-speed settings of `cfg.train` (bench.engine.levers)."""
    t = cfg.train
    return Levers(precision=str(t.get("precision", "auto")), dropout_sampler=str(t.get("dropout_sampler", "bits")),
                  item_vectors_once=bool(t.get("item_vectors_once", True)), compile=bool(t.get("compile", False)))


def sparse_item_grads(setting: bool | str, n_items: int) -> bool:
    """Whether the item tower's embeddings get sparse gradients (train.sparse_item_grads).

    Dense AdaGrad reads and writes the whole [n_items, d] table every step; sparse touches only the
    rows a batch read. Both give the same updates up to float summation order of repeated rows, and
    dense is faster for small pools, hence auto = sparse from SPARSE_AUTO_ITEMS items on.
    """
    return n_items >= SPARSE_AUTO_ITEMS if setting == "auto" else bool(setting)


def build_model(cfg: DictConfig, ds: Dataset, variant: Variant, seed: int) -> IncRec:
    """A fresh IncRec of the configured backbone: shared item tower, one user tower per role."""
    torch.manual_seed(seed)
    item_tower = ItemTower(
        torch.tensor(ds.item_features()),  # a copy: cached frames may be read-only
        list(Dataset.cardinalities(ds.items).values()),
        dim=int(cfg.model.dim),
        use_side_features=bool(cfg.model.item_side_features),
        sparse=sparse_item_grads(cfg.train.get("sparse_item_grads", "auto"), ds.n_items),
        **({"normalize": True} if cfg.model.get("item_normalize", False) else {}),
    )
    profile_cards = list(Dataset.cardinalities(ds.users).values())
    n_scenarios = int(ds.log["tab"].max()) + 1
    make_tower = instantiate(cfg.model.user_tower)
    try:
        return IncRec(item_tower, lambda: make_tower(item_tower=item_tower, profile_cardinalities=profile_cards,
                                                     n_scenarios=n_scenarios), variant,
                      interests=str(cfg.model.get("interest_scoring", "closest")))
    except (TypeError, ValueError) as exc:  # a combination of user-tower settings its constructor refuses
        raise ConfigError(f"model.user_tower ({cfg.model.name}): {' '.join(str(exc).split())}") from None


