"""bench.data.atomic: RecBole atomic files (toy files worked by hand, and RecBole's own ml-100k)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.pipeline.validate import validate
from bench.data.atomic import load_atomic
from bench.errors import ConfigError, DataError
from tests.conftest import compose_config

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ITEM = "item_id:token\ttitle:token_seq\tyear:token\tclass:token_seq\tprice:float\n"
USER = "user_id:token\tage:token\tgender:token\n"


def write(root: Path, name: str, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(text)
    return path


def toy(root: Path, inter_rows: str, item_rows: str | None = "", user_rows: str | None = "") -> Path:
    write(root, "toy.inter", INTER + inter_rows)
    if item_rows is not None:
        write(root, "toy.item", ITEM + item_rows)
    if user_rows is not None:
        write(root, "toy.user", USER + user_rows)
    return root


ROWS = "u2\ti1\t4\t20\nu1\ti2\t2\t10\nu1\ti1\t5\t5\nu1\ti1\t5\t5\n"  # last row: an exact duplicate


def test_reads_a_toy_dataset_by_hand(tmp_path: Path) -> None:
    root = toy(tmp_path, ROWS, item_rows="i1\tToy Story\t1995\tAnimation Comedy\t1.5\ni2\tHeat\t\tCrime\t2\n",
               user_rows="u1\t24\tM\nu3\t30\tF\n")
    ds = load_atomic(root, "toy")
    assert ds.stats["log_rows"] == 4 and ds.stats["log_duplicates"] == 1 and ds.stats["positives"] == 3
    assert list(ds.items["raw_id"]) == ["i1", "i2"]
    # token fields and the first token of token_seq fields become codes 1..n in sorted order, blank = 0;
    # float fields are not features
    assert list(ds.items.columns) == ["raw_id", "title", "year", "class"]
    assert list(ds.items["title"]) == [2, 1]  # "Toy" > "Heat"
    assert list(ds.items["year"]) == [1, 0]
    assert list(ds.items["class"]) == [1, 2]  # "Animation" < "Crime"
    assert list(ds.users["raw_id"]) == ["u1", "u2"]
    assert list(ds.users["age"]) == [1, 0]  # "24" < "30" (u3, absent from the log, still counts); u2: no row
    assert list(ds.users["gender"]) == [2, 0]  # "F" = 1 < "M" = 2
    # sorted by (user, time); time in ms; a single scenario; every interaction positive by default
    assert ds.log["user"].tolist() == [0, 0, 1]
    assert ds.log["time_ms"].tolist() == [5000, 10000, 20000]
    assert ds.log["item"].tolist() == [0, 1, 0]
    assert set(ds.log["tab"]) == {1} and ds.log["positive"].all()
    assert [p.name for p in ds.files] == ["toy.inter", "toy.item", "toy.user"]


def test_min_rating_marks_positives(tmp_path: Path) -> None:
    ds = load_atomic(toy(tmp_path, ROWS, item_rows=None, user_rows=None), "toy", min_rating=4)
    assert ds.log["positive"].tolist() == [True, False, True]  # ratings 5, 2, 4
    assert list(ds.items.columns) == ["raw_id", "no_feature"] and list(ds.users.columns) == ["raw_id", "no_feature"]


def test_unknown_items_dropped_or_added(tmp_path: Path) -> None:
    root = toy(tmp_path, ROWS + "u3\ti9\t3\t30\n", item_rows="i1\tA\t1\tx\t1\ni2\tB\t2\ty\t1\n", user_rows=None)
    dropped = load_atomic(root, "toy")
    assert dropped.stats["log_rows_unknown_item"] == 1 and dropped.n_items == 2 and dropped.n_users == 2
    added = load_atomic(root, "toy", unknown_items="add")
    assert added.n_items == 3 and list(added.items["raw_id"])[-1] == "i9" and added.items["title"].iloc[-1] == 0


@pytest.mark.parametrize("files, needle", [
    ({"toy.inter": "user_id:token\titem_id:token\n" "u\ti\n"}, "missing field 'timestamp'"),
    ({"toy.inter": "user_id\titem_id:token\ttimestamp:float\n"}, "header cell 'user_id' is not field:type"),
    ({"toy.inter": "user_id:token\titem_id:float\ttimestamp:float\n1\t2\t3\n"}, "field 'item_id' is float, expected token"),
    ({"toy.inter": INTER + "u1\ti1\t5\tnoon\n"}, "field 'timestamp' holds 'noon', not a number (data row 1)"),
    ({"toy.inter": INTER + "u1\t\t5\t1\n"}, "field 'item_id' is blank (data row 1)"),
    ({"toy.inter": INTER}, "file has a header but no rows"),
    ({"toy.inter": ""}, "file is empty"),
    ({"other.inter": INTER + "u\ti\t1\t1\n"}, "toy.inter: file not found (RecBole atomic files are NAME.inter"),
])
def test_bad_files_give_one_line_errors(tmp_path: Path, files: dict[str, str], needle: str) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(DataError) as err:
        load_atomic(tmp_path, "toy")
    assert "\n" not in str(err.value) and needle in str(err.value), str(err.value)


def test_other_inter_names_are_suggested(tmp_path: Path) -> None:
    write(tmp_path, "ml-1m.inter", INTER)
    with pytest.raises(DataError, match=r"found \['ml-1m.inter'\]: set dataset.name"):
        load_atomic(tmp_path, "ml-100k")


def test_config_needs_root_and_name() -> None:
    with pytest.raises(ConfigError, match="dataset.name is required for dataset=atomic"):
        validate(compose_config("dataset=atomic"))
    validate(compose_config("dataset=atomic", "dataset.root=/x", "dataset.name=ml-100k"))


def test_recbole_ml100k_as_shipped() -> None:
    recbole = pytest.importorskip("recbole")
    root = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    ds = load_atomic(root, "ml-100k")
    assert (ds.n_users, ds.n_items, len(ds.log)) == (943, 1682, 100_000)
    assert ds.stats["log_duplicates"] == 0
    assert np.all(np.diff(ds.log["time_ms"].to_numpy()[ds.log["user"].to_numpy() == 0]) >= 0)


def test_error_rows_count_file_rows_and_duplicates_need_every_field(tmp_path: Path) -> None:
    write(tmp_path, "toy.inter", INTER + "u1\ti1\t5\t1\nu1\ti1\t5\t1\nu1\ti2\t4\tnoon\n")
    with pytest.raises(DataError, match=r"'noon', not a number \(data row 3\)"):
        load_atomic(tmp_path, "toy")
    write(tmp_path, "toy.inter", INTER + "u1\ti1\t5\t1\nu1\ti1\t3\t1\n")  # same user, item, time; other rating
    assert load_atomic(tmp_path, "toy").stats["log_duplicates"] == 0


def test_byte_order_mark_and_reserved_names(tmp_path: Path) -> None:
    write(tmp_path, "toy.inter", "\ufeff" + INTER + "u1\ti1\t5\t1\n")
    assert len(load_atomic(tmp_path, "toy").log) == 1
    write(tmp_path, "toy.user", "user_id:token\traw_id:token\nu1\tx\n")
    with pytest.raises(DataError, match=r"toy.user: field 'raw_id' has a name the harness reserves"):
        load_atomic(tmp_path, "toy")
