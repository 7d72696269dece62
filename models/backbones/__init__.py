"""User towers f_b(P_u, B_u) (IncRec eq. 1), one module each, and the contract every one keeps.

A new backbone is one module here and one `conf/model/<name>.yaml` whose `user_tower._target_` names
its class (`_partial_: true`); the harness passes the shared item tower, the profile cardinalities
and the scenario count. tests/unit/models/test_tower_contract.py checks the contract on every YAML it finds.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from models.inputs import UserInput


@runtime_checkable
class UserTower(Protocol):
    """What the harness reads from a user tower.

    - `n_interests`: how many vectors it returns per request (1, or K for multi-interest towers, which
      serving merges by score);
    - `item_tower`: the shared item tower it embeds history items with (PROTOCOL section 3);
    - `forward(user) -> [B, n_interests, D]`, float32, for left-aligned histories with padding after
      them: finite for empty histories, unchanged by padding columns or by what padded positions hold.
    The constructor takes `item_tower`, `profile_cardinalities: list[int]`, `n_scenarios: int`, then the
    tower's own keyword arguments (its YAML's `user_tower` keys, type-checked from the annotations).
    """

    n_interests: int
    item_tower: torch.nn.Module

    def __call__(self, user: UserInput) -> torch.Tensor: ...
