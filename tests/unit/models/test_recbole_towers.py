"""RecBole's sequential models as user towers (models/backbones/recbole_seq.py): the adapter computes what
RecBole's own forward computes on the same weights, reads the shared item tower, and trains in the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.recbole_compat import recbole_sequential_class
from bench.pipeline.run import run
from models.backbones.recbole_seq import NOT_SERVED, RECBOLE_MODELS, RecBoleTower, SharedItemEmbedding, _Dataset, recbole_config
from models.inputs import UserInput
from models.item_tower import ItemTower
from tests.conftest import compose_config

N_ITEMS, MAX_LEN, DIM = 40, 12, 16


def _item_tower() -> ItemTower:
    torch.manual_seed(0)
    features = torch.randint(0, 3, (N_ITEMS, 2))
    return ItemTower(features, [3, 3], dim=DIM)


def _histories(batch: int = 6) -> UserInput:
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([1, 2, 5, MAX_LEN, 7, 3])[:batch]
    mask = torch.arange(MAX_LEN)[None] < lengths[:, None]  # [B, L], left-aligned
    items = torch.randint(0, N_ITEMS, (batch, MAX_LEN), generator=g) * mask
    return UserInput(torch.zeros(batch, 1, dtype=torch.long), items, torch.zeros_like(items), mask)


@pytest.mark.parametrize("name", RECBOLE_MODELS)
def test_adapter_equals_recboles_own_forward_on_the_same_weights(name: str) -> None:
    item_tower = _item_tower()
    tower = RecBoleTower(item_tower, [], 1, name, max_len=MAX_LEN, use_profile=False).eval()
    reference = recbole_sequential_class(name)(recbole_config(name, DIM, MAX_LEN, None), _Dataset(N_ITEMS, MAX_LEN))
    own = {k: v for k, v in tower.model.state_dict().items() if not k.startswith("item_embedding.")}
    missing, unexpected = reference.load_state_dict(own, strict=False)
    assert missing == ["item_embedding.weight"] and not unexpected  # RecBole's table is the only difference
    with torch.no_grad():
        reference.item_embedding.weight[0] = 0.0  # padding
        reference.item_embedding.weight[1:] = item_tower.all_items()  # RecBole id i = item code i - 1
    reference.eval()
    user = _histories()
    seq, lengths = tower.recbole_inputs(user)
    with torch.no_grad():
        expected = reference(seq, lengths) if tower._takes_length else reference(seq)
        got = tower(user)
    assert got.shape == (6, 1, DIM)
    torch.testing.assert_close(got[:, 0], expected, rtol=1e-5, atol=1e-6)


def test_recbole_ids_are_item_codes_plus_one_with_padding_zero() -> None:
    tower = RecBoleTower(_item_tower(), [], 1, "GRU4Rec", max_len=MAX_LEN, use_profile=False)
    user = _histories()
    seq, lengths = tower.recbole_inputs(user)
    assert torch.equal(seq[user.mask], user.items[user.mask] + 1) and (seq[~user.mask] == 0).all()
    assert torch.equal(lengths, user.lengths)
    empty = UserInput(user.profile[:1], torch.zeros(1, MAX_LEN, dtype=torch.long), user.tabs[:1],
                      torch.zeros(1, MAX_LEN, dtype=torch.bool))
    assert tower.recbole_inputs(empty)[1].tolist() == [1]  # an empty history is read as one padding item
    assert torch.isfinite(tower(empty)).all()
    embedding = tower.model.item_embedding
    assert isinstance(embedding, SharedItemEmbedding) and embedding.item_tower is tower.item_tower
    assert not any(isinstance(m, torch.nn.Embedding) and m.num_embeddings == N_ITEMS + 1 for m in tower.modules())


@pytest.mark.parametrize("name", RECBOLE_MODELS)
def test_gradients_reach_the_shared_item_tower_and_precomputed_vectors_change_nothing(name: str) -> None:
    item_tower = _item_tower()
    tower = RecBoleTower(item_tower, [4], 1, name, max_len=MAX_LEN).eval()  # eval: no dropout draws to compare
    user = _histories()
    out = tower(user)
    out.square().sum().backward()
    assert item_tower.ids.weight.grad is not None and item_tower.ids.weight.grad.abs().sum() > 0
    assert tower.profile.tables[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        again = tower(user.with_item_vectors(item_tower(user.items)))  # the IncRec step's vectors, computed once
    torch.testing.assert_close(again, out.detach())


def test_unknown_and_unserved_models_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="no sequential model 'GRU4Recc'.*GRU4Rec"):
        RecBoleTower(_item_tower(), [], 1, "GRU4Recc", max_len=MAX_LEN)
    with pytest.raises(ValueError, match="BERT4Rec cannot be a user tower here: bidirectional"):
        RecBoleTower(_item_tower(), [], 1, "BERT4Rec", max_len=MAX_LEN)


def test_every_recbole_sequential_model_is_served_or_has_its_reason() -> None:
    """The backbones page's list is complete: every class RecBole 1.2.1 exports as a sequential model is one or the other."""
    from models.recbole_compat import recbole_sequential_names

    assert set(recbole_sequential_names()) == set(RECBOLE_MODELS) | set(NOT_SERVED)
    assert not set(RECBOLE_MODELS) & set(NOT_SERVED)


@pytest.mark.parametrize("name", RECBOLE_MODELS)
def test_every_listed_model_trains_as_base_and_as_increc_na(name: str, tmp_path: Path, synthetic_cache: Path) -> None:
    """One short epoch (one batch of 32) of the base and of IncRec-NA's three towers in the pipeline, on `tiny`;
    GC-SAN and NextItNet step at about 1 s per batch of 128 there, so a longer epoch would cost the suite minutes."""
    cfg = compose_config("dataset.preset=tiny", "train.progress=false", "train.batch_size=32",
                         f"dataset.cache_dir={synthetic_cache}", "model=recbole", f"model.recbole_model={name}",
                         "increc=na", "train.epochs=1", "train.early_stopping=false", "eval.seed_control=false",
                         "train.max_batches=1")
    rec = run(cfg, tmp_path).record
    assert rec["config"]["model"]["name"] == f"recbole_{name}"
    for k in rec["ks"]:
        assert 0.0 <= rec["metrics"][f"Base@{k}"] <= 1.0 and 0.0 <= rec["metrics"][f"Inc@{k}"] <= 1.0
    assert set(rec["training"]["variant"]["loss"][0]) >= {"basic", "incremental", "total"}


def test_the_docs_list_every_recbole_model_with_its_status() -> None:
    from bench.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "docs" / "backbones.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| ") and ("served" in line)]
    listed = {name.strip(): line for line in rows for name in line.split("|")[1].split(",")}
    for name in RECBOLE_MODELS:
        assert "| served" in listed[name], name
    for name in NOT_SERVED:
        assert "not served" in listed[name], name

