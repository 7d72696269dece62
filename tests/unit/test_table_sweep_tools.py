"""tools/table_sweep: the session queue pops only a job that fits before the deadline, and a record joins the table
only at the table's commit, CPU kind and confirmed tuned values."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

from bench.config import PROJECT_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"table_sweep_{name}", PROJECT_ROOT / "tools" / "table_sweep" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_pop_takes_the_first_job_that_fits(tmp_path: Path) -> None:
    pop = _load("pop_job").pop
    queue, deadline = tmp_path / "queue.txt", tmp_path / "DEADLINE"
    queue.write_text("  # a comment 0 0 0\nkuairand_sample dssm 4 ten\nkuairand_sample kuaiformer 5 125\nkuairand_sample dssm 5 10\n")
    deadline.write_text(str(time.time() + 60 * 60))  # an hour left: kuaiformer's 125 minutes do not fit
    assert pop(queue, deadline) == "kuairand_sample dssm 5 10"  # the comment and the malformed line stay
    assert queue.read_text() == "  # a comment 0 0 0\nkuairand_sample dssm 4 ten\nkuairand_sample kuaiformer 5 125\n"
    assert pop(queue, deadline) is None
    deadline.unlink()  # no deadline: every job fits
    assert pop(queue, deadline) == "kuairand_sample kuaiformer 5 125"


def test_a_record_of_another_commit_kind_or_value_is_refused() -> None:
    problems = _load("copy_records").problems
    tuned = {"confirmation": {"outcome": "passed"}, "values": {"model.dim": 64, "train.lr": 0.01}}
    record = {"code_version": {"git_commit": "d0b9dd26cd", "dirty": False},
              "machine": {"cpu_vendor": "AuthenticAMD", "native_bf16": False},
              "config": {"model": {"dim": 64}, "train": {"lr": 0.01}}}
    assert problems(record, tuned, "d0b9dd2", "AuthenticAMD") == []
    record["machine"]["native_bf16"] = True
    record["config"]["train"]["lr"] = 0.02
    found = problems(record, tuned, "d0b9dd2", "AuthenticAMD")
    assert len(found) == 2 and found[0].startswith("cpu") and found[1].startswith("train.lr")
    assert problems(record, tuned, "d0b9dd2", "AuthenticAMD", native_bf16=True) == ["train.lr: 0.02 != 0.01"]
    assert problems(record | {"device": "cuda"}, {"values": {"model.heads": 2}}, "aab6619", "GenuineIntel") == [
        "code d0b9dd2 dirty=False", "cpu AuthenticAMD native_bf16=True", "tuned file unconfirmed", "trained on cuda",
        "model.heads: not in the record's config"]


def test_progress_counts_a_seed_only_when_every_arm_is_recorded(tmp_path: Path) -> None:
    progress = _load("progress")

    def job(name: str, seconds: float, npz: bool = True) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"stage_seconds": {"train_base": seconds}}))
        if npz:
            (tmp_path / name / "per_request.npz").write_bytes(b"")

    for arm in ("off", "na", "na_permuted"):
        job(f"dssm_{arm}_seed0", 60)
        job(f"dssm_{arm}_seed1", 120)
    job("dssm_off_seed2", 60)                      # seed 2 lacks two arms
    job("recbole_NARM_off_seed0", 30)
    job("recbole_NARM_na_seed0", 30, npz=False)    # a record without its per-request arrays is not done
    rows = {r.label: r for r in progress.progress(tmp_path)}
    assert rows["dssm"].done == (0, 1) and rows["dssm"].minutes_per_seed == 4.5  # median of 3 and 6 minutes
    assert rows["dssm"].missing == tuple(range(2, 10))
    assert rows["recbole_NARM"].done == () and rows["recbole_NARM"].minutes_per_seed is None
    assert rows["recbole_NARM"].overrides() == "model=recbole model.recbole_model=NARM increc=off,na"
    assert rows["dssm"].overrides() == "model=dssm increc=off,na,na_permuted seeds=10"
    assert set(rows) == set(progress.PAPER + progress.OTHERS)
    assert {r.label for r in progress.progress(tmp_path, multi=True)} == set(progress.PAPER)
