"""The config schema (bench.config.schema): conf/config.yaml shows each typed section's every key with the
schema's default, a hand-built config is checked like a composed one, and errors name the key."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest
import yaml
from omegaconf import OmegaConf

from bench.config import CONF_DIR, compose
from bench.config.schema import TYPED_SECTIONS, Run, Train, train_settings
from bench.errors import ConfigError
from bench.pipeline.validate import validate


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


@pytest.mark.parametrize("section", sorted(TYPED_SECTIONS))
def test_the_yaml_shows_every_key_of_a_typed_section_with_the_schemas_default(section: str) -> None:
    shown = yaml.safe_load((CONF_DIR / "config.yaml").read_text())[section]
    schema = {f.name: _default(f) for f in fields(TYPED_SECTIONS[section]) if not f.name == "space"}
    assert shown == schema


def test_the_top_level_yaml_keys_are_the_schemas() -> None:
    shown = {k: v for k, v in yaml.safe_load((CONF_DIR / "config.yaml").read_text()).items()
             if k not in ("defaults", "hydra", *TYPED_SECTIONS)}
    harness_set = ("tuning_applied",)  # written by bench.config.tuned, never by a user
    groups = ("dataset", "model", "increc", "existing", "logger")  # each choice's YAML holds its own schema
    schema = {f.name: _default(f) for f in fields(Run) if f.name not in (*TYPED_SECTIONS, *harness_set, *groups)}
    assert shown == schema


def test_composition_refuses_an_unknown_key_naming_the_nearest() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'train.patiense'.*did you mean 'train.patience'\?"):
        compose("train.patiense=3")
    with pytest.raises(ConfigError, match=r"unknown key 'dataset.presett'.*did you mean 'dataset.preset'\?"):
        validate(compose("+dataset.presett=tiny"))  # Hydra lets `+` add a key: the check that follows refuses it
    with pytest.raises(ConfigError, match=r"train.batch_size='big': expected an integer"):
        compose("train.batch_size=big")


def test_a_hand_built_config_is_checked_like_a_composed_one() -> None:
    good = OmegaConf.create(OmegaConf.to_container(compose(), resolve=False))  # plain: no schema attached
    validate(good)
    bad = OmegaConf.create(OmegaConf.to_container(compose(), resolve=False))
    bad.train.patiense = 3
    with pytest.raises(ConfigError, match=r"unknown key 'train.patiense'.*did you mean 'train.patience'\?"):
        validate(bad)
    bad = OmegaConf.create(OmegaConf.to_container(compose(), resolve=False))
    bad.model.interest_scoring = "best"
    with pytest.raises(ConfigError, match=r"model.interest_scoring='best'"):
        validate(bad)


def test_train_settings_are_the_train_section_typed() -> None:
    settings = train_settings(compose("train.lr=0.5", "train.precision=fp32"))
    assert isinstance(settings, Train) and settings.lr == 0.5 and settings.levers.precision == "fp32"
    with pytest.raises(ConfigError, match=r"train.patience=0: at least 1"):
        train_settings(compose("train.patience=0"))
