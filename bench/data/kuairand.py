"""Reader for the official KuaiRand files (Pure, 1K, 27K releases) and the synthetic files in their schema.

Point it at a directory (or its `data/` subfolder, the layout of the official archives). It finds:

- standard logs `log_standard_<M>_<D>_to_<M>_<D>_<release>[_partN].csv[.gz]` (27K ships `_part1` /
  `_part2` files), and the random-exposure logs `log_random_*` when `include_random` is set;
- `video_features_basic_<release>[_partN].csv[.gz]`, required: it defines the item pool;
- `user_features_<release>.csv[.gz]`, optional: profiles (all unknown when absent).

Quirks of the real files it survives (see the sample's own README): exact duplicate rows (dropped and
counted); `date` disagreeing with `time_ms` (only `time_ms` is read as time); out-of-range codes and
blanks in feature files (mapped to the unknown code 0); comma-separated `tag` lists (first tag kept).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from bench.data.schema import Dataset, encode_categories
from bench.errors import DataError

RELEASES = ("pure", "1k", "27k", "synth")
_REL = "|".join(RELEASES)
LOG_RE = re.compile(rf"^log_(standard|random)_\d+_\d+_to_\d+_\d+_({_REL})(_part\d+)?\.csv(\.gz)?$")
VIDEO_RE = re.compile(rf"^video_features_basic_({_REL})(_part\d+)?\.csv(\.gz)?$")
USER_RE = re.compile(rf"^user_features_({_REL})\.csv(\.gz)?$")

# Every column of the official standard / random logs, with the dtype it is read as.
LOG_DTYPES: dict[str, str] = {
    "user_id": "int64",
    "video_id": "int64",
    "date": "int64",
    "hourmin": "int64",
    "time_ms": "int64",
    "is_click": "int64",
    "is_like": "int64",
    "is_follow": "int64",
    "is_comment": "int64",
    "is_forward": "int64",
    "is_hate": "int64",
    "long_view": "int64",
    "play_time_ms": "int64",
    "duration_ms": "int64",
    "profile_stay_time": "int64",
    "comment_stay_time": "int64",
    "is_profile_enter": "int64",
    "is_rand": "int64",
    "tab": "int64",
}
LABEL_COLUMNS = ("is_click", "is_like", "is_follow", "is_comment", "is_forward", "is_hate", "long_view", "is_profile_enter")
N_TABS = 15  # KuaiRand scenarios 0..14

# Item side features: (output name, source column, numeric?)
ITEM_FEATURES = (
    ("author", "author_id", True),
    ("video_type", "video_type", False),
    ("upload_type", "upload_type", False),
    ("music_type", "music_type", True),
    ("tag", "tag", True),  # first tag of the comma-separated list
)
DURATION_EDGES_S = (7, 15, 30, 60, 120, 300, 600)  # duration buckets 1..8 (0 = unknown), seconds
PROFILE_FEATURES = (
    ("user_active_degree", False),
    ("is_live_streamer", True),
    ("is_video_author", True),
    ("follow_user_num_range", False),
    ("fans_user_num_range", False),
    ("friend_user_num_range", False),
    ("register_days_range", False),
    *((f"onehot_feat{k}", True) for k in range(18)),
)
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class KuaiRandFiles:
    """The files found in a KuaiRand directory."""

    release: str
    logs: tuple[Path, ...]
    videos: tuple[Path, ...]
    users: Path | None


def _candidates(root: Path) -> list[Path]:
    """The files of `root`, or of `root/data` (the official archives' layout) when `root` holds no
    KuaiRand log itself; never both, so a copy in each is not read twice."""
    own = sorted(p for p in root.iterdir() if p.is_file())
    data = root / "data"
    if any(LOG_RE.match(p.name) for p in own) or not data.is_dir():
        return own
    return sorted(p for p in data.iterdir() if p.is_file())


def _prefer_plain(paths: list[Path]) -> list[Path]:
    """Drop `x.csv.gz` when `x.csv` is also present (an unpacked copy beside its archive)."""
    plain = {p.name for p in paths if p.suffix == ".csv"}
    return [p for p in paths if not (p.suffix == ".gz" and p.name[:-3] in plain)]


def find_files(root: str | Path, *, include_random: bool = False, release: str | None = None) -> KuaiRandFiles:
    """Locate the official-named files under `root`; one-line DataError when something is missing."""
    root = Path(root).expanduser()
    if release is not None and release not in RELEASES:
        raise DataError(f"dataset.release={release!r} is not a KuaiRand release; choose one of {list(RELEASES)}")
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    files = _candidates(root)
    logs = [p for p in files if (m := LOG_RE.match(p.name)) and (include_random or m.group(1) == "standard")]
    videos = [p for p in files if VIDEO_RE.match(p.name)]
    found = {LOG_RE.match(p.name).group(2) for p in logs} | {VIDEO_RE.match(p.name).group(1) for p in videos}
    if release is None:
        if len(found) > 1:
            raise DataError(f"{root}: files of several releases {sorted(found)}; set dataset.release to one of them")
        release = next(iter(found), None)
    if release not in RELEASES:
        raise DataError(f"{root}: no KuaiRand log found (expected log_standard_<M>_<D>_to_<M>_<D>_<{_REL}>.csv[.gz])")
    logs = _prefer_plain([p for p in logs if LOG_RE.match(p.name).group(2) == release])
    videos = _prefer_plain([p for p in videos if VIDEO_RE.match(p.name).group(1) == release])
    if not logs:
        raise DataError(f"{root}: no log_standard_*_{release}.csv[.gz] file found")
    if not videos:
        raise DataError(f"{root}: video_features_basic_{release}.csv[.gz] not found (it defines the item pool)")
    users = _prefer_plain([p for p in files if (m := USER_RE.match(p.name)) and m.group(1) == release])
    return KuaiRandFiles(release, tuple(logs), tuple(videos), users[0] if users else None)


def _read_csv(path: Path, **kwargs) -> pd.DataFrame | pd.io.parsers.TextFileReader:
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({_one_line(exc)})") from None
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {_one_line(exc)}); is it truncated or corrupt?") from None


def _one_line(exc: BaseException) -> str:
    """An exception's message folded onto one line (pandas' parser messages end in a newline)."""
    return " ".join(str(exc).split())


def _header(path: Path) -> list[str]:
    return list(_read_csv(path, nrows=0).columns)


def _require(path: Path, header: list[str], columns: list[str]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r}" + (f" (and {missing[1:]})" if missing[1:] else ""))


def _bad_value(path: Path, chunk_start: int, nrows: int, columns: list[str]) -> tuple[str, int, str | None]:
    """The first cell of a chunk that is not an int64 value: (column, 1-based data row, raw text);
    when no single cell can be blamed, the chunk's first column and row, and None."""
    raw = _read_csv(path, usecols=columns, skiprows=range(1, chunk_start + 1), nrows=nrows, dtype=str,
                    keep_default_na=False)
    first: tuple[int, str] | None = None
    for col in columns:
        num = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(num) | (num != np.floor(num)) | (np.abs(num) >= 2.0**63)
        if bad.any() and (first is None or np.flatnonzero(bad)[0] < first[0]):
            first = (int(np.flatnonzero(bad)[0]), col)
    if first is None:
        return columns[0], chunk_start + 1, None
    row, col = first
    return col, chunk_start + row + 1, str(raw[col].iloc[row])


def _describe(value: str) -> str:
    return "a blank" if not value.strip() else f"a non-integer value {value[:40]!r}"


def read_logs(files: tuple[Path, ...], label: str, progress: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read the logs in chunks with explicit dtypes; drop exact duplicate rows across all files.

    Rows are compared on every column through a 64-bit row hash, so memory holds only the five
    columns later stages need. Returns a frame with user_id, video_id, time_ms, tab, positive and
    the counts {log_rows, log_duplicates}.
    """
    keep = ["user_id", "video_id", "time_ms", "tab", label]
    parts, hashes = [], []
    rows = 0
    for path in files:
        header = _header(path)
        _require(path, header, keep)
        dtypes = {c: LOG_DTYPES.get(c, "float64") for c in header if c in LOG_DTYPES}
        reader = _read_csv(path, dtype=dtypes, chunksize=CHUNK_ROWS)
        start = 0
        bar = tqdm(desc=f"read {path.name}", unit=" rows", unit_scale=True, disable=None if progress else True, leave=False)
        try:
            while True:
                try:
                    chunk = next(reader)
                except StopIteration:
                    break
                except pd.errors.ParserError as exc:
                    raise DataError(f"{path}: malformed CSV ({_one_line(exc)})") from None
                except (EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
                    raise DataError(f"{path}: cannot be read ({type(exc).__name__}); is it truncated or corrupt?") from None
                except (ValueError, OverflowError):  # a cell pandas cannot read as int64
                    col, row, value = _bad_value(path, start, CHUNK_ROWS, [c for c in header if c in LOG_DTYPES])
                    if value is None:
                        raise DataError(f"{path}: a value in data rows {row}..{row + CHUNK_ROWS - 1} "
                                        "cannot be read as a 64-bit integer") from None
                    raise DataError(f"{path}: column {col!r} holds {_describe(value)} (data row {row})") from None
                _check_log_chunk(path, chunk, label, start)
                hashes.append(pd.util.hash_pandas_object(chunk, index=False).to_numpy())
                parts.append(_narrow(chunk[keep]))
                start += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
        if start == 0:
            raise DataError(f"{path}: file has a header but no rows")
        rows += start
    log = pd.concat(parts, ignore_index=True)
    dup = pd.Series(np.concatenate(hashes)).duplicated().to_numpy()
    log = log.loc[~dup].reset_index(drop=True)
    log["positive"] = log.pop(label).to_numpy() == 1
    return log, {"log_rows": rows, "log_duplicates": int(dup.sum())}


def _narrow(frame: pd.DataFrame) -> pd.DataFrame:
    """The kept log columns in the smallest exact dtypes, so memory per row stays small on big logs."""
    out = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        if col == "time_ms":
            out[col] = values
        elif col == "tab":
            out[col] = values.astype(np.int16)
        elif col in ("user_id", "video_id"):
            out[col] = values.astype(np.int32) if (len(values) == 0 or values.max() < 2**31) else values
        else:  # the 0/1 label
            out[col] = values.astype(np.int8)
    return pd.DataFrame(out)


def _check_log_chunk(path: Path, chunk: pd.DataFrame, label: str, start: int) -> None:
    def fail(col: str, what: str, mask: np.ndarray) -> None:
        row = start + int(np.flatnonzero(mask)[0]) + 1
        raise DataError(f"{path}: column {col!r} {what} (data row {row})")

    for col in ("user_id", "video_id", "time_ms"):
        bad = chunk[col].to_numpy() < 0
        if bad.any():
            fail(col, "holds a negative value", bad)
    tab = chunk["tab"].to_numpy()
    bad = (tab < 0) | (tab >= N_TABS)
    if bad.any():
        fail("tab", f"holds a scenario outside 0..{N_TABS - 1}", bad)
    lab = chunk[label].to_numpy()
    bad = (lab != 0) & (lab != 1)
    if bad.any():
        fail(label, "holds a label other than 0 or 1", bad)


def read_items(files: tuple[Path, ...]) -> pd.DataFrame:
    """The item pool: one row per distinct video_id, side features as codes (0 = unknown)."""
    frames = []
    for path in files:
        header = _header(path)
        _require(path, header, ["video_id"] + [src for _, src, _ in ITEM_FEATURES] + ["video_duration"])
        # Numeric columns are read as text and converted here, so that a stray word is a clear error
        # (video_id) or the unknown code (features) rather than a pandas traceback.
        frame = _read_csv(path, dtype={"video_id": str, "author_id": str, "video_type": "string",
                                       "upload_type": "string", "music_type": str, "tag": "string",
                                       "video_duration": str},
                          usecols=["video_id", "author_id", "video_type", "upload_type", "music_type", "tag", "video_duration"])
        for col in ("video_id", "author_id", "music_type", "video_duration"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        ids = frame["video_id"].to_numpy()
        bad = np.isnan(ids) | (ids < 0) | (ids != np.floor(ids))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: column 'video_id' holds a blank, negative or non-integer id (data row {row + 1})")
        frames.append(frame)
    raw = pd.concat(frames, ignore_index=True).drop_duplicates("video_id").sort_values("video_id", kind="stable")
    if raw.empty:
        raise DataError(f"{files[0]}: no items")
    raw["tag"] = raw["tag"].str.split(",", n=1).str[0]
    items = pd.DataFrame({"raw_id": raw["video_id"].to_numpy(dtype=np.int64)})
    for name, src, numeric in ITEM_FEATURES:
        items[name] = encode_categories(raw[src].reset_index(drop=True), numeric=numeric)
    seconds = raw["video_duration"].to_numpy() / 1000.0
    bucket = np.searchsorted(np.asarray(DURATION_EDGES_S, dtype=float), seconds, side="right") + 1
    items["duration_bucket"] = np.where(np.isnan(seconds), 0, bucket).astype(np.int32)
    return items


def read_users(path: Path | None, raw_ids: np.ndarray) -> pd.DataFrame:
    """Profiles of the given users (in that order): categorical codes, 0 = unknown or absent."""
    users = pd.DataFrame({"raw_id": raw_ids.astype(np.int64)})
    names = [name for name, _ in PROFILE_FEATURES]
    if path is None:
        for name in names:
            users[name] = np.zeros(len(users), dtype=np.int32)
        return users
    header = _header(path)
    _require(path, header, ["user_id"])
    present = [(n, num) for n, num in PROFILE_FEATURES if n in header]
    raw = _read_csv(path, usecols=["user_id"] + [n for n, _ in present], dtype={n: "string" for n, _ in present})
    raw = raw.dropna(subset=["user_id"])
    ids = pd.to_numeric(raw["user_id"], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(ids) | (ids != np.floor(ids))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value, row = str(raw["user_id"].iloc[first]), int(raw.index[first]) + 1
        raise DataError(f"{path}: column 'user_id' holds {_describe(value)} (data row {row})")
    raw = raw.assign(user_id=ids.astype(np.int64)).drop_duplicates("user_id")
    position = pd.Index(raw["user_id"].to_numpy(dtype=np.int64)).get_indexer(users["raw_id"].to_numpy())
    for name, numeric in PROFILE_FEATURES:
        codes = encode_categories(raw[name], numeric=numeric) if name in raw else np.zeros(len(raw), dtype=np.int32)
        users[name] = np.where(position >= 0, codes[np.maximum(position, 0)] if len(codes) else 0, 0).astype(np.int32)
    return users


def load_kuairand(
    root: str | Path,
    *,
    label: str = "is_click",
    include_random: bool = False,
    release: str | None = None,
    unknown_items: str = "drop",
    name: str = "kuairand",
    progress: bool = True,
) -> Dataset:
    """Read a KuaiRand directory into the normalised Dataset (see bench.data.schema)."""
    if label not in LABEL_COLUMNS:
        raise DataError(f"dataset.label={label!r} is not a KuaiRand label column; choose one of {list(LABEL_COLUMNS)}")
    if unknown_items not in ("drop", "add"):
        raise DataError(f"dataset.unknown_items={unknown_items!r}; choose 'drop' or 'add'")
    found = find_files(root, include_random=include_random, release=release)
    log, stats = read_logs(found.logs, label, progress)
    items = read_items(found.videos)

    item_index = pd.Index(items["raw_id"].to_numpy())
    item_code = item_index.get_indexer(log["video_id"].to_numpy())
    unknown = item_code < 0
    stats["log_rows_unknown_item"] = int(unknown.sum())
    if unknown.any() and unknown_items == "add":
        extra = np.unique(log["video_id"].to_numpy()[unknown])
        items = pd.concat([items, pd.DataFrame({"raw_id": extra})], ignore_index=True).fillna(0)
        items = items.astype({c: np.int32 for c in items.columns if c != "raw_id"})
        item_code = pd.Index(items["raw_id"].to_numpy()).get_indexer(log["video_id"].to_numpy())
        unknown[:] = False
    log = log.loc[~unknown]
    item_code = item_code[~unknown]

    user_raw, user_code = np.unique(log["user_id"].to_numpy(), return_inverse=True)
    users = read_users(found.users, user_raw)
    out = pd.DataFrame(
        {
            "user": user_code.astype(np.int32),
            "item": item_code.astype(np.int32),
            "time_ms": log["time_ms"].to_numpy(dtype=np.int64),
            "tab": log["tab"].to_numpy(dtype=np.int16),
            "positive": log["positive"].to_numpy(dtype=bool),
        }
    )
    order = np.lexsort((out["time_ms"].to_numpy(), out["user"].to_numpy()))  # stable: ties keep file order
    out = out.iloc[order].reset_index(drop=True)
    stats.update(
        log_rows_kept=len(out),
        users=len(users),
        items=len(items),
        positives=int(out["positive"].sum()),
    )
    files = [*found.logs, *found.videos] + ([found.users] if found.users else [])  # as bench.data.dataset_files
    return Dataset(name=name, log=out, items=items, users=users, stats=stats, files=files)
