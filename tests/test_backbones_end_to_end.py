"""Every backbone through the whole pipeline on synthetic `tiny`: it beats popularity, and every variant runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import run
from tests.conftest import compose_config

BACKBONES = ["youtube_dnn", "dssm", "sasrec", "comirec_dr", "comirec_sa", "kuaiformer"]
TINY = ("dataset.preset=tiny", "train.progress=false", "train.batch_size=128")


@pytest.mark.parametrize("model", BACKBONES)
def test_backbone_beats_popularity(model: str, tmp_path: Path, synthetic_cache: Path) -> None:
    cfg = compose_config(*TINY, f"dataset.cache_dir={synthetic_cache}", f"model={model}", "increc=off", "train.epochs=8")
    rec = run(cfg, tmp_path).record
    m = rec["metrics"]
    for k in rec["ks"]:
        assert m[f"Base@{k}"] > m[f"Pop_Base@{k}"], (model, k, m[f"Base@{k}"], m[f"Pop_Base@{k}"])


@pytest.mark.parametrize("model", BACKBONES)
def test_every_variant_runs_with_every_backbone(model: str, tmp_path: Path, synthetic_cache: Path) -> None:
    """One epoch of IncRec (all three towers, eq. 7) per backbone, multi-interest ones included."""
    cfg = compose_config(*TINY, f"dataset.cache_dir={synthetic_cache}", f"model={model}", "increc=on", "train.epochs=1")
    rec = run(cfg, tmp_path).record
    for k in rec["ks"]:
        assert 0.0 <= rec["metrics"][f"Inc@{k}"] <= 1.0
    losses = rec["training"]["variant"]["loss"][0]
    assert set(losses) == {"basic", "align", "incremental", "total"}
