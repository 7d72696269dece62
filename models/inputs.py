"""What a user tower reads: the profile P_u and the history B_u of a batch of requests."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class UserInput:
    """A batch of (P_u, B_u). Histories are left-aligned, oldest first: row r holds its items in
    columns 0..len_r-1 and padding after them (RecBole's layout)."""

    profile: torch.Tensor  # [B, F] long, categorical profile codes (0 = unknown)
    items: torch.Tensor  # [B, L] long, history item codes (padding positions hold 0); L is the batch's longest
    # history (bench.engine.batches.user_input), so a tower reads the width from the shape, not from the device
    tabs: torch.Tensor  # [B, L] long, scenario of each history item
    mask: torch.Tensor  # [B, L] bool, True where the history has an item
    item_vectors: torch.Tensor | None = None  # [B, L, D] the shared item tower's vectors of `items`, when computed once
    # for every tower of a step (IncRec._item_vectors); None: each tower embeds `items` itself

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "UserInput":
        """The batch on `device`; non_blocking overlaps the copy with compute only from pinned memory."""
        moved = (t.to(device, non_blocking=non_blocking) for t in (self.profile, self.items, self.tabs, self.mask))
        vectors = None if self.item_vectors is None else self.item_vectors.to(device, non_blocking=non_blocking)
        return UserInput(*moved, item_vectors=vectors)

    def pin_memory(self) -> "UserInput":
        """The batch in page-locked host memory (asynchronous copies to a CUDA device)."""
        vectors = None if self.item_vectors is None else self.item_vectors.pin_memory()
        return UserInput(*(t.pin_memory() for t in (self.profile, self.items, self.tabs, self.mask)), item_vectors=vectors)

    def with_item_vectors(self, vectors: torch.Tensor) -> "UserInput":
        """The same batch carrying precomputed history item vectors [B, L, D]."""
        return UserInput(self.profile, self.items, self.tabs, self.mask, vectors)

    @property
    def lengths(self) -> torch.Tensor:
        """[B] history length per row."""
        return self.mask.sum(dim=1)

    @property
    def batch_size(self) -> int:
        return self.profile.shape[0]
