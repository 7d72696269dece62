"""Config helpers shared by the entry point and the tests: resolvers and derived defaults."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """`${project_root:}` in YAML: the repository root, so default paths do not depend on the cwd."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


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


def auto_budget(pool_size: int) -> int:
    """|R_u| scaled to the pool as PROTOCOL section 2 sets it for KuaiRand-Pure (200 of 7.6k items),
    within [10, 1000]."""
    return int(min(max(round(pool_size * 200 / 7583), 10), 1000))
