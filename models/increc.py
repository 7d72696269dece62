"""IncRec (paper 2.2): a shared item tower with basic, incremental and alignment user towers.

    L = L_b + L_inc + L_align                                              (eq. 8)
    L_b     basic tower,       positives RTG ∪ ITG, negatives N            (eq. 2)
    L_inc   incremental tower, positives ITG weighted by α, negatives RTG ∪ N  (eq. 4)
    L_align alignment tower,   positives ETG, negatives N                  (eq. 6)
    α_i     = s_align(u, j), j the exposed item nearest to i               (eq. 7)

The variants of the paper's Tables 1-3 switch parts on and off (PROTOCOL section 4); the base
model ("TB-Online") is the basic tower alone. Every tower is a fresh instance of the backbone,
so any backbone with the user-tower signature (UserInput -> [B, n_interests, D]) plugs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from models.inputs import UserInput
from models.item_tower import ItemTower
from models.losses import nearest_exposed_alpha, sampled_softmax, score, transform_alpha

ALPHA_SOURCES = ("one", "item", "nearest_exposed")
ALPHA_TRANSFORMS = ("raw", "sigmoid", "softplus")
# α's normalising mean on the CPU: over the selected values (the exact sums of the records made before issue 44);
# elsewhere, and with this off, a masked sum over a count that reads nothing back from the device
EXACT_CPU_ALPHA_MEAN = True
SHUFFLE_SCOPES = ("request", "day")  # where shuffle_labels permutes the RTG / ITG flags (PROTOCOL 5)


@dataclass(frozen=True)
class Variant:
    """Which towers train, on what, and which tower serves (PROTOCOL section 4)."""

    name: str  # off (base), na, ori, on, tb_itg, tb_boost
    incremental: bool = False  # train an incremental tower with L_inc and serve it
    alignment: bool = False  # train an alignment tower with L_align (needed by alpha item / nearest_exposed)
    alpha: str = "one"  # one (IncRec-NA), item (IncRec-ori: s_align(u, i)), nearest_exposed (eq. 7)
    alpha_transform: str = "sigmoid"  # raw | sigmoid | softplus: how the inner product becomes a weight
    alpha_normalise: bool = True  # divide α by its batch mean |α|, so L_inc keeps IncRec-NA's scale
    basic_targets: str = "all"  # all (RTG ∪ ITG) or itg (TB-ITG)
    itg_weight: float = 1.0  # weight of ITG positives in L_b (TB-boost > 1)
    alpha_exclude_self: bool = False  # eq. 7 over the other exposed items only (PROTOCOL 4); none left: α = 1
    shuffle_labels: bool = False  # RTG / ITG flags permuted among the training targets (a control, PROTOCOL 5)
    shuffle_within: str = "request"  # request (v2's na_shuffled) | day (v3's na_permuted: across each day's targets)

    def __post_init__(self) -> None:
        if self.alpha not in ALPHA_SOURCES:
            raise ValueError(f"increc.alpha={self.alpha!r}; choose one of {list(ALPHA_SOURCES)}")
        if self.alpha != "one" and not self.alignment:
            raise ValueError(f"increc.alpha={self.alpha!r} needs the alignment tower (increc.alignment=true)")
        if self.alpha_exclude_self and self.alpha != "nearest_exposed":
            raise ValueError(f"increc.alpha_exclude_self=true changes eq. 7's nearest exposed item; it needs "
                             f"increc.alpha=nearest_exposed (got {self.alpha!r})")
        if self.alpha_transform not in ALPHA_TRANSFORMS:
            raise ValueError(f"increc.alpha_transform={self.alpha_transform!r}; choose one of {list(ALPHA_TRANSFORMS)}")
        if self.itg_weight <= 0:
            raise ValueError(f"increc.itg_weight={self.itg_weight}: must be positive")
        if self.shuffle_within not in SHUFFLE_SCOPES:
            raise ValueError(f"increc.shuffle_within={self.shuffle_within!r}; choose one of {list(SHUFFLE_SCOPES)}")
        if self.basic_targets not in ("all", "itg"):
            raise ValueError(f"increc.basic_targets={self.basic_targets!r}; choose all or itg")

    @property
    def is_base(self) -> bool:
        return not self.incremental and self.basic_targets == "all" and self.itg_weight == 1.0 and not self.shuffle_labels


@dataclass
class TrainBatch:
    """Everything one optimisation step needs for B requests (built by bench.engine.batches)."""

    user: UserInput
    negatives: torch.Tensor  # [M] long, sampled from the pool
    x_rows: torch.Tensor  # [P] long, batch row of each target of X_u
    x_items: torch.Tensor  # [P] long
    x_is_itg: torch.Tensor  # [P] bool
    x_neg_mask: torch.Tensor  # [B, M] bool, negative equals a target of the row
    rtg: torch.Tensor  # [B, E1] long, the row's RTG items (padded)
    rtg_mask: torch.Tensor  # [B, E1] bool, True = real
    etg_rows: torch.Tensor  # [Q] long
    etg_items: torch.Tensor  # [Q] long
    etg: torch.Tensor  # [B, E2] long, the row's exposed items (padded)
    etg_mask: torch.Tensor  # [B, E2] bool
    etg_neg_mask: torch.Tensor  # [B, M] bool, negative equals an exposed item of the row
    neg_logq: torch.Tensor | None = None  # [M] log sampling probability of each negative (in-batch sampling)
    x_logq: torch.Tensor | None = None  # [P] the same for each target
    etg_logq: torch.Tensor | None = None  # [Q] the same for each exposed item
    x_itg_index: torch.Tensor | None = None  # [P_itg] long, positions of the ITG targets in x_* (x_is_itg's nonzero,
    # built with the batch on the host so the step never reads a mask back from the device); None: derived here

    def itg_index(self) -> torch.Tensor:
        """[P_itg] long positions of the ITG targets among x_rows / x_items (no device sync when built with the batch)."""
        return self.x_itg_index if self.x_itg_index is not None else self.x_is_itg.nonzero().squeeze(1)

    def _map(self, fn: Callable) -> "TrainBatch":
        """The batch with `fn` applied to each tensor and to the UserInput (None fields stay None)."""
        return TrainBatch(**{k: (fn(v) if isinstance(v, (torch.Tensor, UserInput)) else v) for k, v in vars(self).items()})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TrainBatch":
        """The batch on `device`; non_blocking copies overlap the step only from pinned memory (pin_memory)."""
        return self._map(lambda v: v.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "TrainBatch":
        """The batch in page-locked host memory, so its copies to a CUDA device can be asynchronous."""
        return self._map(lambda v: v.pin_memory())


class IncRec(nn.Module):
    """The towers of one variant and its loss; `serve` gives the user vectors retrieval uses."""

    def __init__(self, item_tower: ItemTower, make_user_tower: Callable[[], nn.Module], variant: Variant,
                 interests: str = "closest") -> None:
        super().__init__()
        self.variant = variant
        self.interests = interests  # how multi-interest towers score items in the loss (losses.sampled_softmax)
        self.item_tower = item_tower
        names = ["basic"] + (["incremental"] if variant.incremental else []) + (["alignment"] if variant.alignment else [])
        self.towers = nn.ModuleDict({name: make_user_tower() for name in names})
        # training-speed settings (bench.engine.levers sets them from train.*); neither changes what is computed
        # in fp32 beyond float summation order
        self.item_vectors_once = False  # one item-tower call per step on every id it reads (histories included)
        self.tower_autocast: torch.dtype | None = None  # bf16: the user towers run under autocast in training

    def _user_vectors(self, name: str, user: UserInput) -> torch.Tensor:
        """[B, K, D] tower `name`'s user vectors for the loss, in float32 (under autocast when set)."""
        if self.tower_autocast is None:
            return self.towers[name](user)
        device = user.items.device.type
        with torch.autocast(device_type=device, dtype=self.tower_autocast):
            out = self.towers[name](user)
        return out.float()

    @property
    def serving_tower(self) -> str:
        return "incremental" if self.variant.incremental else "basic"

    def serve(self, user: UserInput) -> torch.Tensor:
        """[B, K, D] user vectors of the serving tower."""
        return self.towers[self.serving_tower](user)

    def _item_vectors(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """The item-tower vectors of every item id a step reads: negatives [M, D], targets x [P, D], and as
        the variant needs them the RTG [B, E1, D], exposed items etg_items [Q, D] and etg [B, E2, D].

        With item_vectors_once the ids are concatenated and embedded in ONE item-tower call, histories
        [B, L, D] included (every tower then reads those instead of embedding the history again): one
        lookup and one gradient per embedding table per step instead of one per use. The vectors are
        the same either way (an embedding lookup is exact); gradients differ only in summation order.
        """
        v = self.variant
        ids = {"neg": batch.negatives, "x": batch.x_items}
        if v.incremental:
            ids["rtg"] = batch.rtg
        if v.alignment:
            ids["etg_items"] = batch.etg_items
        if v.alpha == "nearest_exposed":
            ids["etg"] = batch.etg
        if not self.item_vectors_once:
            return {name: self.item_tower(t) for name, t in ids.items()}
        ids["history"] = batch.user.items
        flat = self.item_tower(torch.cat([t.reshape(-1) for t in ids.values()]))  # [N, D]
        vectors, lo = {}, 0
        for name, t in ids.items():
            vectors[name] = flat[lo : lo + t.numel()].view(*t.shape, flat.shape[-1])
            lo += t.numel()
        return vectors

    def loss(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        v = self.variant
        vectors = self._item_vectors(batch)
        neg, x_vec = vectors["neg"], vectors["x"]  # [M, D], [P, D]
        parts: dict[str, torch.Tensor] = {}
        user = batch.user if "history" not in vectors else batch.user.with_item_vectors(vectors["history"])

        # L_b (eq. 2): RTG ∪ ITG, or ITG only (TB-ITG); ITG up-weighted for TB-boost. Targets are picked with an
        # index built with the batch, never a boolean mask (a mask index reads its count back from the device).
        itg = batch.itg_index()  # [P_itg]
        keep = itg if v.basic_targets == "itg" else None  # None: every target
        pick = (lambda t: t) if keep is None else (lambda t: t.index_select(0, keep))  # noqa: E731
        weights = None
        if v.itg_weight != 1.0:
            weights = pick(torch.where(batch.x_is_itg, v.itg_weight, 1.0)).to(neg.dtype)
        basic = self._user_vectors("basic", user)  # [B, K, D]
        x_logq = batch.x_logq
        parts["basic"] = sampled_softmax(basic, pick(batch.x_rows), pick(x_vec), neg, batch.x_neg_mask, weights=weights,
                                         pos_logq=None if x_logq is None else pick(x_logq), neg_logq=batch.neg_logq,
                                         interests=self.interests)

        align = None
        if v.alignment:  # L_align (eq. 6): exposed items against sampled negatives
            align = self._user_vectors("alignment", user)
            parts["align"] = sampled_softmax(align, batch.etg_rows, vectors["etg_items"], neg, batch.etg_neg_mask,
                                             pos_logq=batch.etg_logq, neg_logq=batch.neg_logq, interests=self.interests)

        if v.incremental:  # L_inc (eq. 4): ITG against the row's RTG and sampled negatives
            inc = self._user_vectors("incremental", user)
            rows, itg_vec = batch.x_rows.index_select(0, itg), x_vec.index_select(0, itg)  # [P_itg], [P_itg, D]
            alpha = None
            if v.alpha != "one":
                alpha = self._alpha(batch, align, rows, itg, itg_vec, vectors)
            parts["incremental"] = sampled_softmax(inc, rows, itg_vec, neg, batch.x_neg_mask,
                                                   extra_neg=vectors["rtg"], extra_mask=batch.rtg_mask, weights=alpha,
                                                   pos_logq=None if x_logq is None else x_logq.index_select(0, itg),
                                                   neg_logq=batch.neg_logq, interests=self.interests)
        parts["total"] = sum(parts.values())
        return parts

    @torch.no_grad()
    def _alpha(self, batch: TrainBatch, align: torch.Tensor, rows: torch.Tensor, itg: torch.Tensor,
               itg_vec: torch.Tensor, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        """[P_itg] α of eq. 4 for the ITG positives: eq. 7 (or s_align(u, i) for IncRec-ori), transformed, then
        divided by the mean |α| over the items that found an exposed item to align with; 1 where none was found
        (PROTOCOL 4). Off the CPU the mean is a masked sum over a count, both on the device: no host read."""
        v = self.variant
        if v.alpha == "item":  # IncRec-ori: the ITG item itself
            raw, found = score(align[rows].detach(), itg_vec.detach()), None
        else:  # eq. 7: the nearest exposed item (the nearest other one with alpha_exclude_self)
            itg_items = batch.x_items.index_select(0, itg)  # [P_itg]
            exclude = batch.etg[rows] == itg_items[:, None] if v.alpha_exclude_self else None  # [P_itg, E]
            raw, found = nearest_exposed_alpha(align.detach(), rows, itg_vec.detach(), vectors["etg"].detach(),
                                               batch.etg_mask, exclude)
        alpha = transform_alpha(raw, v.alpha_transform)  # [P_itg]
        if found is None:
            found = torch.ones_like(alpha, dtype=torch.bool)
        if v.alpha_normalise:  # mean |α| = 1 over the aligned items; keeps a raw α's sign; none aligned: unchanged
            if alpha.device.type == "cpu" and EXACT_CPU_ALPHA_MEAN:  # the mean of the selected values, as before:
                if found.any():  # bit-identical CPU records (a read from host memory costs nothing here)
                    alpha = alpha / alpha[found].abs().mean().clamp_min(1e-12)
            else:  # a masked sum over a count, both on the device: no read back (the same value up to summation order)
                count = found.sum()
                mean = torch.where(found, alpha.abs(), 0.0).sum() / count.clamp_min(1)
                alpha = alpha / torch.where(count > 0, mean.clamp_min(1e-12), 1.0)
        return torch.where(found, alpha, torch.ones_like(alpha))  # nothing to align with: 1 (PROTOCOL 4)
