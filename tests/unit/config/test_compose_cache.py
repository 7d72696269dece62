"""bench.config.compose keeps what it composed: a copy per call, recomposed when conf/ changes."""

from __future__ import annotations

import bench.config as config


def test_a_repeated_composition_is_an_independent_copy_until_conf_changes(monkeypatch) -> None:
    first = config.compose("dataset.preset=tiny", "model=dssm")
    again = config.compose("dataset.preset=tiny", "model=dssm")
    assert again == first and again is not first
    again.train.lr = 123.0  # a caller's edit stays its own
    assert config.compose("dataset.preset=tiny", "model=dssm").train.lr == first.train.lr

    calls = []
    real = config._compose
    monkeypatch.setattr(config, "_compose", lambda *a: calls.append(a) or real(*a))
    config.compose("dataset.preset=tiny", "model=dssm")
    assert calls == []  # kept
    state = config._conf_state()
    monkeypatch.setattr(config, "_conf_state", lambda: state + (("edited.yaml", 1, 1),))  # a file of conf/ changed
    config.compose("dataset.preset=tiny", "model=dssm")
    assert len(calls) == 1  # composed again
