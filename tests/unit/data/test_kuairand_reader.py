"""Tests of the KuaiRand reader (bench.data.kuairand) on tiny hand-written files in the official schema.

Every file here is built in a temporary folder, with the official column headers written out
below, so the tests run without the real sample.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data import kuairand as kr
from bench.errors import DataError

# Official headers (as in the KuaiRand-Pure files).
LOG_HEADER = [
    "user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow", "is_comment",
    "is_forward", "is_hate", "long_view", "play_time_ms", "duration_ms", "profile_stay_time",
    "comment_stay_time", "is_profile_enter", "is_rand", "tab",
]
VIDEO_HEADER = [
    "video_id", "author_id", "video_type", "upload_dt", "upload_type", "visible_status", "video_duration",
    "server_width", "server_height", "music_id", "music_type", "tag",
]
USER_HEADER = [
    "user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
    "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range", "friend_user_num",
    "friend_user_num_range", "register_days", "register_days_range",
    *(f"onehot_feat{k}" for k in range(18)),
]
PROFILE_NAMES = [name for name, _ in kr.PROFILE_FEATURES]

BEIJING = dt.timezone(dt.timedelta(hours=8))
T0 = 1_651_000_000_000  # 2022-04-27, inside the Pure period
HOUR = 3_600_000

PURE = {
    "logs": ["log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv"],
    "random": "log_random_4_22_to_5_08_pure.csv",
    "video": "video_features_basic_pure.csv",
    "user": "user_features_pure.csv",
}
K1 = {
    "logs": ["log_standard_4_08_to_4_21_1k.csv", "log_standard_4_22_to_5_08_1k.csv"],
    "random": "log_random_4_22_to_5_08_1k.csv",
    "video": "video_features_basic_1k.csv",
    "user": "user_features_1k.csv",
}
K27 = {
    "logs": [
        "log_standard_4_08_to_4_21_27k_part1.csv", "log_standard_4_08_to_4_21_27k_part2.csv",
        "log_standard_4_22_to_5_08_27k_part1.csv", "log_standard_4_22_to_5_08_27k_part2.csv",
    ],
    "random": "log_random_4_22_to_5_08_27k.csv",
    "video": "video_features_basic_27k.csv",
    "user": "user_features_27k.csv",
}
RELEASES = {"pure": PURE, "1k": K1, "27k": K27}


# ---------------------------------------------------------------- builders


def log_row(user: int, video: int, time_ms: int, click: int = 1, tab: int = 1, **extra) -> dict:
    """A full official log row; `date` and `hourmin` follow `time_ms` unless given."""
    when = dt.datetime.fromtimestamp(time_ms / 1000, BEIJING)
    row = dict.fromkeys(LOG_HEADER, 0)
    row.update(user_id=user, video_id=video, time_ms=time_ms, is_click=click, tab=tab,
               date=int(when.strftime("%Y%m%d")), hourmin=when.hour * 100, play_time_ms=5000, duration_ms=10000)
    row.update(extra)
    return row


def video_row(video: int, **extra) -> dict:
    row = {"video_id": video, "author_id": 100 + video, "video_type": "NORMAL", "upload_dt": "2022-04-01",
           "upload_type": "ShortImport", "visible_status": 0.0, "video_duration": 20_000.0, "server_width": 720.0,
           "server_height": 1280.0, "music_id": 9, "music_type": 9.0, "tag": "5"}
    row.update(extra)
    return row


def user_row(user: int, **extra) -> dict:
    row = {c: 1 for c in USER_HEADER}
    row.update(user_id=user, user_active_degree="full_active", follow_user_num_range="500+",
               fans_user_num_range="[100,1k)", friend_user_num_range="[30,60)", register_days_range="730+")
    row.update(extra)
    return row


def write(path: Path, header: list[str], rows: list[dict], compression: str | None = None) -> Path:
    """Write rows (dicts; a missing or None value is a blank cell) under the given header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([[r.get(c) for c in header] for r in rows], columns=header, dtype=object)
    frame.to_csv(path, index=False, compression=compression)
    return path


BASE_LOG = [
    log_row(1, 10, T0),
    log_row(1, 11, T0 + HOUR, click=0),
    log_row(2, 12, T0 + 2 * HOUR, tab=4),
    log_row(3, 13, T0 + 3 * HOUR),
]
BASE_VIDEOS = [video_row(v) for v in (10, 11, 12, 13)]
BASE_USERS = [user_row(u) for u in (1, 2, 3)]


def make_release(root: Path, names: dict = PURE, logs: dict[str, list[dict]] | None = None,
                 videos: list[dict] | None = None, users: list[dict] | None = BASE_USERS,
                 gz: bool = False) -> Path:
    """Write one release's files; by default BASE_LOG goes into its last standard log."""
    suffix, comp = (".gz", "gzip") if gz else ("", None)
    logs = logs if logs is not None else {names["logs"][-1]: BASE_LOG}
    for name, rows in logs.items():
        write(root / (name + suffix), LOG_HEADER, rows, comp)
    write(root / (names["video"] + suffix), VIDEO_HEADER, BASE_VIDEOS if videos is None else videos, comp)
    if users is not None:
        write(root / (names["user"] + suffix), USER_HEADER, users, comp)
    return root


def load(root: Path, **kwargs) -> kr.Dataset:
    return kr.load_kuairand(root, progress=False, **kwargs)


def raw_log(ds) -> pd.DataFrame:
    """The log with raw user / video ids, to compare against the rows written."""
    return pd.DataFrame({
        "user_id": ds.users["raw_id"].to_numpy()[ds.log["user"].to_numpy()],
        "video_id": ds.items["raw_id"].to_numpy()[ds.log["item"].to_numpy()],
        "time_ms": ds.log["time_ms"].to_numpy(),
        "tab": ds.log["tab"].to_numpy(),
        "positive": ds.log["positive"].to_numpy(),
    })


def assert_one_line(err: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


# ---------------------------------------------------------------- discovery


@pytest.mark.parametrize("release", ["pure", "1k", "27k"])
def test_discovers_official_names_of_each_release(tmp_path, release):
    names = RELEASES[release]
    logs = {name: [log_row(1 + i, 10 + i % 4, T0 + i * HOUR)] for i, name in enumerate(names["logs"])}
    make_release(tmp_path, names, logs=logs)
    write(tmp_path / names["random"], LOG_HEADER, [log_row(9, 10, T0)])
    write(tmp_path / "README.md", ["x"], [])  # unrelated files are ignored
    write(tmp_path / "video_features_statistic_27k_part1.csv", ["video_id"], [{"video_id": 1}])

    found = kr.find_files(tmp_path)
    assert found.release == release
    assert [p.name for p in found.logs] == sorted(names["logs"])
    assert [p.name for p in found.videos] == [names["video"]]
    assert found.users is not None and found.users.name == names["user"]

    ds = load(tmp_path)
    assert ds.stats["log_rows"] == len(names["logs"])  # every part read, the random log not
    assert sorted(ds.users["raw_id"]) == list(range(1, len(names["logs"]) + 1))


def test_reads_gzip_files(tmp_path):
    plain = load(make_release(tmp_path / "plain"))
    packed_dir = make_release(tmp_path / "gz", gz=True)
    found = kr.find_files(packed_dir)
    assert [p.name for p in found.logs] == [PURE["logs"][-1] + ".gz"]
    assert found.videos[0].name.endswith(".csv.gz") and found.users.name.endswith(".csv.gz")
    packed = load(packed_dir)
    pd.testing.assert_frame_equal(packed.log, plain.log)
    pd.testing.assert_frame_equal(packed.items, plain.items)
    pd.testing.assert_frame_equal(packed.users, plain.users)


def test_finds_files_in_data_subfolder(tmp_path):
    make_release(tmp_path / "data")
    found = kr.find_files(tmp_path)
    assert found.logs[0].parent.name == "data"
    assert len(load(tmp_path).log) == len(BASE_LOG)


def test_random_log_only_when_asked(tmp_path):
    make_release(tmp_path)
    write(tmp_path / PURE["random"], LOG_HEADER, [log_row(1, 12, T0 + 5 * HOUR), log_row(7, 10, T0)])
    assert [p.name for p in kr.find_files(tmp_path).logs] == [PURE["logs"][-1]]
    with_random = kr.find_files(tmp_path, include_random=True)
    assert sorted(p.name for p in with_random.logs) == sorted([PURE["logs"][-1], PURE["random"]])

    assert load(tmp_path).stats["log_rows"] == len(BASE_LOG)
    ds = load(tmp_path, include_random=True)
    assert ds.stats["log_rows"] == len(BASE_LOG) + 2
    assert 7 in set(ds.users["raw_id"])


def test_two_releases_need_a_choice(tmp_path):
    make_release(tmp_path, PURE)
    make_release(tmp_path, K1, logs={K1["logs"][0]: [log_row(5, 10, T0)]})
    with pytest.raises(DataError) as err:
        kr.find_files(tmp_path)
    msg = assert_one_line(err, str(tmp_path), "pure", "1k")
    assert "release" in msg
    assert kr.find_files(tmp_path, release="pure").logs[0].name == PURE["logs"][-1]
    one_k = kr.find_files(tmp_path, release="1k")
    assert [p.name for p in one_k.logs] == [K1["logs"][0]] and one_k.users.name == K1["user"]
    assert list(load(tmp_path, release="1k").users["raw_id"]) == [5]


def test_unknown_or_absent_release(tmp_path):
    make_release(tmp_path)
    with pytest.raises(DataError) as err:
        kr.find_files(tmp_path, release="2k")
    assert_one_line(err, "release", "'2k'", "pure")
    with pytest.raises(DataError) as err:
        kr.find_files(tmp_path, release="27k")
    assert_one_line(err, str(tmp_path), "log_standard_*_27k")


def test_plain_csv_preferred_over_its_gzip_twin(tmp_path):
    make_release(tmp_path)  # the plain files hold BASE_LOG
    write(tmp_path / (PURE["logs"][-1] + ".gz"), LOG_HEADER, [log_row(8, 10, T0)], "gzip")
    write(tmp_path / (PURE["video"] + ".gz"), VIDEO_HEADER, [video_row(99)], "gzip")
    found = kr.find_files(tmp_path)
    assert [p.name for p in found.logs] == [PURE["logs"][-1]]
    assert [p.name for p in found.videos] == [PURE["video"]]
    ds = load(tmp_path)
    assert 8 not in set(ds.users["raw_id"]) and 99 not in set(ds.items["raw_id"])
    assert ds.stats["log_rows"] == len(BASE_LOG)


# ---------------------------------------------------------------- duplicates, time, order


def test_exact_duplicates_dropped_and_counted(tmp_path):
    rows = BASE_LOG + [BASE_LOG[0], BASE_LOG[2], BASE_LOG[0]]
    ds = load(make_release(tmp_path, logs={PURE["logs"][-1]: rows}))
    assert ds.stats["log_rows"] == len(rows)
    assert ds.stats["log_duplicates"] == 3
    assert ds.stats["log_rows_kept"] == len(BASE_LOG) == len(ds.log)


def test_duplicates_across_two_log_files(tmp_path):
    logs = {PURE["logs"][0]: [BASE_LOG[1], log_row(2, 10, T0 - 5 * HOUR)], PURE["logs"][1]: BASE_LOG}
    ds = load(make_release(tmp_path, logs=logs))
    assert ds.stats["log_rows"] == len(BASE_LOG) + 2
    assert ds.stats["log_duplicates"] == 1
    assert len(ds.log) == len(BASE_LOG) + 1


@pytest.mark.parametrize("column, value", [("play_time_ms", 4999), ("is_like", 1), ("hourmin", 2300)])
def test_row_differing_in_one_column_is_kept(tmp_path, column, value):
    twin = dict(BASE_LOG[0], **{column: value})
    ds = load(make_release(tmp_path, logs={PURE["logs"][-1]: BASE_LOG + [twin]}))
    assert ds.stats["log_duplicates"] == 0
    assert len(ds.log) == len(BASE_LOG) + 1  # identical in the five kept columns, still two impressions


def test_time_ms_is_the_time_not_date(tmp_path):
    rows = [log_row(1, 10, T0 + 2 * HOUR), log_row(1, 11, T0), log_row(1, 12, T0 + HOUR)]
    honest = load(make_release(tmp_path / "a", logs={PURE["logs"][-1]: rows}))
    lying = [dict(rows[0], date=20220422, hourmin=0), dict(rows[1], date=20220508, hourmin=2359), rows[2]]
    liar = load(make_release(tmp_path / "b", logs={PURE["logs"][-1]: lying}))
    pd.testing.assert_frame_equal(liar.log, honest.log)
    assert list(raw_log(liar)["video_id"]) == [11, 12, 10]
    assert list(liar.log["time_ms"]) == [T0, T0 + HOUR, T0 + 2 * HOUR]


def test_sorted_by_user_then_time(tmp_path):
    rng = np.random.default_rng(0)
    rows = [log_row(int(u), int(v), T0 + int(t) * 1000, click=int(c), tab=int(tab))
            for u, v, t, c, tab in zip(rng.integers(0, 6, 60), rng.integers(10, 14, 60),
                                       rng.permutation(60), rng.integers(0, 2, 60), rng.integers(0, 15, 60))]
    ds = load(make_release(tmp_path, logs={PURE["logs"][-1]: rows}, users=None))
    log = ds.log
    assert list(log.columns) == ["user", "item", "time_ms", "tab", "positive"]
    assert log.dtypes.astype(str).to_dict() == {"user": "int32", "item": "int32", "time_ms": "int64",
                                                "tab": "int16", "positive": "bool"}
    keys = list(zip(log["user"], log["time_ms"]))
    assert keys == sorted(keys)
    assert list(ds.users["raw_id"]) == sorted(ds.users["raw_id"])  # user codes follow raw ids
    expected = pd.DataFrame(rows)[["user_id", "video_id", "time_ms", "tab", "is_click"]]
    expected = expected.sort_values(["user_id", "time_ms"]).reset_index(drop=True)
    got = raw_log(ds)
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    assert got["video_id"].tolist() == expected["video_id"].tolist()
    assert got["tab"].tolist() == expected["tab"].tolist()
    assert got["positive"].tolist() == (expected["is_click"] == 1).tolist()


# ---------------------------------------------------------------- user features


def test_user_feature_bad_codes_and_blanks_are_zero(tmp_path):
    users = [
        user_row(1, is_live_streamer=-124, user_active_degree=None),
        user_row(2, is_live_streamer=0, user_active_degree="high_active", onehot_feat3=None),
        user_row(3, is_live_streamer=1, user_active_degree="UNKNOWN"),
    ]
    ds = load(make_release(tmp_path, users=users))
    prof = ds.users.set_index("raw_id")
    assert list(ds.users.columns) == ["raw_id", *PROFILE_NAMES]
    assert prof.loc[1, "is_live_streamer"] == 0
    assert prof.loc[2, "is_live_streamer"] > 0 and prof.loc[3, "is_live_streamer"] > prof.loc[2, "is_live_streamer"]
    assert prof.loc[1, "user_active_degree"] == 0 and prof.loc[3, "user_active_degree"] == 0
    assert prof.loc[2, "user_active_degree"] > 0
    assert prof.loc[2, "onehot_feat3"] == 0 and prof.loc[1, "onehot_feat3"] > 0
    assert prof.loc[1, "fans_user_num_range"] > 0


def test_users_missing_from_user_features_get_zero_profiles(tmp_path):
    ds = load(make_release(tmp_path, users=[user_row(1), user_row(3), user_row(50)]))
    prof = ds.users.set_index("raw_id")
    assert list(prof.index) == [1, 2, 3]  # only users of the log
    assert (prof.loc[2] == 0).all()
    assert (prof.loc[1] > 0).all() and (prof.loc[3] > 0).all()


def test_no_user_features_file(tmp_path):
    ds = load(make_release(tmp_path, users=None))
    assert kr.find_files(tmp_path).users is None
    assert list(ds.users.columns) == ["raw_id", *PROFILE_NAMES]
    assert len(ds.users) == 3 and (ds.profiles() == 0).all()
    assert ds.files == [*kr.find_files(tmp_path).logs, *kr.find_files(tmp_path).videos]


# ---------------------------------------------------------------- video features


def test_video_features_tags_blanks_durations(tmp_path):
    videos = [
        video_row(10, tag="20,43", video_duration=5_000.0),
        video_row(11, tag="20", video_duration=7_000.0),
        video_row(12, tag="43", video_duration=None, author_id=None, video_type=None),
        video_row(13, tag=None, video_duration=900_000.0, music_type=-124),
    ]
    ds = load(make_release(tmp_path, videos=videos))
    items = ds.items.set_index("raw_id")
    assert list(ds.items.columns) == ["raw_id", "author", "video_type", "upload_type", "music_type", "tag",
                                      "duration_bucket"]
    assert items.loc[10, "tag"] == items.loc[11, "tag"] > 0
    assert items.loc[12, "tag"] not in (0, items.loc[10, "tag"])
    assert items.loc[13, "tag"] == 0
    assert items.loc[12, "author"] == 0 and items.loc[12, "video_type"] == 0 and items.loc[11, "author"] > 0
    assert items.loc[13, "music_type"] == 0 and items.loc[10, "music_type"] > 0
    # buckets: 0 unknown, then (<7s)=1, [7,15)=2, ..., [600s,)=8
    assert items["duration_bucket"].to_dict() == {10: 1, 11: 2, 12: 0, 13: 8}


@pytest.mark.parametrize("seconds, bucket", [(0.5, 1), (6.9, 1), (15, 3), (59.9, 4), (60, 5), (299, 6), (599, 7)])
def test_duration_buckets(tmp_path, seconds, bucket):
    videos = [video_row(v, video_duration=seconds * 1000.0) for v in (10, 11, 12, 13)]
    ds = load(make_release(tmp_path, videos=videos))
    assert (ds.items["duration_bucket"] == bucket).all()


def test_unknown_items_dropped_or_added(tmp_path):
    rows = BASE_LOG + [log_row(1, 77, T0 + 5 * HOUR), log_row(2, 77, T0 + 6 * HOUR), log_row(3, 78, T0 + 7 * HOUR)]
    make_release(tmp_path, logs={PURE["logs"][-1]: rows})

    dropped = load(tmp_path)
    assert dropped.stats["log_rows_unknown_item"] == 3
    assert len(dropped.log) == len(BASE_LOG) and dropped.n_items == 4
    assert not {77, 78} & set(dropped.items["raw_id"])

    added = load(tmp_path, unknown_items="add")
    assert added.stats["log_rows_unknown_item"] == 3
    assert len(added.log) == len(rows) and added.n_items == 6
    extra = added.items.set_index("raw_id").loc[[77, 78]]
    assert (extra == 0).all().all()  # no side features known
    assert added.items.dtypes.drop("raw_id").astype(str).eq("int32").all()
    assert sorted(raw_log(added)["video_id"]) == sorted(r["video_id"] for r in rows)

    with pytest.raises(DataError) as err:
        load(tmp_path, unknown_items="keep")
    assert_one_line(err, "unknown_items", "keep")


# ---------------------------------------------------------------- labels


def test_long_view_label(tmp_path):
    rows = [log_row(1, 10, T0, click=1, long_view=0), log_row(1, 11, T0 + 1, click=0, long_view=1),
            log_row(2, 12, T0 + 2, click=1, long_view=1)]
    make_release(tmp_path, logs={PURE["logs"][-1]: rows})
    assert load(tmp_path).log["positive"].tolist() == [True, False, True]
    assert load(tmp_path, label="long_view").log["positive"].tolist() == [False, True, True]


def test_unknown_label(tmp_path):
    make_release(tmp_path)
    with pytest.raises(DataError) as err:
        load(tmp_path, label="is_clicked")
    assert_one_line(err, "is_clicked", "is_click")


# ---------------------------------------------------------------- errors


LOG_NAME = PURE["logs"][-1]


def test_missing_directory(tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path / "nowhere")
    assert_one_line(err, "nowhere", "not found")


def test_no_log_file(tmp_path):
    make_release(tmp_path, logs={})
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, str(tmp_path), "log_standard_")


def test_empty_directory(tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, str(tmp_path), "log_standard_")


def test_missing_video_features(tmp_path):
    make_release(tmp_path)
    (tmp_path / PURE["video"]).unlink()
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, "video_features_basic_pure")


@pytest.mark.parametrize("column", ["time_ms", "user_id", "tab", "is_click"])
def test_missing_log_column(tmp_path, column):
    rows = [{k: v for k, v in r.items() if k != column} for r in BASE_LOG]
    make_release(tmp_path, logs={})
    write(tmp_path / LOG_NAME, [c for c in LOG_HEADER if c != column], rows)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME, repr(column))


def test_missing_label_column_for_chosen_label(tmp_path):
    make_release(tmp_path, logs={})
    write(tmp_path / LOG_NAME, [c for c in LOG_HEADER if c != "long_view"], BASE_LOG)
    assert len(load(tmp_path).log) == len(BASE_LOG)  # not needed for is_click
    with pytest.raises(DataError) as err:
        load(tmp_path, label="long_view")
    assert_one_line(err, LOG_NAME, "'long_view'")


@pytest.mark.parametrize("column", ["video_id", "tag", "video_duration"])
def test_missing_video_column(tmp_path, column):
    make_release(tmp_path)
    write(tmp_path / PURE["video"], [c for c in VIDEO_HEADER if c != column], BASE_VIDEOS)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, PURE["video"], repr(column))


def test_missing_user_id_column_in_user_features(tmp_path):
    make_release(tmp_path)
    write(tmp_path / PURE["user"], USER_HEADER[1:], BASE_USERS)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, PURE["user"], "'user_id'")


@pytest.mark.parametrize(
    "column, value, gz",
    [
        ("time_ms", "yesterday", False),
        ("time_ms", "yesterday", True),
        ("time_ms", "1651000000000.5", False),
        ("time_ms", None, False),
        ("user_id", "u17", False),
        ("is_click", None, False),
        ("play_time_ms", "n/a", False),
    ],
)
def test_non_integer_log_value(tmp_path, column, value, gz):
    rows = BASE_LOG + [dict(log_row(1, 12, T0 + 9 * HOUR), **{column: value})]
    make_release(tmp_path, logs={LOG_NAME: rows}, gz=gz)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    msg = assert_one_line(err, LOG_NAME, repr(column), "(data row 5)")  # the fifth data row
    assert ("a blank" in msg) if value is None else (repr(value) in msg)


def test_bad_value_in_a_later_chunk_names_its_row(tmp_path, monkeypatch):
    monkeypatch.setattr(kr, "CHUNK_ROWS", 2)
    rows = BASE_LOG + [log_row(1, 12, T0 + 9 * HOUR), dict(log_row(1, 12, T0 + 10 * HOUR), time_ms="x")]
    make_release(tmp_path, logs={LOG_NAME: rows})
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME, "'time_ms'", "'x'", "(data row 6)")


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("is_click", 7, "0 or 1"),
        ("is_click", -1, "0 or 1"),
        ("tab", 99, "0..14"),
        ("tab", 15, "0..14"),
        ("tab", -1, "0..14"),
        ("user_id", -3, "negative"),
        ("video_id", -3, "negative"),
        ("time_ms", -3, "negative"),
    ],
)
def test_out_of_range_log_value(tmp_path, column, value, words):
    rows = BASE_LOG[:2] + [dict(log_row(2, 12, T0 + 9 * HOUR), **{column: value})] + BASE_LOG[2:]
    make_release(tmp_path, logs={LOG_NAME: rows})
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME, repr(column), words, "(data row 3)")


def test_long_view_out_of_range_only_matters_when_it_is_the_label(tmp_path):
    rows = BASE_LOG + [log_row(2, 12, T0 + 9 * HOUR, long_view=3)]
    make_release(tmp_path, logs={LOG_NAME: rows})
    assert len(load(tmp_path).log) == len(rows)
    with pytest.raises(DataError) as err:
        load(tmp_path, label="long_view")
    assert_one_line(err, LOG_NAME, "'long_view'")


@pytest.mark.parametrize("which", ["log", "video", "user"])
def test_empty_file(tmp_path, which):
    make_release(tmp_path)
    name = {"log": LOG_NAME, "video": PURE["video"], "user": PURE["user"]}[which]
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, name, "empty")


@pytest.mark.parametrize("gz", [False, True])
def test_header_only_log(tmp_path, gz):
    make_release(tmp_path, logs={LOG_NAME: []}, gz=gz)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME, "no rows")


def test_header_only_video_features(tmp_path):
    make_release(tmp_path, videos=[])
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, PURE["video"], "no items")


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_gzip_log(tmp_path, keep):
    rows = [log_row(u % 7, 10 + u % 4, T0 + u * 1000, play_time_ms=u * 7919 % 100_003) for u in range(3000)]
    make_release(tmp_path, logs={LOG_NAME: rows}, gz=True)
    path = tmp_path / (LOG_NAME + ".gz")
    _truncate(path, keep)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME + ".gz", "truncated")


@pytest.mark.parametrize("which", ["video", "user"])
def test_truncated_gzip_feature_file(tmp_path, which):
    videos = [video_row(v) for v in range(10, 2000)]
    users = [user_row(u) for u in range(1, 2000)]
    make_release(tmp_path, videos=videos, users=users, gz=True)
    name = {"video": PURE["video"], "user": PURE["user"]}[which] + ".gz"
    _truncate(tmp_path / name, 0.6)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, name, "truncated")


def test_not_gzip_at_all(tmp_path):
    make_release(tmp_path, logs={})
    (tmp_path / (LOG_NAME + ".gz")).write_bytes(b"user_id,video_id\n1,2\n")
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME + ".gz")


def test_bad_video_id(tmp_path):
    make_release(tmp_path, videos=BASE_VIDEOS + [video_row(-5)])
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, PURE["video"], "'video_id'")


def test_text_video_id(tmp_path):
    make_release(tmp_path, videos=BASE_VIDEOS + [video_row(14, video_id="v14")])
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, PURE["video"], "'video_id'", "row 5")


def test_text_in_numeric_video_feature_is_unknown(tmp_path):
    videos = [video_row(10, author_id="someone", music_type="x", video_duration="long"), *BASE_VIDEOS[1:]]
    items = load(make_release(tmp_path, videos=videos)).items.set_index("raw_id")
    assert items.loc[10, ["author", "music_type", "duration_bucket"]].tolist() == [0, 0, 0]
    assert (items.loc[11, ["author", "music_type", "duration_bucket"]] > 0).all()


def test_text_user_id_in_user_features(tmp_path):
    make_release(tmp_path, users=BASE_USERS + [user_row("u9")])
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, PURE["user"], "'user_id'", "'u9'", "row 4")


def test_integer_overflow_in_log(tmp_path):
    rows = BASE_LOG + [dict(log_row(1, 12, T0 + 9 * HOUR), time_ms="99999999999999999999")]
    make_release(tmp_path, logs={LOG_NAME: rows})
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, LOG_NAME, "'time_ms'", "row 5")


def test_log_row_with_too_many_fields(tmp_path):
    # (feature files are read with usecols, where pandas ignores surplus fields)
    make_release(tmp_path)
    name = LOG_NAME
    with open(tmp_path / name, "a") as f:
        f.write("1,2,3" + ",0" * 40 + "\n")
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert_one_line(err, name, "malformed")
