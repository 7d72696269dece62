"""Writing the three CSV files: the feature tables, then the log day by day (activity spread over
users and days, _day_events per day, duplicates, the logged date/hourmin), into a temporary
directory renamed into place (_install, _check_replaceable); the public entry points generate,
ensure_generated (the cache), cache_path and is_complete."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.synthetic._util import MIN_MS, N_TABS
from bench.data.synthetic.events import _day_events
from bench.data.synthetic.presets import (
    GENERATOR_VERSION,
    LOG_COLUMNS,
    PRESETS,
    USER_COLUMNS,
    USER_FILE,
    VIDEO_COLUMNS,
    VIDEO_FILE,
    SyntheticPreset,
    UnknownPresetError,
    get_preset,
)
from bench.data.synthetic.world import _build_world, _World

TZ_MS = 8 * 3_600_000  # Beijing is UTC+8
DAY_MS = 86_400_000

# ---------------------------------------------------------------------------------------------
# Fixed shapes borrowed (approximately) from the real log

# Duplicates: relative chance that a row of each tab is the one duplicated.
DUP_TAB_WEIGHT = np.full(N_TABS, 1e-4)
DUP_TAB_WEIGHT[[6, 5, 0]] = [1.0, 0.6, 0.004]
LOG_DELAY_MIN = (10.5, 3.0)  # the `date`/`hourmin` logging time runs this far (mean, sd) after time_ms


# ---------------------------------------------------------------------------------------------
# The log


def _take(ev: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in ev.items()}


def _write_log(p: SyntheticPreset, w: _World, rng: np.random.Generator, path: Path, progress: bool) -> None:
    U, D = p.n_users, p.n_days
    first = p.first_day
    day0 = (first - dt.date(1970, 1, 1)).days  # Beijing day number of the first day
    period_start = day0 * DAY_MS - TZ_MS
    period_end = period_start + D * DAY_MS
    date_of_day = np.array([int((first + dt.timedelta(days=k)).strftime("%Y%m%d")) for k in range(-1, D + 1)])

    n_dup = int(round(p.duplicate_share * p.n_impressions))
    n0 = p.n_impressions - n_dup
    weekday = np.array([(first + dt.timedelta(days=k)).weekday() for k in range(D)])
    day_factor = (1.0 + 0.2 * (weekday >= 5)) * rng.lognormal(0.0, 0.05, D)
    active = rng.random((U, D)) < w.user_day_share[:, None]
    none = ~active.any(1)
    active[np.flatnonzero(none), rng.integers(0, D, int(none.sum()))] = True
    cell_w = (w.user_weight[:, None] * day_factor[None, :] * active).ravel()
    if cell_w.sum() <= 0:
        raise ValueError("synthetic preset has no active user")
    counts = rng.multinomial(n0, cell_w / cell_w.sum()).reshape(U, D)
    n_cells = int((counts > 0).sum())
    # One global probability that a further impression of a cell is main-feed, so that the tab-1
    # share is main_share overall (every active cell already holds one main-feed impression).
    # Duplicates are almost all outside the main feed, hence the target counts every row.
    main_p = float(np.clip((p.main_share * p.n_impressions - n_cells) / max(n0 - n_cells, 1), 0.0, 1.0))
    per_day = counts.sum(0)
    dup_per_day = rng.multinomial(n_dup, per_day / max(per_day.sum(), 1))

    carry: dict[str, np.ndarray] | None = None
    seq_base = 0
    header = True
    days = range(D)
    if progress:
        from tqdm.auto import tqdm

        days = tqdm(days, desc=f"synthetic log {path.name}", unit="day")
    with open(path, "w", newline="") as fh:
        for d in days:
            col = counts[:, d]
            users = np.flatnonzero(col > 0)
            day_start = period_start + d * DAY_MS
            ev = _day_events(p, w, rng, users, col[users], main_p, day_start, d == D - 1, period_end)
            n_ev = len(ev["user_id"])
            ev["seq"] = seq_base + np.arange(n_ev, dtype=np.int64)
            seq_base += n_ev
            if dup_per_day[d]:
                keys = np.log(DUP_TAB_WEIGHT[ev["tab"]]) + rng.gumbel(size=n_ev)
                dup = np.argpartition(-keys, dup_per_day[d] - 1)[: dup_per_day[d]]
                ev = _take(ev, np.concatenate([np.arange(n_ev), np.sort(dup)]))
            if carry is not None:
                ev = {k: np.concatenate([carry[k], ev[k]]) for k in ev}
            order = np.lexsort((ev["seq"], ev["time_ms"]))
            ev = _take(ev, order)
            cut = len(order) if d == D - 1 else int(np.searchsorted(ev["time_ms"], day_start + DAY_MS, side="left"))
            carry = _take(ev, np.arange(cut, len(order)))
            out = _take(ev, np.arange(cut))
            _write_log_chunk(out, rng, fh, header, date_of_day, day0, D)
            header = False
        if header:  # no day at all: still write the header
            fh.write(",".join(LOG_COLUMNS) + "\n")


def _write_log_chunk(ev: dict[str, np.ndarray], rng: np.random.Generator, fh, header: bool,
                     date_of_day: np.ndarray, day0: int, n_days: int) -> None:
    t = ev["time_ms"]
    # The logged hour runs a few minutes behind time_ms (drawn per distinct event: duplicates agree).
    first = np.r_[True, (ev["seq"][1:] != ev["seq"][:-1])]
    lag = np.maximum(0.0, rng.normal(LOG_DELAY_MIN[0], LOG_DELAY_MIN[1], int(first.sum()))) * MIN_MS
    lag = lag[np.cumsum(first) - 1]
    hours = (t + TZ_MS) // 3_600_000
    logged = (t + lag.astype(np.int64) + TZ_MS) // 3_600_000
    logged = np.where(logged // 24 - day0 >= n_days, hours, logged)  # never past the last day
    frame = pd.DataFrame({c: ev[c] for c in LOG_COLUMNS if c in ev})
    frame.insert(2, "date", date_of_day[logged // 24 - day0 + 1])
    frame.insert(3, "hourmin", (logged % 24) * 100)
    frame = frame[list(LOG_COLUMNS)]
    frame.to_csv(fh, header=header, index=False, lineterminator="\n")


# ---------------------------------------------------------------------------------------------
# Public entry points


def _install(tmp: Path, out_dir: Path, *, replace_existing: bool) -> bool:
    """Rename the finished temporary directory to out_dir; False if another writer got there first.

    With replace_existing, an existing out_dir is first renamed aside (and put back if the final
    rename fails), then deleted.
    """
    if replace_existing and out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not out_dir.exists():
                os.rename(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return True
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if out_dir.is_dir():
            return False
        raise
    return True


_OWN_FILE = re.compile(
    r"^(log_standard_\d+_\d+_to_\d+_\d+_synth\.csv|user_features_synth\.csv|video_features_basic_synth\.csv)$"
)


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a directory that holds anything but synthetic dataset files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a directory")
    foreign = sorted(f.name for f in out_dir.iterdir() if not _OWN_FILE.match(f.name))
    if foreign:
        raise FileExistsError(f"{out_dir}: holds files the generator did not write ({', '.join(foreign[:3])}); "
                              "choose an empty or new directory")


def _generate(p: SyntheticPreset, seed: int, out_dir: Path, progress: bool, replace_existing: bool) -> Path:
    out_dir = Path(out_dir)
    if replace_existing:
        _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)
        rng = np.random.default_rng(seed)
        world = _build_world(p, rng)
        world.videos[list(VIDEO_COLUMNS)].to_csv(tmp / VIDEO_FILE, index=False, lineterminator="\n")
        world.users[list(USER_COLUMNS)].to_csv(tmp / USER_FILE, index=False, lineterminator="\n")
        world.videos = world.users = None  # free the feature tables before the log
        _write_log(p, world, rng, tmp / p.log_file, progress)
        del world
        _install(tmp, out_dir, replace_existing=replace_existing)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def generate(preset: str | SyntheticPreset, seed: int, out_dir: Path, progress: bool = False) -> Path:
    """Write the three KuaiRand-schema files of `preset` (a name or a SyntheticPreset) into `out_dir`.

    The files are built in a temporary sibling directory and renamed into place, so `out_dir` either
    holds a complete dataset or is left as it was. An existing `out_dir` is replaced when it holds
    only synthetic dataset files (FileExistsError otherwise). Returns out_dir.
    """
    return _generate(get_preset(preset), int(seed), Path(out_dir), progress, replace_existing=True)


def cache_path(preset: str, seed: int, cache_dir: Path) -> Path:
    """Where ensure_generated keeps (preset, seed): `<cache_dir>/<preset>-seed<seed>-v<GENERATOR_VERSION>`."""
    get_preset(preset)
    return Path(cache_dir) / f"{preset}-seed{int(seed)}-v{GENERATOR_VERSION}"


def is_complete(path: Path, preset: str | SyntheticPreset) -> bool:
    return all((Path(path) / name).is_file() for name in get_preset(preset).file_names)


def ensure_generated(preset: str, seed: int, cache_dir: Path, progress: bool = True) -> Path:
    """The cached dataset of (preset, seed), generated first if it is missing. Returns its directory."""
    p = get_preset(preset)
    if not isinstance(preset, str):
        raise UnknownPresetError(f"ensure_generated needs a preset name; valid presets: {', '.join(PRESETS)}")
    path = cache_path(preset, seed, cache_dir)
    if is_complete(path, p):
        return path
    replace_existing = path.exists()  # an incomplete directory someone left there
    _generate(p, int(seed), path, progress, replace_existing=replace_existing)
    return path
