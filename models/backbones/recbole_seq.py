"""Any RecBole 1.2.1 sequential recommender as the user tower f_b (`model=recbole model.recbole_model=NAME`).

RecBole's sequential models share one shape: built from a `Config` and a dataset, they embed a
left-aligned item sequence (padding id 0, items 1..n) with `self.item_embedding` and return the
sequence representation from `forward(item_seq, item_seq_len)` ([B, D], in the item embedding space;
NextItNet's `forward(item_seq)`). This module builds such a model from the minimum it reads and uses
that representation as the user vector, [B, 1, D].

The shared item tower (PROTOCOL section 3): RecBole's own `item_embedding` table is removed and
replaced by `SharedItemEmbedding`, which maps a RecBole id i > 0 to the shared item tower's vector of
item code i - 1 (ids, side features) and id 0 to a zero vector (RecBole's padding row is zero and
stays zero). Every call the model makes goes through it: the history sequence itself, and the
session-graph nodes SR-GNN and GC-SAN embed. When the IncRec step has computed the history's item
vectors once for every tower (`UserInput.item_vectors`), the call on the history sequence reads those.

What the harness adds, as for the built-in towers: the profile vector P_u (sum of profile-field
embeddings) is added to the output when `use_profile`; `output_dropout` (0 by default) drops elements of
RecBole's output, a regulariser that every model has (the tuning space searches it); an empty history is read as one padding item
(RecBole cannot read length 0) so its output is defined. The scenario of history items is not given to
RecBole's models (they read item ids only).

The RecBole config is RecBole's overall.yaml and the model's own YAML (recbole/properties/model/<NAME>.yaml), `params`
overriding it, `embedding_size` (or `hidden_size` where the model's item width is its hidden size)
set to the harness's d, `MAX_ITEM_LIST_LENGTH` to `max_len`, and RecBole's field names.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from models.recbole_compat import recbole_model_defaults, recbole_sequential_class
from models.dropout import Dropout
from models.embeddings import FieldEmbeddings
from models.inputs import UserInput
from models.item_tower import ItemTower

# The RecBole 1.2.1 sequential models this adapter serves (each tested against RecBole's own forward); the
# README lists the others with the reason each does not fit a user tower here.
RECBOLE_MODELS = ("GRU4Rec", "NARM", "STAMP", "SRGNN", "GCSAN", "LightSANs", "NextItNet", "FEARec", "SINE", "SASRec",
                  "CORE")
_USER_ID = "its forward reads a user id (a per-user embedding table), which a request here does not carry"
_FEATURES = "it reads item feature fields through RecBole's dataset (FeatureSeqEmbLayer), not the shared item tower"
NOT_SERVED = {
    "BERT4Rec": "bidirectional cloze training: its forward returns every position, read at an appended [mask] token",
    "Caser": _USER_ID, "HRM": _USER_ID, "NPE": _USER_ID, "SHAN": _USER_ID, "HGN": _USER_ID, "FOSSIL": _USER_ID,
    "TransRec": _USER_ID, "FPMC": _USER_ID + "; it has no item_embedding table",
    "FDSA": _FEATURES, "GRU4RecF": _FEATURES, "SASRecF": _FEATURES,
    "S3Rec": _FEATURES + ", and it needs its self-supervised pre-training stage",
    "GRU4RecKG": "it reads pre-trained knowledge-graph entity embeddings", "KSR": "it reads a knowledge graph",
    "DIN": "a click-through-rate model: it scores one target item, it has no user vector",
    "DIEN": "a click-through-rate model: it scores one target item, it has no user vector",
    "RepeatNet": "its forward returns a distribution over all items (repeat and explore), not a user vector",
    "GRU4RecCPR": "its forward returns every position's output, for its Softmax-CPR output layer, not a user vector",
    "SASRecCPR": "its forward does not run on a [B, L] sequence outside RecBole's trainer (it fails indexing a list)",
}
_FIELDS = {"USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
           "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "TIME_FIELD": "timestamp"}


class _Config(dict):
    """What a RecBole model reads from its `Config`: `config[key]`, None for a key it does not set (as
    RecBole's Config answers)."""

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key)


class _Dataset:
    """What a RecBole sequential model reads from its dataset at construction: the item count (padding
    included), user count, an empty interaction table (FEARec indexes its targets there) and the
    sequence field's length."""

    def __init__(self, n_items: int, max_len: int) -> None:
        self.item_num = n_items + 1  # RecBole's id 0 is padding
        self.user_num = 1
        self.inter_feat = {_FIELDS["ITEM_ID_FIELD"]: torch.zeros(0, dtype=torch.long),
                           _FIELDS["ITEM_ID_FIELD"] + _FIELDS["LIST_SUFFIX"]: torch.zeros(0, max_len, dtype=torch.long),
                           _FIELDS["ITEM_LIST_LENGTH_FIELD"]: torch.zeros(0, dtype=torch.long)}
        self.field2seqlen = {_FIELDS["ITEM_ID_FIELD"] + _FIELDS["LIST_SUFFIX"]: max_len}

    def num(self, field: str) -> int:
        return self.item_num if field == _FIELDS["ITEM_ID_FIELD"] else self.user_num


def recbole_config(name: str, dim: int, max_len: int, params: dict | None) -> _Config:
    """The model's RecBole YAML, then `params`, then the harness's width, sequence length and fields."""
    values = recbole_model_defaults(name)
    if isinstance(params, DictConfig):  # from the Hydra config: plain lists and dicts, as RecBole's own loader gives
        params = OmegaConf.to_container(params, resolve=True)
    values.update(dict(params or {}))
    width = "embedding_size" if "embedding_size" in values or "hidden_size" not in values else "hidden_size"
    values[width] = dim
    values.setdefault("loss_type", "CE")  # read by every model's constructor; its loss is never used here
    values.update(_FIELDS, MAX_ITEM_LIST_LENGTH=max_len, device=torch.device("cpu"))
    return _Config(values)


class SharedItemEmbedding(nn.Module):
    """RecBole ids -> the shared item tower's vectors: id 0 (padding) -> 0, id i -> item code i - 1.
    [...] long -> [..., D]."""

    def __init__(self, item_tower: ItemTower) -> None:
        super().__init__()
        self.item_tower = item_tower
        self.embedding_dim = item_tower.dim
        self._history: tuple[torch.Tensor, torch.Tensor] | None = None  # (ids, vectors) of this call's history

    def read_history(self, ids: torch.Tensor, vectors: torch.Tensor | None) -> None:
        """Vectors [B, L, D] already computed for the history ids [B, L] (None: compute them)."""
        self._history = None if vectors is None else (ids, vectors)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._history is not None and ids is self._history[0]:
            return self._history[1]
        real = (ids > 0).unsqueeze(-1)  # [..., 1]
        return self.item_tower((ids - 1).clamp(min=0)) * real


class RecBoleTower(nn.Module):
    """A RecBole sequential model's sequence representation (+ the profile vector): [B, 1, D]."""

    n_interests = 1

    def __init__(self, item_tower: ItemTower, profile_cardinalities: list[int], n_scenarios: int,
                 recbole_model: str, max_len: int = 50, params: dict | None = None, use_profile: bool = True,
                 output_dropout: float = 0.0, initializer_range: float = 0.02) -> None:
        super().__init__()
        del n_scenarios  # RecBole's models read item ids only
        self.name = recbole_model
        self.max_len = max_len
        if recbole_model in NOT_SERVED:
            raise ValueError(f"RecBole's {recbole_model} cannot be a user tower here: {NOT_SERVED[recbole_model]}")
        cls = recbole_sequential_class(recbole_model)
        with contextlib.redirect_stdout(io.StringIO()):  # FEARec prints its frequency indices while it is built
            self.model = cls(recbole_config(recbole_model, item_tower.dim, max_len, params),
                             _Dataset(item_tower.n_items, max_len))
        if not isinstance(getattr(self.model, "item_embedding", None), nn.Embedding):
            raise ValueError(f"RecBole's {recbole_model} has no item_embedding table to share (see the README's "
                             "list of RecBole models)")
        self.model.item_embedding = SharedItemEmbedding(item_tower)  # RecBole's table removed: ids read the shared tower
        self.item_tower = item_tower
        self._takes_length = "item_seq_len" in cls.forward.__code__.co_varnames[:cls.forward.__code__.co_argcount]
        self.profile = FieldEmbeddings(profile_cardinalities, item_tower.dim, initializer_range) \
            if use_profile and profile_cardinalities else None
        self.output_dropout = Dropout(output_dropout)  # the harness's own, on RecBole's output (0 = none)

    def recbole_inputs(self, user: UserInput) -> tuple[torch.Tensor, torch.Tensor]:
        """RecBole's (item_seq [B, max_len] with ids + 1 and padding 0, item_seq_len [B] >= 1)."""
        seq = torch.where(user.mask, user.items + 1, torch.zeros_like(user.items))  # [B, L]
        return self._max_len_columns(seq), user.lengths.clamp(min=1, max=self.max_len)

    def _max_len_columns(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, ...] -> [B, max_len, ...], zero-padded on the right or cut: RecBole's models are built for
        max_len columns (LightSANs and SINE reshape by it)."""
        missing = self.max_len - x.shape[1]
        if missing > 0:
            x = torch.nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (0, missing))
        return x[:, : self.max_len]

    def sequence_output(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """RecBole's forward on (item_seq, item_seq_len): [B, D]."""
        self.model.device = seq.device  # SINE moves its embeddings to `self.device`
        out = self.model(seq, lengths) if self._takes_length else self.model(seq)
        if out.shape != (seq.shape[0], self.item_tower.dim):
            raise ValueError(f"RecBole's {self.name} returned {tuple(out.shape)} where a user vector "
                             f"[{seq.shape[0]}, {self.item_tower.dim}] was expected: it cannot be a user tower here")
        return out

    def forward(self, user: UserInput) -> torch.Tensor:
        seq, lengths = self.recbole_inputs(user)
        vectors = user.item_vectors
        if vectors is not None:  # the step's history vectors [B, L, D], padded to max_len, zero at padding
            vectors = self._max_len_columns(vectors * user.mask.unsqueeze(-1))
        self.model.item_embedding.read_history(seq, vectors)
        try:
            out = self.sequence_output(seq, lengths)  # [B, D]
        finally:
            self.model.item_embedding.read_history(seq, None)
        out = self.output_dropout(out)
        if self.profile is not None:
            out = out + self.profile(user.profile)
        return out[:, None]  # [B, 1, D]
