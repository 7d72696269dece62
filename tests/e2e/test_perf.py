"""bench.perf at toy sizes: the figures are computed and consistent (no timing targets here)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from bench.config import PROJECT_ROOT
from bench.engine.machine import machine
from bench.perf.itemcf import itemcf_figures
from bench.perf.retrieval import TILES, retrieval_figures


def test_retrieval_figures_are_consistent() -> None:
    f = retrieval_figures(n_items=3000, n_queries=64, dim=16, n_interests=2, k=50, repeats=1)
    assert f["retrieval_gflops"] > 0 and f["matmul_gflops"] > 0
    assert f["retrieval_fraction_of_matmul_peak"] == pytest.approx(f["retrieval_gflops"] / f["matmul_gflops"])
    assert f["matmul_best_tile"] in {f"{r}x{c}" for r, c in TILES}


def test_itemcf_figures() -> None:
    rng = np.random.default_rng(0)
    user = np.sort(rng.integers(0, 50, 2000))
    f = itemcf_figures(user, rng.integers(0, 300, 2000), 300, neighbors=20)
    assert f["itemcf_fit_seconds"] > 0 and f["itemcf_first_call_seconds"] > 0 and f["itemcf_positives"] == 2000
    ratio = f["itemcf_time_ratio_vs_implicit"]
    assert ratio == "skipped (pip install implicit)" or ratio == pytest.approx(f["itemcf_fit_seconds"] / f["implicit_fit_seconds"])


def test_train_step_figures_are_consistent(tmp_path) -> None:
    from bench.perf.train_step import train_step_figures

    small = ["train.batch_size=32", "train.n_negatives=64", f"dataset.cache_dir={tmp_path}", f"cache.dir={tmp_path}/stages"]
    f = train_step_figures("tiny", n_batches=5, rounds=1, extra=small, peak_items=4096, device="cpu",
                           baseline_device="cpu")
    for backbone in ("sasrec", "kuaiformer"):  # one round: the speedup is that round's ratio
        assert f[f"train_step_speedup_{backbone}_increc"] == pytest.approx(
            f[f"train_step_{backbone}_default_steps_per_s"] / f[f"train_step_{backbone}_reference_steps_per_s"])
    assert f["train_step_sasrec_flops_per_step"] > 0 and f["train_step_matmul_peak_gflops"] > 0
    assert f["train_step_fraction_of_matmul_peak"] == pytest.approx(f["train_step_sasrec_default_gflops"]
                                                                   / f["train_step_matmul_peak_gflops"])
    assert f["train_step_precision"] in ("fp32", "bf16")
    assert f["train_step_device"] == f["train_step_baseline_device"] == "cpu"  # the figures name where they ran
    assert f["train_step_matmul_peak_dtype"] == "float32" and f["train_step_sasrec_baseline_steps_per_s"] > 0
    assert f["train_step_sasrec_speedup_over_baseline_device"] > 0


def test_machine_is_recorded() -> None:
    m = machine()
    assert m["cores"] >= 1 and m["torch_threads"] >= 1 and isinstance(m["cpu"], str)


def test_recbole_wrapper_scores_every_item_and_sequences_hold_no_held_out_item() -> None:
    """Our tower in RecBole's clothes, on RecBole's ml-100k pipeline (data only, no training)."""
    import tempfile

    import torch

    from bench.perf import sasrec_recbole as sr

    with tempfile.TemporaryDirectory() as tmp, sr._in_tempdir():
        data = sr.recbole_data(0, 1, tmp)
    scorer = sr.Scorer(data.n_items)
    seq, length, _ = sr._prefixes(data)
    scores = scorer.full_sort_predict({"item_id_list": seq[:3], "item_length": length[:3]})
    assert scores.shape == (3, data.n_items)  # RecBole's column 0 (padding) included
    seq_users, sequences = sr._user_sequences(data)
    valid = data.valid._dataset.inter_feat
    held_out = set(zip(valid["user_id"].tolist(), valid["item_id"].tolist()))
    users = data.train._dataset.inter_feat["user_id"]
    assert sorted(seq_users) == sorted(set(users.tolist()))
    assert sum(len(s) - 1 for s in sequences) == len(users)  # every RecBole training target, once
    for row in range(0, len(sequences), 97):
        assert not any((seq_users[row], i) in held_out for i in sequences[row].tolist())
    windows, lens = sr.sliding_windows(sequences, 50)
    assert int((lens - 1).sum()) == len(users) and windows.shape[1] == 51
    assert not torch.is_anomaly_enabled()


def test_sliding_windows_predict_every_target_once() -> None:
    import torch

    from bench.perf.sasrec_recbole import sliding_windows

    seqs = [torch.arange(1, 8), torch.tensor([5, 6]), torch.tensor([9])]  # 7 items, 2 items, 1 item
    windows, lens = sliding_windows(seqs, 3)
    assert windows.tolist() == [[4, 5, 6, 7], [1, 2, 3, 4], [5, 6, 0, 0]]
    assert lens.tolist() == [4, 4, 2]
    # the targets of each window are its items after the first: 5,6,7 | 2,3,4 | 6 -> each of 2..7 once
    targets = sorted(t for w, n in zip(windows.tolist(), lens.tolist()) for t in w[1:n])
    assert targets == [2, 3, 4, 5, 6, 6, 7]


def test_perf_command_adds_sections_to_one_file(tmp_path, monkeypatch, capsys) -> None:
    import json

    from bench.perf import __main__ as perf

    monkeypatch.setitem(perf.SIZES, "quick", (3000, 64, "tiny", 1, [0]))
    out = tmp_path / "figures.json"
    assert perf.main(["--quick", "--only", "retrieval", "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    assert first["figures"]["retrieval_fraction_of_matmul_peak"] > 0 and list(first["sections"]) == ["retrieval"]
    assert first["sections"]["retrieval"]["code_version"]["code_digest"]
    assert "retrieval_fraction_of_matmul_peak: " in capsys.readouterr().out
    monkeypatch.setattr(perf, "run_section", lambda name, which, *rest: {"itemcf_time_ratio_vs_implicit": 1.25})
    assert perf.main(["--quick", "--only", "itemcf", "--out", str(out)]) == 0
    both = json.loads(out.read_text())
    assert both["figures"]["itemcf_time_ratio_vs_implicit"] == 1.25
    assert both["figures"]["retrieval_seconds"] == first["figures"]["retrieval_seconds"]  # kept from the first call
    assert list(both["sections"]) == ["retrieval", "itemcf"]
    with pytest.raises(SystemExit):
        perf.main(["--quick", "--only", "scale_pure"])  # a --full section
    with pytest.raises(SystemExit):
        perf.main(["--quick", "--only", "sasrec", "--seeds", "a,b"])
    del both["machine"]["cpu_vendor"]  # a file written before machine() recorded the vendor still merges
    out.write_text(json.dumps(both))
    assert perf.main(["--quick", "--only", "itemcf", "--out", str(out)]) == 0
    both["machine"]["cores"] = 10_000
    out.write_text(json.dumps(both))
    with pytest.raises(SystemExit, match="another mode or machine"):
        perf.main(["--quick", "--only", "itemcf", "--out", str(out)])


def test_stages_in_log_reads_finished_and_running_stages() -> None:
    from bench.perf.scale import stages_in_log

    log = ("[2026-12-03 15:44:07,384][bench][INFO] - stage fingerprint ...\n"
           "[2026-12-03 15:44:12,755][bench][INFO] - stage fingerprint done in 5.4 s\n"
           "[2026-12-03 15:45:00,347][bench][WARNING] - ITG share of training targets 0.281 vs test 0.165\n"
           "[2026-12-03 15:45:00,354][bench][INFO] - stage train_base ...\n"
           "[2026-12-03 16:00:42,641][bench][INFO] - stage train_base done in 942.3 s\n"
           "[2026-12-03 16:07:47,080][bench][INFO] - stage train_variant ...\n")
    assert stages_in_log(log) == ({"fingerprint": 5.4, "train_base": 942.3}, "train_variant")
    assert stages_in_log(log.rsplit("\n", 2)[0]) == ({"fingerprint": 5.4, "train_base": 942.3}, None)
    assert stages_in_log("") == ({}, None)


def test_end_to_end_at_its_time_limit_keeps_a_lower_bound(synthetic_cache) -> None:
    from bench.perf.scale import end_to_end

    f = end_to_end("tiny", ["model=dssm", "train.max_epochs=40", "train.patience=40", f"dataset.cache_dir={synthetic_cache}"],
                   time_limit_s=6)
    assert f["tiny_end_to_end_s_at_least"] >= 6 and "tiny_end_to_end_s" not in f
    assert f["tiny_end_to_end"].startswith("stopped at the 6 s limit in stage ")
    # the stages it finished before the limit keep their seconds (on a loaded machine it may finish none in 6 s:
    # then the message still names the stage it was in)
    finished = {k: v for k, v in f.items() if k.startswith("tiny_stage_")}
    assert all(v >= 0 for v in finished.values())
    assert finished or f["tiny_end_to_end"].removeprefix("stopped at the 6 s limit in stage ").strip()


@pytest.mark.slow
def test_end_to_end_reports_time_memory_and_batches(synthetic_cache) -> None:
    from bench.perf.scale import end_to_end

    f = end_to_end("tiny", ["model=dssm", "train.epochs=1", "train.early_stopping=false", "eval.seed_control=false", "train.max_batches=2", f"dataset.cache_dir={synthetic_cache}"])
    assert f["tiny_end_to_end_s"] > 0 and 0.05 < f["tiny_peak_rss_gib"] < 64
    assert f["tiny_variant_batches_per_epoch"] > 2 and f["tiny_base_seconds_per_batch"] > 0
    assert f["tiny_stage_train_base_s"] > 0 and "train.max_batches=2" in f["tiny_overrides"]


def test_sasrec_summary_means_every_seed_in_the_file() -> None:
    from bench.perf.sasrec_recbole import summarise_seeds

    def seed(n: int, ours_test: float, reached: float | None) -> dict:
        return {f"sasrec_seed{n}_{k}": v for k, v in {
            "recbole_epoch_seconds": [100.0, 100.0], "recbole_valid_ndcg10": [0.02, 0.04], "recbole_test_ndcg10": 0.04,
            "ours_recbole_scheme_epoch_seconds": [50.0, 50.0], "ours_recbole_scheme_test_ndcg10": ours_test,
            "ours_seconds_to_recbole_valid": reached, "ours_converged_epochs": 30, "ours_converged_seconds": 90.0,
            "ours_converged_test_ndcg10": 0.05}.items()}

    s = summarise_seeds(seed(0, 0.036, 10.0) | seed(1, 0.044, 40.0) | {"sasrec_epochs": 2, "sasrec_seeds": "0"})
    assert s["sasrec_seeds"] == "0 1"
    assert s["sasrec_ndcg10_relative_to_recbole"] == pytest.approx((0.9 + 1.1) / 2)
    assert s["sasrec_epoch_speedup_vs_recbole"] == pytest.approx(2.0)
    assert s["sasrec_speedup_to_recbole_quality"] == pytest.approx((20.0 + 5.0) / 2)
    assert s["sasrec_ndcg10_converged_relative_to_recbole"] == pytest.approx(1.25)
    assert math.isnan(summarise_seeds(seed(3, 0.04, None))["sasrec_speedup_to_recbole_quality"])  # never reached


def test_the_dated_readings_quote_the_saved_figures() -> None:
    # every row of the dated readings' tables starts its value with the figure saved in the file the paragraph
    # above it names (File: `results/perf/....json`), rounded as printed (parentheses not checked)
    section = (PROJECT_ROOT / "docs" / "performance_readings_2026-12.md").read_text()
    checked: dict[str, int] = {}
    figures = None
    for line in section.splitlines():
        named = re.search(r"File: `(results/perf/[\w.]+\.json)`", line)
        if named:
            path = named.group(1)
            figures = json.loads((PROJECT_ROOT / path).read_text())["figures"]
        if not line.startswith("| `") or "not measured" in line:
            continue
        match = re.match(r"\| `(\w+)`[^|]*\| ([0-9][0-9,]*(?:\.[0-9]+)?)", line)
        assert match and figures is not None, line
        name, printed = match.groups()
        decimals = len(printed.split(".")[1]) if "." in printed else 0
        assert round(figures[name], decimals) == float(printed.replace(",", "")), name
        checked[path] = checked.get(path, 0) + 1
    assert checked == {"results/perf/full.json": 13, "results/perf/full_intel_xeon.json": 18,
                       "results/perf/existing_kuairand1k_amd_epyc_no_bf16.json": 5,
                       "results/perf/existing_kuairand1k_intel_xeon.json": 4}


def test_the_performance_page_types_no_figure_and_names_saved_ones() -> None:
    """docs/performance.md explains; the values are on the generated docs/perf-figures.md (issue 43). Its figure
    tables name keys the saved files hold; no measured value (a number with a unit of time, memory, rate or speedup,
    outside a target) nor commit id is typed."""
    page = (PROJECT_ROOT / "docs" / "performance.md").read_text()
    saved = set()
    for path in (PROJECT_ROOT / "results" / "perf").glob("*.json"):
        saved |= set(json.loads(path.read_text())["figures"])
    named = 0
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) == 3 and not cells[0].startswith("`--"):  # figure key(s) | what it measures | target
            keys = re.findall(r"`(\w+)`", cells[0])
            patterned = "<" in cells[0] or "..." in cells[0]  # a family of keys: train_step_<backbone>_...
            assert (keys or patterned) and all(k in saved for k in keys), line
            named += len(keys)
            text = " ".join(cells[:2])
        else:
            text = line
        measured = r"\b\d+(?:\.\d+)?\s?(?:s|ms|min|h|GiB|GB|MB|GFLOP/s|x|×|%)(?=[\s,.;:)]|$)"
        assert not re.search(measured, re.sub(r"`[^`]*`", "", text)), line  # a typed measurement
        assert not re.search(r"\bat [0-9a-f]{7,40}\b", line), line  # a commit id
    assert named >= 20


@pytest.mark.slow
def test_table1_sample_times_the_sweep_and_reads_its_records(tmp_path, real_sample) -> None:
    from bench.perf.table1 import table1_sample

    short = ["hydra.sweeper.params.model=dssm", "hydra.sweeper.params.increc=off", "train.max_epochs=2", "train.patience=1", "train.max_batches=3",
             "eval.seed_control=false"]
    figures = table1_sample(seeds=1, launcher=["train.threads=1"], extra=short, out_dir=tmp_path)
    assert figures["table1_sample_jobs"] == 1 and figures["table1_sample_models_trained"] == 1  # dssm, base, seed 0
    assert 1 <= figures["table1_sample_epochs_min"] <= figures["table1_sample_epochs_max"] <= 2
    assert figures["table1_sample_minutes"] > 0 and figures["table1_sample_command"].startswith("python -m bench -m")
    assert "seeds=1" in figures["table1_sample_command"]


def test_existing_channel_figures() -> None:
    from bench.perf.existing import existing_figures
    from bench.protocol.ragged import Ragged

    rng = np.random.default_rng(1)
    user = np.sort(rng.integers(0, 60, 1500))
    item = rng.integers(0, 200, 1500)
    history = Ragged(np.arange(0, 31, 3, dtype=np.int64), rng.integers(0, 200, 30).astype(np.int32))
    f = existing_figures(user, item, rng.integers(0, 10**6, 1500), 10**6, 200, history, repeats=1)
    assert f["existing_swing_over_itemcf_fit"] == pytest.approx(f["existing_swing_fit_seconds"]
                                                                / f["existing_itemcf_fit_seconds"])
    assert f["existing_popular_fit_seconds"] > 0 and f["existing_multi_retrieve_seconds"] > 0
    assert f["existing_multi_requests"] == 10 and 0 < f["existing_multi_mean_retrieved"] <= 200


@pytest.mark.slow
def test_existing_systems_on_a_preset_each_in_its_own_process() -> None:
    from bench.perf.existing import systems_on_preset

    f = systems_on_preset("tiny", {"nope": [], "twotower": [
        "existing.epochs=1", "train.max_batches=2", "existing.model=dssm", "existing.index=ivf", "existing.ivf_lists=4"]})
    assert f["tiny_load_only_s"] > 0 and f["tiny_load_only_peak_rss_gib"] > 0
    assert f["tiny_existing_twotower_s"] > f["tiny_existing_twotower_fit_s"] >= 0  # fit seconds are rounded: may read 0
    assert f["tiny_existing_twotower_n_fits"] >= 2  # rolling: one fit per day
    assert f["tiny_existing_twotower_peak_rss_gib"] > 0
    assert str(f["tiny_existing_nope"]).startswith("failed after")  # a system that does not compose is reported, not raised
    assert 0 < f["tiny_existing_twotower_twotower_recall_at_budget"] <= 1  # an approximate search reports its recall
    assert f["tiny_existing_twotower_twotower_index"] == "ivf, 4 lists, 4 probed, 1 fit(s)"


def test_a_child_s_peak_memory_is_its_own() -> None:
    """bench.perf.child reads the child's VmHWM: a parent holding 0.4 GiB does not raise a small child's peak
    (os.wait4's ru_maxrss would), a child that writes 0.3 GiB reports at least that, a failure says why."""
    from bench.perf.child import run_module, vm_hwm_gib

    held = np.ones(50 * 2**20 // 8 * 8, dtype=np.float64)  # 0.39 GiB, every page written
    assert vm_hwm_gib() is not None and vm_hwm_gib() > 0.39
    small = run_module("this", [])
    assert small.ok and small.peak_rss_gib is not None and small.peak_rss_gib < 0.25
    big = run_module("timeit", ["-n", "1", "-r", "1", "b = b'x' * (300 * 2**20)"])
    assert big.ok and big.peak_rss_gib > 0.29
    missing = run_module("no_such_module_for_this_test", [])
    assert not missing.ok and "no_such_module_for_this_test" in missing.stderr_tail
    del held
