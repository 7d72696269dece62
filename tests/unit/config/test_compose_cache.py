"""bench.config.compose keeps what it composed: a copy per call, recomposed when conf/ changes; values applied to
the cached composition of the group choices give what Hydra's whole composition gives, errors included."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

import bench.config as config


def test_a_repeated_composition_is_an_independent_copy_until_conf_changes(monkeypatch) -> None:
    first = config.compose("dataset.preset=tiny", "model=dssm")
    again = config.compose("dataset.preset=tiny", "model=dssm")
    assert again == first and again is not first
    again.train.lr = 123.0  # a caller's edit stays its own
    assert config.compose("dataset.preset=tiny", "model=dssm").train.lr == first.train.lr

    calls = []
    real = config._hydra_compose
    monkeypatch.setattr(config, "_hydra_compose", lambda *a: calls.append(a) or real(*a))
    config.compose("dataset.preset=tiny", "model=dssm")
    assert calls == []  # kept
    state = config._conf_state()
    monkeypatch.setattr(config, "_conf_state", lambda: state + (("edited.yaml", 1, 1),))  # a file of conf/ changed
    config.compose("dataset.preset=tiny", "model=dssm")
    assert calls == [(("model=dssm",), False)]  # the choices composed again by Hydra, the value applied to them


SAME_AS_HYDRA = [
    ("dataset.preset=tiny", "train.progress=false", "model=dssm", "increc=off", "train.max_epochs=20"),
    ("experiment=table1", "dataset=kuairand_sample", "model=sasrec", "seed=3"),
    ("experiment=tune", "model=youtube_dnn", "dataset.preset=tiny", "train.lr=0.003", "model.dim=128"),
    ("dataset=kuairand", "dataset.root=/data/KuaiRand-Pure", "eval.ks=[10,20]"),
    ("model=recbole", "model.recbole_model=SINE", "train.batch_size=64", "cache.enabled=false"),
    ("seed=1", "tuned=true", "existing=multi", "logger=csv", "train.max_batches=null"),
    ("train.epochs=1", "eval.seed_control=false", "dataset.cache_dir=/tmp/x"),
    ("dataset.preset=tiny", "dataset={preset:pure}"),  # a group key given a mapping is a value, in its place
    ("model.name=foo", "model={name:bar}"),
]
REFUSED = [("model=comirec_dr", "model.user_tower.dropout=0.3"), ("train.epochs=abc",), ("train.epoch=3",),
           ("train.lr=abc", "model={dim:abc}"),
           ("model=sasrek",), ("train.epochs=[1",), ("train.epochs=1,2",)]


@pytest.mark.parametrize("overrides", SAME_AS_HYDRA)
def test_values_applied_to_the_cached_choices_give_hydra_s_composition(overrides: tuple[str, ...], monkeypatch) -> None:
    whole = config._hydra_compose(overrides, False)
    calls = []
    real = config._hydra_compose
    monkeypatch.setattr(config, "_hydra_compose", lambda *a: calls.append(a) or real(*a))
    split = config._groups_and_values(overrides)
    if split is not None:
        config.compose(*split[0])  # the choices, composed (or kept) first
    calls.clear()
    fast = config._compose(overrides, False)
    assert calls == ([] if split is not None else [(overrides, False)])  # values onto the kept choices, or Hydra whole
    assert OmegaConf.to_yaml(fast) == OmegaConf.to_yaml(whole) and OmegaConf.is_struct(fast)


@pytest.mark.parametrize("overrides", REFUSED)
def test_a_refused_override_gives_hydra_s_own_error(overrides: tuple[str, ...]) -> None:
    with pytest.raises(config.ConfigError) as whole:
        config._hydra_compose(overrides, False)
    with pytest.raises(config.ConfigError) as fast:
        config.compose(*overrides)
    assert str(fast.value) == str(whole.value)


def test_only_plain_choices_and_values_take_the_short_path() -> None:
    groups, values = config._groups_and_values(("model=dssm", "train.lr=0.1", "existing=multi", "seed=2"))
    assert groups == ("model=dssm", "existing=multi") and [v.input_line for v in values] == ["train.lr=0.1", "seed=2"]
    for other in ("+train.extra=1", "~train.lr", "++train.lr=2", "train.lr=1,2", "hydra.run.dir=x", "model@m=dssm",
                  "hydra/launcher=joblib", "model={dim:32}"):
        assert config._groups_and_values(("model=dssm", other)) is None, other
