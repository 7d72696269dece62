"""Every backbone through the whole pipeline on synthetic `tiny`: it beats popularity (every variant runs with every
backbone in tests/e2e/test_end_to_end.py's command-line-against-API check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import CONF_DIR
from bench.pipeline.run import run
from tests.conftest import compose_config

BACKBONES = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))  # every configured backbone
TINY = ("dataset.preset=tiny", "train.progress=false", "train.batch_size=128")
# model=recbole is every RecBole model: here SINE, cheap and clear of the floor on both CPU kinds' numerics (measured
# on a 2-core AMD EPYC, 1 thread: SINE 15 s, Base@20 0.214 against popularity's 0.134; STAMP 5 s but 0.132, below it,
# where another machine had it above; GRU4Rec, the default, 19 s); tests/unit/models/test_recbole_towers.py covers every served model
CHEAPEST = {"recbole": ("model.recbole_model=SINE",)}
# Backbones whose margin over popularity on tiny is within the noise, measured on both CPU kinds, are left out: the
# check could only allow them two standard errors below the floor, which says little for its 30 s (a finding, not a
# pass; docs/unified_collapse_synthetic.md). Their training path runs in tests/e2e/test_end_to_end.py.
NEAR_FLOOR = {"unified": "Base@20 0.146 on a 2-core AMD EPYC, 0.125 on a 2-core Intel Xeon (best epoch 15 of 20), "
                         "popularity 0.134, one standard error 0.022 over tiny's 234 test requests",
              # measured 2026-12-07 on a 2-core AMD EPYC, this test's config at two seeds: seed 0 Base@20 0.187 (best
              # epoch 17 of 20), seed 1 0.132 (best epoch 1, stopped at 9): early stopping on tiny's 199 validation
              # requests picks a lucky first epoch at seed 1, so the check passed at seed 0 by that noise
              # (docs/sasrec_collapse_synthetic.md); KuaiFormer, 0.178 and 0.170 at the same seeds, stays checked
              "sasrec": "Base@20 0.187 at seed 0 but 0.132 at seed 1 (early stopping after a lucky first epoch), "
                        "popularity 0.134"}
CHECKED = [b for b in BACKBONES if b not in NEAR_FLOOR]


@pytest.mark.slow
@pytest.mark.parametrize("model", CHECKED)
def test_backbone_beats_popularity(model: str, tmp_path: Path, synthetic_cache: Path, shared_stage_cache: Path) -> None:
    """Protocol v2's schedule (early stopping on the validation day) gives every backbone a model above the floor
    at the larger K. At K = 10 tiny's 234 test requests leave a standard error of about 0.017 on a hit rate
    near 0.07, the size of the gap to popularity: DSSM's selected epoch measured 0.053 against 0.073 there.
    Patience 8: the 199 validation requests move Base@K₀ by about its standard error (0.02) from epoch to epoch,
    and patience 4 stopped SASRec on that noise after its first epoch (Base@20 0.111 against 0.134)."""
    cfg = compose_config(*TINY, f"dataset.cache_dir={synthetic_cache}", f"cache.dir={shared_stage_cache}", f"model={model}",
                         *CHEAPEST.get(model, ()), "increc=off", "train.max_epochs=20", "train.patience=8")
    rec = run(cfg, tmp_path).record
    m, n, k = rec["metrics"], rec["eval_requests"], max(rec["ks"])
    assert m[f"Base@{k}"] > m[f"Pop_Base@{k}"], (model, k, m[f"Base@{k}"], m[f"Pop_Base@{k}"])
    for k in rec["ks"]:  # at every K (the smaller one above all), not below popularity by more than two standard errors
        pop = m[f"Pop_Base@{k}"]
        assert m[f"Base@{k}"] > pop - 2 * (pop * (1 - pop) / n) ** 0.5, (model, k, m[f"Base@{k}"], pop)
    assert rec["training"]["base"]["best_epoch"] >= 1
