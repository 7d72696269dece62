"""Tests of the synthetic KuaiRand-schema generator (bench.data.synthetic), on the `tiny` preset."""

from __future__ import annotations

import datetime as dt
import filecmp
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data import synthetic as syn
from bench.data.synthetic import writer as syn_writer

REAL_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "kuairand-pure-sample"
REAL_FILES = {
    "log": "log_standard_4_22_to_5_08_pure.csv",
    "user": "user_features_pure.csv",
    "video": "video_features_basic_pure.csv",
}
LOG_NAME = re.compile(r"^log_standard_(\d{1,2})_(\d{1,2})_to_(\d{1,2})_(\d{1,2})_synth\.csv$")
TZ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return syn.generate("tiny", 0, tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="module")
def tiny_frames(tiny):
    p = syn.PRESETS["tiny"]
    log = pd.read_csv(tiny / p.log_file)
    users = pd.read_csv(tiny / syn.USER_FILE, keep_default_na=False, dtype=str)
    videos = pd.read_csv(tiny / syn.VIDEO_FILE, keep_default_na=False, dtype=str)
    return log, users, videos


def _header(path: Path) -> list[str]:
    with open(path) as fh:
        return fh.readline().rstrip("\n").split(",")


def _files(path: Path) -> dict[str, Path]:
    out = {}
    for f in path.iterdir():
        key = "log" if f.name.startswith("log_standard_") else "user" if f.name.startswith("user_") else "video"
        out[key] = f
    return out


# ------------------------------------------------------------------------------------------ API


def test_presets_and_unknown_name(tmp_path):
    assert set(syn.PRESETS) == {"tiny", "small", "pure", "kuairand1k"}
    pure, k1k = syn.PRESETS["pure"], syn.PRESETS["kuairand1k"]
    assert (pure.n_users, pure.n_items, pure.n_impressions, pure.n_days) == (27_285, 7_551, 1_436_609, 31)
    assert (k1k.n_users, k1k.n_items, k1k.n_impressions, k1k.n_days) == (1_000, 4_369_953, 11_713_045, 31)
    assert pure.start_date == k1k.start_date == "2022-04-08"
    assert pure.last_day == dt.date(2022, 5, 8)
    for p in syn.PRESETS.values():
        assert p.last_day <= dt.date(2022, 5, 8)
    with pytest.raises(ValueError, match="tiny, small, pure, kuairand1k"):
        syn.ensure_generated("huge", 0, tmp_path)
    with pytest.raises(ValueError, match="valid presets"):
        syn.generate("nope", 0, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError):
        syn.SyntheticPreset(n_users=10, n_items=5, n_impressions=100, n_days=2, n_topics=8, n_hidden_topics=2)


def test_file_names_follow_official_pattern(tiny):
    names = sorted(f.name for f in tiny.iterdir())
    assert names == sorted(["log_standard_4_22_to_4_29_synth.csv", "user_features_synth.csv",
                            "video_features_basic_synth.csv"])
    m = LOG_NAME.match(syn.PRESETS["tiny"].log_file)
    assert m and [int(g) for g in m.groups()] == [4, 22, 4, 29]
    assert syn.PRESETS["pure"].log_file == "log_standard_4_8_to_5_8_synth.csv"  # no zero padding
    assert LOG_NAME.match(REAL_FILES["log"].replace("pure", "synth"))


def test_headers_equal_real_sample(tiny):
    if not REAL_DIR.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real sample not found at {REAL_DIR}")
        pytest.skip("real KuaiRand-Pure sample not present")
    ours = _files(tiny)
    for key, name in REAL_FILES.items():
        assert _header(ours[key]) == _header(REAL_DIR / name), key
    assert _header(ours["log"]) == list(syn.LOG_COLUMNS)
    assert _header(ours["user"]) == list(syn.USER_COLUMNS)
    assert _header(ours["video"]) == list(syn.VIDEO_COLUMNS)


# ---------------------------------------------------------------------- determinism, atomicity


def test_same_seed_same_bytes_other_seed_other_data(tiny, tmp_path):
    again = syn.generate("tiny", 0, tmp_path / "again")
    names = [f.name for f in tiny.iterdir()]
    match, mismatch, errors = filecmp.cmpfiles(tiny, again, names, shallow=False)
    assert sorted(match) == sorted(names) and not mismatch and not errors
    other = syn.generate("tiny", 1, tmp_path / "other")
    for name in names:
        assert (tiny / name).read_bytes() != (other / name).read_bytes(), name


def test_atomic_write_leaves_no_temporary_directory(tmp_path, monkeypatch):
    out = syn.generate("tiny", 3, tmp_path / "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    before = {f.name: f.read_bytes() for f in out.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(syn_writer, "_write_log", boom)
    with pytest.raises(RuntimeError):
        syn.generate("tiny", 4, tmp_path / "data")  # a failed replacement keeps the old dataset
    with pytest.raises(RuntimeError):
        syn.generate("tiny", 4, tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before

    # A directory holding other files is never replaced.
    monkeypatch.undo()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        syn.generate("tiny", 0, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mine"]


def test_ensure_generated_caches(tmp_path, monkeypatch):
    path = syn.ensure_generated("tiny", 5, tmp_path, progress=False)
    assert path == tmp_path / f"tiny-seed5-v{syn.GENERATOR_VERSION}"
    assert syn.is_complete(path, "tiny")
    mtimes = {f.name: f.stat().st_mtime_ns for f in path.iterdir()}

    def must_not_run(*args, **kwargs):
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(syn_writer, "_generate", must_not_run)
    assert syn.ensure_generated("tiny", 5, tmp_path, progress=False) == path
    assert {f.name: f.stat().st_mtime_ns for f in path.iterdir()} == mtimes
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# ------------------------------------------------------------------------------- file contents


def test_sizes_ids_and_time_range(tiny_frames):
    log, users, videos = tiny_frames
    p = syn.PRESETS["tiny"]
    assert len(log) == p.n_impressions
    assert users["user_id"].astype(int).tolist() == list(range(p.n_users))
    assert videos["video_id"].astype(int).tolist() == list(range(p.n_items))
    assert log["user_id"].between(0, p.n_users - 1).all() and log["video_id"].between(0, p.n_items - 1).all()
    assert 0.8 * p.n_users < log["user_id"].nunique() < p.n_users  # some users have no log row
    t = log["time_ms"].to_numpy()
    assert (np.diff(t) >= 0).all()
    start = dt.datetime(2022, 4, 22, tzinfo=TZ).timestamp() * 1000
    end = dt.datetime(2022, 4, 30, tzinfo=TZ).timestamp() * 1000
    assert t.min() >= start and t.max() < end
    days = (t + 8 * 3_600_000) // 86_400_000
    assert len(np.unique(days)) == p.n_days
    assert set(log["hourmin"].unique()) <= set(range(0, 2400, 100))
    assert log["date"].between(20220422, 20220429).all()
    assert (log["is_rand"] == 0).all()
    assert set(log["tab"].unique()) <= set(range(15))
    for col in syn.LOG_COLUMNS:
        if col.startswith("is_") or col == "long_view":
            assert set(log[col].unique()) <= {0, 1}, col


def test_rates_and_quirks(tiny_frames):
    log, users, videos = tiny_frames
    main = log["tab"] == 1
    assert 0.68 < main.mean() < 0.82
    assert 0.35 < log["is_click"].mean() < 0.50
    assert 0.38 < log.loc[main, "is_click"].mean() < 0.56
    assert {0, 2, 4, 6} <= set(log.loc[~main, "tab"].unique())
    lv = log.groupby("is_click")["long_view"].mean()
    assert lv[1] > 0.5 > 0.05 > lv[0]
    assert log.groupby("is_click")["is_like"].mean().diff().iloc[-1] > 0

    dup = log.duplicated()
    assert 0.01 < dup.mean() < 0.03

    # `date` is off by one day (the next one) on about 1% of rows; hourmin a round hour.
    t = pd.to_datetime(log["time_ms"], unit="ms", utc=True).dt.tz_convert("Asia/Shanghai")
    true_date = t.dt.strftime("%Y%m%d").astype(int)
    off = true_date != log["date"]
    assert 0.002 < off.mean() < 0.03
    next_day = (t + pd.Timedelta(days=1)).dt.strftime("%Y%m%d").astype(int)
    assert (log.loc[off, "date"] == next_day[off]).all()

    # duration_ms is the item's video_duration, 0 where that cell is blank.
    vd = pd.to_numeric(videos["video_duration"].replace("", np.nan)).fillna(0).to_numpy()
    assert (log["duration_ms"].to_numpy() == vd[log["video_id"].to_numpy()]).all()

    # Feature-file quirks.
    assert (users["is_live_streamer"] == "-124").any()
    assert (users["onehot_feat4"] == "").any()
    blank = users[[f"onehot_feat{k}" for k in range(12, 18)]] == ""
    assert blank.any().all() and (blank.all(axis=1) == blank.any(axis=1)).all()
    assert users["follow_user_num_range"].isin(syn.FOLLOW_LABELS).all()
    for col in ("video_duration", "music_type", "tag"):
        assert (videos[col] == "").any(), col
    assert videos["tag"].str.contains(",").mean() > 0.1
    assert videos["server_width"].str.endswith(".0").all()


# -------------------------------------------------------------------------- planted structure


def test_latent_structure_matches_files(tiny_frames):
    _, users, videos = tiny_frames
    lat = syn.latent_structure("tiny", 0)
    assert (lat.item_author == videos["author_id"].astype(np.int64).to_numpy()).all()
    p = syn.PRESETS["tiny"]
    assert lat.user_feed.shape == lat.user_hidden.shape == (p.n_users, p.n_topics)
    assert not (lat.user_feed & lat.user_hidden).any()
    assert not lat.user_hidden[:, : lat.n_feed_topics].any()
    assert (lat.user_hidden.sum(1) >= 1).all()


def test_hidden_interests_drive_other_scenarios(tiny_frames):
    log, users, _ = tiny_frames
    lat = syn.latent_structure("tiny", 0)
    clicks = log[log["is_click"] == 1]
    side = clicks[clicks["tab"] != 1]
    main = clicks[clicks["tab"] == 1]
    topic_side = lat.item_topic[side["video_id"].to_numpy()]
    hidden_share = lat.user_hidden[side["user_id"].to_numpy(), topic_side].mean()
    perm = np.random.default_rng(0).permutation(lat.user_hidden.shape[0])
    chance = lat.user_hidden[perm[side["user_id"].to_numpy()], topic_side].mean()
    assert hidden_share > 0.6 and hidden_share > 2.5 * chance
    topic_main = lat.item_topic[main["video_id"].to_numpy()]
    assert lat.user_feed[main["user_id"].to_numpy(), topic_main].mean() > 0.75
    assert lat.user_hidden[main["user_id"].to_numpy(), topic_main].mean() < 0.1

    # The profile predicts the first hidden topic: a function of (onehot_feat1, onehot_feat2)...
    prof = pd.DataFrame({"f1": users["onehot_feat1"], "f2": users["onehot_feat2"], "t": lat.user_profile_topic})
    assert (prof.groupby(["f1", "f2"])["t"].nunique() == 1).all()
    assert (lat.user_profile_topic == lat.user_hidden_main).mean() > 0.7

    # ...and so do the user's earlier clicks outside the main feed.
    side = side.assign(topic=topic_side)
    half = np.quantile(side["time_ms"], 0.5)
    early = side[side["time_ms"] < half].groupby("user_id")["topic"].agg(lambda x: x.value_counts().index[0])
    late = side[side["time_ms"] >= half].groupby("user_id")["topic"].agg(lambda x: x.value_counts().index[0])
    both = early.index.intersection(late.index)
    assert len(both) > 50
    assert (early[both] == late[both]).mean() > 0.5
