"""Models from the config: the variant (models.increc.Variant) and a fresh IncRec of the configured backbone.
The training settings are the config's own `train` section, typed (bench.config.schema.train_settings)."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.data.schema import Dataset
from bench.errors import ConfigError
from models.increc import IncRec, Variant
from models.item_tower import ItemTower

SPARSE_AUTO_ITEMS = 1_000_000  # train.sparse_item_grads=auto: sparse gradients from this pool size on


def variant_from_config(cfg: DictConfig) -> Variant:
    fields = OmegaConf.to_container(cfg, resolve=True)
    try:
        return Variant(**fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"increc: {exc}") from None


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
        sparse=sparse_item_grads(cfg.train.sparse_item_grads, ds.n_items),
        **({"normalize": True} if cfg.model.item_normalize else {}),
    )
    profile_cards = list(Dataset.cardinalities(ds.users).values())
    n_scenarios = int(ds.log["tab"].max()) + 1
    make_tower = instantiate(cfg.model.user_tower)
    try:
        return IncRec(item_tower, lambda: make_tower(item_tower=item_tower, profile_cardinalities=profile_cards,
                                                     n_scenarios=n_scenarios), variant,
                      interests=str(cfg.model.interest_scoring))
    except (TypeError, ValueError) as exc:  # a combination of user-tower settings its constructor refuses
        raise ConfigError(f"model.user_tower ({cfg.model.name}): {' '.join(str(exc).split())}") from None


