"""Protocol v3 end to end on the synthetic `tiny` preset: a 2-seed Table 1 with the permuted-label twin and the
A/A control runs, the twin records the share of flags it changed, the report's JSON holds every v3 field, and
the same config and seed give identical records and an identical report (PROTOCOL 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.evaluation.metrics import COMPARISONS, TWIN_VARIANT
from bench.report.__main__ import write_report
from bench.pipeline.run import run
from tests.conftest import compose_config

V3 = ("experiment=table1", "dataset.preset=tiny", "model=youtube_dnn", "train.progress=false", "train.batch_size=128",
      "train.max_epochs=2", "train.patience=1", "train.max_batches=2")  # short: the arms and records, not quality
ARMS = ("off", "na", TWIN_VARIANT)
SEEDS = (0, 1)


def _job(root: Path, synthetic_cache: Path, arm: str, seed: int) -> None:
    cfg = compose_config(*V3, f"increc={arm}", f"seed={seed}", "seeds=2", f"dataset.cache_dir={synthetic_cache}",
                         "cache.enabled=true", f"cache.dir={root / 'cache'}")
    run(cfg, root / "runs" / f"youtube_dnn_{arm}_seed{seed}", overrides=[f"increc={arm}", f"seed={seed}"])


def _sweep(root: Path, synthetic_cache: Path) -> Path:
    """The jobs a `experiment=table1 seeds=2` sweep runs for one backbone, in its order (bases first), sharing
    one stage cache as a sweep does."""
    for arm in ARMS:
        for seed in SEEDS:
            _job(root, synthetic_cache, arm, seed)
    return root / "runs"


@pytest.fixture(scope="module")
def v3_table(tmp_path_factory: pytest.TempPathFactory, synthetic_cache: Path) -> Path:
    return _sweep(tmp_path_factory.mktemp("v3"), synthetic_cache)


def _record(runs: Path, arm: str, seed: int) -> dict:
    return json.loads((runs / f"youtube_dnn_{arm}_seed{seed}" / "run.json").read_text())


def test_the_twin_and_the_aa_control_run_and_are_recorded(v3_table: Path) -> None:
    na, twin = _record(v3_table, "na", 0), _record(v3_table, TWIN_VARIANT, 0)
    k = na["ks"][0]
    for name in ("IncR", "SupR", "SeedR", "Seed2R", "PopR_Base"):
        assert na["metrics"][f"{name}@{k}"] is not None, name
    assert set(na["training"]) == {"base", "seed_base", "seed2_base", "variant"}
    got = na["comparisons"]  # the record's own comparisons: every one whose arms it holds (the twin's is elsewhere)
    assert list(got) == [c.name for c in COMPARISONS if c.b_from == "self"]
    for c in COMPARISONS:
        if c.b_from == "self":
            assert got[c.name]["role"] == c.role
            assert got[c.name]["difference"][str(k)] == na["metrics"][f"{c.a}@{k}"] - na["metrics"][f"{c.b}@{k}"]
    assert twin["cache"]["seed_base"] == twin["cache"]["seed2_base"] == "hit"  # the twin finds both controls cached
    changed = twin["training"]["variant"]["labels_changed"]
    assert changed["within"] == "day" and 0.0 < changed["share"] < 1.0
    assert abs(changed["share"] - changed["expected"]) < 0.05
    assert "labels_changed" not in na["training"]["variant"]  # IncRec-NA keeps its labels
    users = np.load(v3_table / "youtube_dnn_na_seed0" / "per_request.npz")["users"]
    assert len(users) == na["eval_requests"] and len(np.unique(users)) <= len(users)


def test_the_report_json_holds_every_v3_field(v3_table: Path, tmp_path: Path) -> None:
    written = write_report([v3_table], tmp_path)
    summary = json.loads(next(p for p in written if p.suffix == ".json").read_text())
    from bench.report.summary import SUMMARY_VERSION

    assert summary["summary_version"] == SUMMARY_VERSION == 4  # 4: Tables 2 and 3 under v3 too
    for k, block in summary["table1"].items():
        (row,) = block["rows"]
        assert row["seeds"] == 2 and "ShufR" in row["cells"] and "PopR_Base" in block["popularity"]
        for c in COMPARISONS:
            got = row["comparisons"][c.name]
            assert got["stats"] is not None, (k, c.name)  # every arm is in these records
            for field in ("estimate", "se", "df", "low", "high", "low90", "high90", "p", "sigma_seed", "sigma_request",
                          "sigma_interaction", "mdd", "n_seeds", "n_clusters"):
                assert field in got["stats"], field
            assert got["stats"]["n_seeds"] == 2 and got["clustered_by_user"] is True
            assert got["verdict"] in ("holds", "reversed", "equivalent", "cannot tell")
            assert block["roles"][c.name] == c.role
            assert block["pooled"][c.name]["pooled"] is None  # one backbone: nothing to pool, and it says so
    text = next(p for p in written if p.name == "table1.md").read_text()
    assert all(f"{c.name}@{k}" in text for c in COMPARISONS for k in summary["table1"])
    assert "not measured" not in text  # no arm is missing


def test_same_config_and_seed_give_the_same_records_and_report(v3_table: Path, tmp_path: Path,
                                                               synthetic_cache: Path) -> None:
    _job(tmp_path, synthetic_cache, TWIN_VARIANT, 1)  # from an empty cache: its base and both controls retrained
    first, again = _record(v3_table, TWIN_VARIANT, 1), _record(tmp_path / "runs", TWIN_VARIANT, 1)
    assert again["cache"]["base"] == "miss" and first["metrics"] == again["metrics"]
    assert first["training"]["variant"]["labels_changed"] == again["training"]["variant"]["labels_changed"]
    one, two = (next(p for p in write_report([v3_table], tmp_path / d) if p.suffix == ".json").read_text()
                for d in ("r1", "r2"))
    assert json.loads(one) | {"command": None} == json.loads(two) | {"command": None}  # the command names its --out


def test_calibrate_writes_the_tables_calibration_page(v3_table: Path, tmp_path: Path) -> None:
    """`python -m bench.report --calibrate DIR` (small): the simulation and the planted effects on the table's own
    arrays, beside the table, with the command that made them."""
    from bench.report.__main__ import main

    assert main(["--calibrate", str(v3_table), "--out", str(tmp_path), "--draws", "30", "--plants", "8"]) == 0
    (md,) = tmp_path.rglob("table1_calibration.md")
    data = json.loads(md.with_suffix(".json").read_text())
    text = md.read_text()
    assert "--calibrate" in text and "--draws 30 --plants 8" in text
    for k, block in data["ks"].items():
        sim = block["simulation"]
        assert sim["settings"]["n_draws"] == 30 and sorted({r["n_seeds"] for r in sim["rows"]}) == [5, 10, 20]
        assert {r["method"] for r in block["v2_simulation"]["rows"]} == {"v3", "v2_bootstrap"}
        (plant,) = block["planted"].values()
        assert plant["settings"]["n_plants"] == 8 and {r["mu_label"] for r in plant["rows"]} >= {"0", "MDD"}
        assert f"## K = {k}" in text and f"### End-to-end A/A, K = {k}" in text
        aa = block["aa"]  # the table's own A/A row: one backbone with two seeds
        (row,) = aa["rows"].values()
        assert aa["n_rows"] == 1 and aa["rejected"] == (["youtube_dnn"] if row["verdict"] in ("holds", "reversed") else [])


def test_calibrate_refuses_misuse(tmp_path: Path) -> None:
    from bench.report.__main__ import main

    with pytest.raises(SystemExit):
        main(["--calibrate"])  # no record folder
    with pytest.raises(SystemExit):
        main(["--calibrate", str(tmp_path), "--draws", "0"])
