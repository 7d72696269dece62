"""RecBole atomic files (NAME.inter, optional NAME.item and NAME.user) into the normalised Dataset.

Format (RecBole's documentation, "Atomic Files"): tab-separated text whose header cells are
`field:type`, type one of token, token_seq, float, float_seq; a token_seq cell holds
space-separated tokens; an empty cell is a missing value. ml-100k as RecBole ships it:
    ml-100k.inter  user_id:token  item_id:token  rating:float  timestamp:float
    ml-100k.item   item_id:token  movie_title:token_seq  release_year:token  class:token_seq
    ml-100k.user   user_id:token  age:token  gender:token  occupation:token  zip_code:token

Mapping: every interaction is one impression in a single scenario (tab 1) at timestamp x 1000 ms;
it is positive when `min_rating` is null (RecBole's default for sequential models: every
interaction counts) or rating >= min_rating. Item and user token fields become categorical codes
(0 = missing), a token_seq field its first token; float fields are not used as features. Rows
identical in every field are dropped and counted, as for KuaiRand (RecBole keeps them). A UTF-8
byte-order mark is ignored. Errors are one line naming the file, the
field and the data row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.schema import Dataset, encode_categories
from bench.errors import DataError

TYPES = ("token", "token_seq", "float", "float_seq")
FEATURE_TYPES = ("token", "token_seq")


@dataclass(frozen=True)
class AtomicFiles:
    inter: Path
    item: Path | None
    user: Path | None

    @property
    def all(self) -> list[Path]:
        return [p for p in (self.inter, self.item, self.user) if p is not None]


def find_atomic_files(root: str | Path, name: str) -> AtomicFiles:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    inter = root / f"{name}.inter"
    if not inter.is_file():
        found = sorted(p.name for p in root.glob("*.inter"))
        hint = f"; found {found}: set dataset.name to the part before .inter" if found else ""
        raise DataError(f"{inter}: file not found (RecBole atomic files are NAME.inter, NAME.item, NAME.user){hint}")
    item, user = root / f"{name}.item", root / f"{name}.user"
    return AtomicFiles(inter, item if item.is_file() else None, user if user.is_file() else None)


def read_header(path: Path) -> dict[str, str]:
    """{field: type} from the `field:type` header of an atomic file."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of the first field
            line = f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__})") from None
    if not line:
        raise DataError(f"{path}: file is empty")
    fields: dict[str, str] = {}
    for cell in line.split("\t"):
        name, sep, kind = cell.rpartition(":")
        if not sep or not name or kind not in TYPES:
            raise DataError(f"{path}: header cell {cell!r} is not field:type with a type in {list(TYPES)}")
        fields[name] = kind
    return fields


def _read(path: Path, fields: dict[str, str], usecols: list[str]) -> pd.DataFrame:
    names = [f"{f}:{fields[f]}" for f in usecols]
    try:
        frame = pd.read_csv(path, sep="\t", usecols=names, dtype=str, keep_default_na=False, quoting=3,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: malformed atomic file ({' '.join(str(exc).split())})") from None
    frame = frame[names]  # pandas keeps the file's column order: put them in the order asked for
    frame.columns = usecols
    if frame.empty:
        raise DataError(f"{path}: file has a header but no rows")
    return frame


def _floats(path: Path, frame: pd.DataFrame, field: str) -> np.ndarray:
    values = pd.to_numeric(frame[field], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: field '{field}' holds {frame[field].iloc[row]!r}, not a number (data row {row + 1})")
    return values


def _require(path: Path, fields: dict[str, str], required: dict[str, tuple[str, ...]]) -> None:
    for field, kinds in required.items():
        if field not in fields:
            raise DataError(f"{path}: missing field '{field}' (header has {list(fields)})")
        if fields[field] not in kinds:
            raise DataError(f"{path}: field '{field}' is {fields[field]}, expected {' or '.join(kinds)}")


RESERVED = ("raw_id", "no_feature")  # column names the Dataset uses itself


def _features(frame: pd.DataFrame, fields: dict[str, str], key: str, path: Path) -> pd.DataFrame:
    """Categorical codes of every token / token_seq field but the key (token_seq: its first token)."""
    out = {}
    for field, kind in fields.items():
        if field == key or kind not in FEATURE_TYPES or field not in frame:
            continue
        if field in RESERVED:
            raise DataError(f"{path}: field '{field}' has a name the harness reserves ({list(RESERVED)}); rename it")
        text = frame[field] if kind == "token" else frame[field].str.split(" ", n=1).str[0]
        out[field] = encode_categories(text.reset_index(drop=True), numeric=False)
    return pd.DataFrame(out)


def load_atomic(root: str | Path, name: str, *, min_rating: float | None = None, unknown_items: str = "drop",
                dataset_name: str | None = None) -> Dataset:
    """Read NAME.inter (+ NAME.item, NAME.user) from `root` into the normalised Dataset."""
    if unknown_items not in ("drop", "add"):
        raise DataError(f"dataset.unknown_items={unknown_items!r}; choose 'drop' or 'add'")
    files = find_atomic_files(root, name)
    fields = read_header(files.inter)
    required = {"user_id": ("token",), "item_id": ("token",), "timestamp": ("float",)}
    if min_rating is not None:
        required["rating"] = ("float",)
    _require(files.inter, fields, required)
    inter = _read(files.inter, fields, list(fields))  # every field: duplicates are judged on whole rows
    for field in ("user_id", "item_id"):
        blank = (inter[field] == "").to_numpy()
        if blank.any():
            raise DataError(f"{files.inter}: field '{field}' is blank (data row {int(np.flatnonzero(blank)[0]) + 1})")
    time_ms = np.round(_floats(files.inter, inter, "timestamp") * 1000).astype(np.int64)  # row numbers: file rows
    positive = np.ones(len(inter), dtype=bool)
    if min_rating is not None:
        positive = _floats(files.inter, inter, "rating") >= float(min_rating)
    stats: dict[str, int | float] = {"log_rows": len(inter)}
    dup = inter.duplicated().to_numpy()
    stats["log_duplicates"] = int(dup.sum())
    inter, time_ms, positive = inter.loc[~dup].reset_index(drop=True), time_ms[~dup], positive[~dup]

    if files.item is not None:
        item_fields = read_header(files.item)
        _require(files.item, item_fields, {"item_id": ("token",)})
        raw_items = _read(files.item, item_fields, list(item_fields)).drop_duplicates("item_id")
        raw_items = raw_items.loc[raw_items["item_id"] != ""].sort_values("item_id", kind="stable")
    else:
        item_fields = {"item_id": "token"}
        raw_items = pd.DataFrame({"item_id": np.sort(inter["item_id"].unique())})
    item_code = pd.Index(raw_items["item_id"].to_numpy()).get_indexer(inter["item_id"].to_numpy())
    unknown = item_code < 0
    stats["log_rows_unknown_item"] = int(unknown.sum())
    if unknown.any() and unknown_items == "add":
        extra = pd.DataFrame({"item_id": np.sort(inter["item_id"].to_numpy()[unknown].astype(str))}).drop_duplicates()
        raw_items = pd.concat([raw_items, extra], ignore_index=True).fillna("")
        item_code = pd.Index(raw_items["item_id"].to_numpy()).get_indexer(inter["item_id"].to_numpy())
        unknown[:] = False
    items = pd.concat([pd.DataFrame({"raw_id": raw_items["item_id"].to_numpy().astype(str)}),
                       _features(raw_items, item_fields, "item_id", files.item or files.inter)], axis=1)

    keep = ~unknown
    user_raw, user_code = np.unique(inter["user_id"].to_numpy()[keep].astype(str), return_inverse=True)
    users = pd.DataFrame({"raw_id": user_raw})
    if files.user is not None:
        user_fields = read_header(files.user)
        _require(files.user, user_fields, {"user_id": ("token",)})
        raw_users = _read(files.user, user_fields, list(user_fields)).drop_duplicates("user_id").reset_index(drop=True)
        codes = _features(raw_users, user_fields, "user_id", files.user)
        position = pd.Index(raw_users["user_id"].to_numpy()).get_indexer(user_raw)
        for col in codes.columns:
            users[col] = np.where(position >= 0, codes[col].to_numpy()[np.maximum(position, 0)], 0).astype(np.int32)

    for frame in (items, users):  # towers expect at least one feature column: a constant "unknown" one
        if len(frame.columns) == 1:
            frame["no_feature"] = np.zeros(len(frame), dtype=np.int32)

    log = pd.DataFrame({"user": user_code.astype(np.int32), "item": item_code[keep].astype(np.int32),
                        "time_ms": time_ms[keep], "tab": np.ones(int(keep.sum()), dtype=np.int16),
                        "positive": positive[keep]})
    order = np.lexsort((log["time_ms"].to_numpy(), log["user"].to_numpy()))
    log = log.iloc[order].reset_index(drop=True)
    stats.update(log_rows_kept=len(log), users=len(users), items=len(items), positives=int(log["positive"].sum()))
    return Dataset(name=dataset_name or name, log=log, items=items, users=users, stats=stats, files=files.all)
