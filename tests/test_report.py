"""bench.report on hand-made run records: means, stds, p-values, bold placement, errors, files written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.report.__main__ import main as report_main, regenerate_command
from bench.report.collect import ReportError, collect
from bench.report.stats import mean_std, paired_p
from bench.report.tables import table1, table2, table3

KS = [10, 20]
R = 6  # test requests per record
ROWS = np.array([3, 5, 8, 13, 21, 34])


def write_record(root: Path, table: str, model: str, variant: str, seed: int, metrics: dict[str, float],
                 per_request: dict[str, np.ndarray], overrides: list[str] | None = None) -> Path:
    """A run.json + per_request.npz pair as bench.run writes them, with the given values."""
    out = root / f"{model}_{variant}_seed{seed}"
    out.mkdir(parents=True)
    arrays = {"rows": ROWS}
    for name, hits in per_request.items():
        arrays[f"{name}/hits"] = np.asarray(hits, dtype=np.int64)
        arrays[f"{name}/size"] = np.full(R, 4, dtype=np.int64)
    np.savez(out / "per_request.npz", **arrays)
    record = {
        "config": {"experiment_name": table, "model": {"name": model}, "increc": {"name": variant},
                   "dataset": {"name": "handmade"}},
        "seed": seed, "overrides": overrides or [f"experiment={table}", f"model={model}", f"increc={variant}", f"seed={seed}"],
        "data_fingerprint": "f" * 64, "code_version": {"git_commit": "abc1234def", "dirty": False},
        "stage_seconds": {"train_base": 1.5}, "pool_size": 600, "ks": KS, "existing_budget": 16, "eval_requests": R,
        "metrics": metrics, "curve": {"Base": {"10": 0.1, "20": 0.2}, "Sup": {"10": 0.05, "20": 0.1}},
        "hits_by_tab": {"ITG": [1, 5, 0, 2], **{f"{n}@20": [0, 2, 0, 1] for n in ("Base", "Sup", "Inc")}},
        "per_request": "per_request.npz",
    }
    (out / "run.json").write_text(json.dumps(record))
    return out / "run.json"


def test_mean_std_and_paired_p_by_hand() -> None:
    assert mean_std([0.1, 0.3]) == pytest.approx((0.2, math.sqrt(0.02)))  # sample std, ddof = 1
    assert mean_std([0.25]) == (0.25, 0.0)
    # five positive differences of distinct size: exact two-sided Wilcoxon p = 2 / 2^5
    assert paired_p(np.array([1.0, 2, 3, 4, 5]), np.zeros(5)) == pytest.approx(0.0625)
    assert paired_p(np.ones(4), np.ones(4)) == 1.0  # no difference at all: no evidence


def make_table1(root: Path) -> None:
    # dssm: Inc > Sup at both K; sasrec: Sup > Inc at K = 10. Two seeds each.
    inc_hits = np.array([1, 2, 3, 4, 4, 4])  # per-request Inc@K hits (size 4 each)
    sup_hits = np.zeros(R, dtype=int)
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for model, sup10 in (("dssm", 0.04), ("sasrec", 0.30)):
            base = {"Base@10": 0.10 + shift, "Sup@10": sup10 + shift, "Base@20": 0.2 + shift, "Sup@20": 0.05 + shift}
            per = {f"Sup@{k}": sup_hits for k in KS} | {f"Base@{k}": sup_hits for k in KS}
            write_record(root, "table1", model, "off", seed, base, per)
            write_record(root, "table1", model, "na", seed, base | {"Inc@10": 0.20 + shift, "Inc@20": 0.25 + shift},
                         per | {f"Inc@{k}": inc_hits for k in KS})


def test_table1_cells_bold_and_p(tmp_path: Path) -> None:
    make_table1(tmp_path)
    (runs,) = collect([tmp_path])
    assert (runs.dataset, runs.table, runs.seeds()) == ("handmade", "table1", [0, 1])
    body, verdicts = table1(runs)
    lines = body.splitlines()
    assert lines[0] == "| backbone | Base@10 | Sup@10 | Inc@10 | p@10 | Base@20 | Sup@20 | Inc@20 | p@20 |"
    dssm = lines[2].split(" | ")
    sasrec = lines[3].split(" | ")
    std = 100 * math.sqrt(0.0002)  # two seeds 0.02 apart
    assert dssm[1] == f"11.00 ± {std:.2f}"  # Base@10: (0.10 + 0.12) / 2
    assert dssm[2] == f"5.00 ± {std:.2f}" and dssm[3] == f"**21.00 ± {std:.2f}**"  # Inc beats Sup: Inc bold
    assert sasrec[2] == f"**31.00 ± {std:.2f}**" and sasrec[3] == f"21.00 ± {std:.2f}"  # Sup beats Inc: Sup bold
    # per-request Inc - Sup = (1,2,3,4,4,4)/4 averaged over seeds: ties among the 4s, so compare with scipy
    from scipy.stats import wilcoxon

    expected = wilcoxon(np.array([1, 2, 3, 4, 4, 4]) / 4).pvalue
    assert dssm[4] == f"{expected:.4f}"
    assert verdicts[0] == "Inc@10 > Sup@10 (means over seeds) held for 1 of 2 backbones; not for sasrec."
    assert verdicts[1] == "Inc@20 > Sup@20 (means over seeds) held for 2 of 2 backbones."


def test_table2_and_table3_layout(tmp_path: Path) -> None:
    per = {f"{n}@{k}": np.array([0, 1, 0, 1, 0, 1]) for n in ("Base", "Sup", "Inc", "Exposure") for k in KS}
    for variant, inc in (("off", None), ("tb_itg", 0.3), ("tb_boost", 0.4), ("na", 0.2)):
        m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1}
        if inc is not None:
            m |= {"Inc@10": inc, "Inc@20": inc + 0.1}
        extra = {"Inc@10": np.array([1, 2, 3, 4, 4, 4])} if variant == "tb_itg" else {}
        write_record(tmp_path / "t2", "table2", "dssm", variant, 0, m, per | extra)
    for variant, inc, exp in (("na", 0.2, 0.1), ("ori", 0.15, 0.3), ("on", 0.18, 0.35)):
        m = {"Base@10": 0.1, "Sup@10": 0.05, "Base@20": 0.2, "Sup@20": 0.1, "Inc@10": inc, "Inc@20": inc,
             "Exposure@10": exp, "Exposure@20": exp}
        write_record(tmp_path / "t3", "table3", "dssm", variant, 0, m, per)
    t2, t3 = collect([tmp_path])
    rows = table2(t2, "dssm").splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| TB-Online", "| TB-ITG", "| TB-boost", "| IncRec-NA"]
    assert rows[0].split(" | ")[2] == "5.00 ± 0.00"  # TB-Online's Inc@K is its Sup@K
    assert rows[2].split(" | ")[2] == "**40.00 ± 0.00**"  # TB-boost has the best Inc@10
    from scipy.stats import wilcoxon

    # TB-ITG's Inc@10 against the Sup@10 of the same standalone base, request by request
    expected = wilcoxon((np.array([1, 2, 3, 4, 4, 4]) - np.array([0, 1, 0, 1, 0, 1])) / 4).pvalue
    assert rows[0].split(" | ")[3] == "—" and rows[1].split(" | ")[3] == f"{expected:.4f}"
    assert rows[2].split(" | ")[3] == "1.0000"  # TB-boost: the same per-request values as Sup: no difference
    main, p_table = table3(t3, "dssm")
    head = main.splitlines()[0]
    assert head == "| variant | Base@10 | Inc@10 | Base@20 | Inc@20 | Exposure Hit@10 | Exposure Hit@20 |"
    na, ori, on = (r.split(" | ") for r in main.splitlines()[2:])
    assert na[2] == "**20.00 ± 0.00**" and on[5] == "**35.00 ± 0.00**" and ori[5] == "30.00 ± 0.00"
    assert [r.split(" | ")[0] for r in p_table.splitlines()[2:]] == ["| IncRec-ori", "| IncRec"]


def test_report_cli_writes_tables_and_plots(tmp_path: Path) -> None:
    make_table1(tmp_path / "runs")
    assert report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    folder = tmp_path / "results" / "handmade"
    text = (folder / "table1.md").read_text()
    assert text.startswith("# Table 1: every backbone, base vs IncRec-NA (handmade)")
    assert "K = 10 | 20 (1.67% | 3.33% of the pool); the paper's K = 1k | 2k, so ours is 1/100 | 1/100 the paper's." in text
    assert "- Seeds: 0, 1;" in text and "| YouTube-DNN | 1.33 |" in text
    for png in ("table1_hit_vs_k.png", "table1_itg_hits_by_tab.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second report gives the same bytes: nothing but the data decides the output
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    report_main([str(tmp_path / "runs"), "--out", str(tmp_path / "results")])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first


def test_regenerate_command_keeps_shared_overrides_only(tmp_path: Path) -> None:
    for table, models, variants in (("table1", ("dssm", "sasrec"), ("off", "na")), ("table2", ("sasrec",), ("off", "tb_itg"))):
        for model in models:
            for seed in (0, 1, 2):
                for variant in variants:
                    write_record(tmp_path / table, table, model, variant, seed, {}, {},
                                 overrides=[f"experiment={table}", "dataset=kuairand_sample", f"increc={variant}",
                                            f"seed={seed}", f"model={model}", "train.epochs=2", "cache.dir=/tmp/x",
                                            "train.progress=false"])
    t1, t2 = collect([tmp_path])
    # what varies by job (model in Table 1, increc, seed) and what cannot change a result (cache, progress) go;
    # the folder is not the experiment's default, so the sweep is pointed at it
    assert regenerate_command(t1) == (f"python -m bench -m experiment=table1 dataset=kuairand_sample train.epochs=2 seeds=3 "
                                      f"hydra.sweep.dir={tmp_path / 'table1'} && python -m bench.report {tmp_path / 'table1'}")
    assert regenerate_command(t2).startswith("python -m bench -m experiment=table2 dataset=kuairand_sample model=sasrec "
                                             "train.epochs=2 seeds=3 hydra.sweep.dir=")  # Table 2's backbone is kept


def test_incomplete_sweep_is_refused(tmp_path: Path) -> None:
    make_table1(tmp_path)
    for name in ("run.json", "per_request.npz"):
        (tmp_path / "dssm_na_seed1" / name).unlink()
    with pytest.raises(ReportError, match=r"different seeds \(dssm/na: seeds \[0\]; dssm/off: seeds \[0, 1\]"):
        collect([tmp_path])


def test_single_runs_beside_a_table_are_ignored(tmp_path: Path) -> None:
    make_table1(tmp_path / "t")
    single = tmp_path / "single"
    single.mkdir()
    (single / "run.json").write_text(json.dumps({"config": {"experiment_name": None}}))  # no per_request.npz
    (runs,) = collect([tmp_path])
    assert runs.table == "table1"


def test_collect_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a directory"):
        collect([tmp_path / "nope"])
    with pytest.raises(ReportError, match="no run record"):
        collect([tmp_path])
    write_record(tmp_path / "a", "table1", "dssm", "off", 0, {}, {})
    write_record(tmp_path / "b", "table1", "dssm", "off", 0, {}, {})
    with pytest.raises(ReportError, match="two records of"):
        collect([tmp_path])
    (tmp_path / "b" / "dssm_off_seed0" / "per_request.npz").unlink()
    with pytest.raises(ReportError, match="per-request values missing"):
        collect([tmp_path / "b"])
