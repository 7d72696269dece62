"""bench.pipeline.cache (store, keys, corruption, codecs) and the stage cache inside a run (hits, invalidation)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.pipeline.cache import StageCache, pack_dataclass, pack_frame, unpack_dataclass, unpack_frame
from bench.data.synthetic import ensure_generated
from bench.protocol.ragged import Ragged
from bench.protocol.requests import Requests, build_requests
from bench.pipeline.run import run
from tests.conftest import compose_config

FAST = ("dataset=synthetic", "dataset.preset=tiny", "model=youtube_dnn", "train.epochs=1", "train.early_stopping=false",
        "eval.seed_control=false", "train.progress=false")


# --------------------------------------------------------------------------- the store


def test_store_round_trip_and_key_sensitivity(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    arrays = {"a": np.arange(5, dtype=np.int32), "b": np.ones((2, 3))}
    key = cache.key("stage", fingerprint="abc", cfg={"x": 1})
    assert cache.load("stage", key) is None and cache.events["stage"] == "miss"
    cache.save("stage", key, arrays)
    got = cache.load("stage", key)
    assert cache.events["stage"] == "hit"
    assert got.keys() == arrays.keys() and all(np.array_equal(got[k], arrays[k]) for k in arrays)
    assert got["a"].dtype == np.int32
    # any part of the key changes it: data fingerprint, config, stage
    assert cache.key("stage", fingerprint="abd", cfg={"x": 1}) != key
    assert cache.key("stage", fingerprint="abc", cfg={"x": 2}) != key
    assert cache.key("other", fingerprint="abc", cfg={"x": 1}) != key
    assert cache.key("stage", cfg={"x": 1}, fingerprint="abc") == key  # order of the parts does not matter


def test_key_includes_the_code_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.pipeline.cache

    cache = StageCache(tmp_path)
    key = cache.key("stage", fingerprint="abc")
    monkeypatch.setattr(bench.pipeline.cache, "code_digest", lambda: "another version of the code")
    assert cache.key("stage", fingerprint="abc") != key


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entry_is_discarded(tmp_path: Path, damage: str) -> None:
    cache = StageCache(tmp_path)
    key = cache.key("stage", n=1)
    cache.save("stage", key, {"a": np.arange(10_000, dtype=np.int64)})
    path = cache.path("stage", key)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, one byte of the array data changed
        i = data.index(np.arange(10_000, dtype=np.int64)[5000:5001].tobytes())
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    else:
        path.write_bytes(b"not a zip file at all")
    assert cache.load("stage", key) is None
    assert cache.events["stage"] == "corrupt"
    assert not path.exists()  # discarded, so the next run recomputes and rewrites it


def test_disabled_cache_never_reads_or_writes(tmp_path: Path) -> None:
    cache = StageCache(None)
    cache.save("stage", "k", {"a": np.zeros(1)})
    assert cache.load("stage", "k") is None and cache.events["stage"] == "off"
    assert list(tmp_path.iterdir()) == []


def test_codecs_round_trip(synthetic_cache: Path) -> None:
    from bench.data import load_dataset

    cfg = compose_config(*FAST, f"dataset.cache_dir={synthetic_cache}")
    ds = load_dataset(cfg.dataset, progress=False)
    req = build_requests(ds.log)
    back = unpack_dataclass(Requests, pack_dataclass(req, "req"), "req")
    assert back.first_test_ms == req.first_test_ms and isinstance(back.first_test_ms, int)
    assert isinstance(back.targets, Ragged) and np.array_equal(back.targets.values, req.targets.values)
    assert np.array_equal(back.positives.time_ms, req.positives.time_ms)
    frame = unpack_frame(pack_frame(ds.items, "items"), "items")
    pd.testing.assert_frame_equal(frame, ds.items)
    with pytest.raises(ValueError, match="RangeIndex"):
        pack_frame(ds.items.iloc[1:], "items")


# --------------------------------------------------------------------------- inside a run


def test_variants_share_the_cached_base(tmp_path: Path, synthetic_cache: Path) -> None:
    common = (*FAST, f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp_path / 'cache'}")
    off = run(compose_config(*common, "increc=off"), tmp_path / "off").record
    assert off["cache"] == {"prepared": "miss", "base": "miss"}
    na = run(compose_config(*common, "increc=na"), tmp_path / "na").record
    assert na["cache"] == {"prepared": "hit", "base": "hit"}
    assert "train_base" not in na["stage_seconds"] and "load" not in na["stage_seconds"]
    for k in off["ks"]:  # the base the variant measures against is the standalone base, bit for bit
        assert na["metrics"][f"Base@{k}"] == off["metrics"][f"Base@{k}"]
        assert na["metrics"][f"Sup@{k}"] == off["metrics"][f"Sup@{k}"]
    uncached = run(compose_config(*common[:-1], "cache.enabled=false", "increc=na"), tmp_path / "na2").record
    assert uncached["cache"] == {"prepared": "off", "base": "off"}
    assert uncached["metrics"] == na["metrics"]  # a cache hit gives exactly what computing gives
    # a config change of the existing system invalidates both stages; a model seed only the base
    budget = run(compose_config(*common, "increc=off", "existing.budget=12"), tmp_path / "b").record
    assert budget["cache"] == {"prepared": "miss", "base": "miss"}
    seed = run(compose_config(*common, "increc=off", "seed=1"), tmp_path / "s").record
    assert seed["cache"] == {"prepared": "hit", "base": "miss"}


def test_a_base_trained_on_another_cpu_vendor_is_not_reused(tmp_path: Path, synthetic_cache: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # dropout masks differ between Intel and other CPUs, so the trained base is keyed by the vendor
    import bench.pipeline.stages

    common = (*FAST, f"dataset.cache_dir={synthetic_cache}", f"cache.dir={tmp_path / 'cache'}", "increc=off")
    assert run(compose_config(*common), tmp_path / "a").record["cache"]["base"] == "miss"
    monkeypatch.setattr(bench.pipeline.stages, "cpu_vendor", lambda: "AnotherVendor")
    assert run(compose_config(*common), tmp_path / "b").record["cache"] == {"prepared": "hit", "base": "miss"}
    assert run(compose_config(*common), tmp_path / "c").record["cache"] == {"prepared": "hit", "base": "hit"}


def test_changed_data_invalidates_the_cache(tmp_path: Path, synthetic_cache: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(ensure_generated("tiny", 0, synthetic_cache, progress=False), data)
    common = ("dataset=kuairand", f"dataset.root={data}", "dataset.ks=[10,20]", "dataset.existing_budget=16", *FAST[2:],
              "increc=off", f"cache.dir={tmp_path / 'cache'}")
    first = run(compose_config(*common), tmp_path / "a").record
    assert run(compose_config(*common), tmp_path / "b").record["cache"] == {"prepared": "hit", "base": "hit"}
    log = next(data.glob("log_standard_*"))
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines + lines[1:2]))  # one duplicated row: same config, different data
    changed = run(compose_config(*common), tmp_path / "c").record
    assert changed["cache"] == {"prepared": "miss", "base": "miss"}
    assert changed["data_fingerprint"] != first["data_fingerprint"]
    assert changed["dataset_stats"]["log_duplicates"] == first["dataset_stats"]["log_duplicates"] + 1


WRITER = """
import sys, time
import numpy as np
from bench.pipeline.cache import StageCache
root, start, rank = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
cache = StageCache(root)
arrays = {"x": np.arange(2_000_000, dtype=np.int64), "tag": np.array([7])}  # 16 MB: a write takes a while
while time.time() < start:
    time.sleep(0.001)
for _ in range(5):
    cache.save("stage", "same-key", arrays)
    got = cache.load("stage", "same-key")
    assert got is not None and np.array_equal(got["x"], arrays["x"]), cache.events
print("ok", rank)
"""


def test_two_processes_writing_one_entry_leave_it_whole(tmp_path: Path) -> None:
    """Two jobs of a sweep (or two cluster nodes on shared storage) that compute the same stage at once both write
    its entry; each write goes to a temporary file renamed into place, so every read by either finds a whole entry
    and the entry left behind is whole (issue 43)."""
    import subprocess
    import sys
    import time

    from bench.config import PROJECT_ROOT

    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(start), str(rank)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o.strip().splitlines()[-1] for o in outs] == ["ok 0", "ok 1"]
    cache = StageCache(tmp_path)
    assert cache.load("stage", "same-key")["x"].sum() == sum(range(2_000_000)) and cache.events["stage"] == "hit"
    assert [p.name for p in (tmp_path / "stage").iterdir()] == ["same-key.npz"]  # no temporary file left behind
