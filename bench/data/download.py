"""Downloads of the full KuaiRand releases (issue 43, item 1): `python -m bench.data download {pure,1k,27k}`.

The archives are Zenodo record 10439422 (https://zenodo.org/records/10439422), with the md5 sums the official
KuaiRand README gives (https://github.com/chongminggao/KuaiRand, also https://kuairand.com). pooch fetches an
archive into a temporary file, checks its md5 and only then moves it into place, so a truncated or corrupt
download never passes as complete; an archive already in place with the right md5 is used without any network.
Each archive unpacks to one folder, `KuaiRand-Pure/data/...` (resp. `KuaiRand-1K`, `KuaiRand-27K`), which
bench.data.kuairand.find_files reads as it is.

Where files go: `--dir DIR`, else `$BENCH_DATA_DIR`, else `pooch.os_cache("increc-bench")/kuairand`
(`${XDG_CACHE_HOME:-~/.cache}/increc-bench/kuairand` on Linux). `$BENCH_KUAIRAND_BASE_URL` replaces the Zenodo
folder URL (a mirror holding the same archives, or a test server).

Extraction is tarfile's own `data` filter (PEP 706), run over every member before anything is written, plus a
refusal of absolute names (which the filter would silently make relative): pooch 1.9's `Untar` applies that
filter only on Python 3.12+, so it is not used here. Members land in a temporary folder renamed into place at
the end, so a refused or interrupted extraction leaves no release folder behind.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pooch

from bench.errors import DataError

ZENODO_FILES = "https://zenodo.org/records/10439422/files"
BASE_URL_ENV = "BENCH_KUAIRAND_BASE_URL"
DIR_ENV = "BENCH_DATA_DIR"


@dataclass(frozen=True)
class Release:
    """One official archive: its folder (and name), md5 (official README) and sizes in bytes."""

    folder: str  # the archive is <folder>.tar.gz and unpacks to <folder>/data/
    md5: str
    size: int  # the archive
    unpacked: int | None  # once extracted; None where not known
    exact: bool = False  # `size` is exact (else an approximation, printed as "about")
    ask: bool = False  # confirm before downloading

    @property
    def archive(self) -> str:
        return f"{self.folder}.tar.gz"


# The single table of sizes: Pure's is the exact byte count users report; the others are approximate.
RELEASES: dict[str, Release] = {
    "pure": Release("KuaiRand-Pure", "0820331067a3784d9691136f772b35a7", 47_432_272, None, exact=True),
    "1k": Release("KuaiRand-1K", "6b0b9c8222d67fcd4c676218edca3f1f", 500_000_000, None),
    "27k": Release("KuaiRand-27K", "3e3c799a24e2d23a4d2c757fbf9adf59", 9_200_000_000, 46_000_000_000, ask=True),
}


def _size(n: int, exact: bool = False) -> str:
    text = f"{n / 1e9:.3g} GB" if n >= 1e9 else f"{n / 1e6:.3g} MB"
    return text if exact else f"about {text}"


def release_info(release: str) -> Release:
    """The table's row for `release`, or a one-line DataError listing the downloadable releases."""
    if release not in RELEASES:
        raise DataError(f"KuaiRand release {release!r} cannot be downloaded; choose one of {list(RELEASES)}")
    return RELEASES[release]


def cache_dir() -> Path:
    """pooch's per-user cache folder for the project, `kuairand/` inside it."""
    return Path(pooch.os_cache("increc-bench")) / "kuairand"


def default_dir() -> Path:
    """Where releases go without --dir: `$BENCH_DATA_DIR`, else cache_dir()."""
    env = os.environ.get(DIR_ENV)
    return Path(env).expanduser() if env else cache_dir()


def release_url(release: str) -> str:
    """The archive's URL on Zenodo, or under `$BENCH_KUAIRAND_BASE_URL` when that is set."""
    base = os.environ.get(BASE_URL_ENV) or ZENODO_FILES
    return f"{base.rstrip('/')}/{release_info(release).archive}?download=1"


def local_copy(release: str, *, fetch: bool = False, progress: bool = True) -> Path:
    """`dataset.root: null`: the downloaded copy of `release` in the default folder; downloaded first when
    `fetch` (`dataset.download: true`, which counts as the --yes answer), else a DataError with the command."""
    folder = default_dir() / release_info(release).folder
    if folder.is_dir():
        return folder
    if fetch:
        return download(release, yes=True, progress=progress)
    raise DataError(f"{folder}: KuaiRand {release} is not downloaded; run `python -m bench.data download {release}` "
                    f"(or set dataset.download=true, or dataset.root=DIR)")


def download(release: str, dir: str | Path | None = None, *, yes: bool = False, url: str | None = None,
             known_hash: str | None = None, progress: bool = True) -> Path:
    """Fetch (md5-checked) and unpack `release` into `dir`; the unpacked release folder. Nothing is fetched when
    that folder exists, nor when the archive is already in `dir` with the right md5. `url` / `known_hash`
    ("md5:<hex>") replace the table's, for a mirror or a test."""
    info = release_info(release)
    dir = Path(dir).expanduser() if dir is not None else default_dir()
    folder = dir / info.folder
    if folder.is_dir():
        return folder
    url = url or release_url(release)
    known_hash = known_hash or f"md5:{info.md5}"
    archive = dir / info.archive
    alg, _, digest = known_hash.partition(":")
    have = archive.is_file() and pooch.file_hash(str(archive), alg=alg) == digest.lower()
    _check_space(info, dir, have)
    if info.ask and not have and not yes:
        _confirm(info, dir)
    return extract(_fetch(url, known_hash, archive, progress), dir, info.folder)


def _check_space(info: Release, dir: Path, have_archive: bool) -> None:
    """Refuse when the disk holding `dir` lacks room for the archive (unless present) and the unpacked files."""
    need = (0 if have_archive else info.size) + (info.unpacked or 0)
    existing = next(p for p in (dir, *dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need:
        parts = ([] if have_archive else [f"archive {_size(info.size, info.exact)}"]) + (
            [f"{_size(info.unpacked)} unpacked"] if info.unpacked else [])
        needed = _size(need, info.exact and not info.unpacked)
        raise DataError(f"{dir}: not enough free space for {info.folder}: needs {needed} ({' + '.join(parts)}), "
                        f"{_size(free, True)} free")


def _confirm(info: Release, dir: Path) -> None:
    """Ask before a large download; refuse without a terminal to ask on (then --yes is the answer)."""
    what = f"{info.archive} ({_size(info.size, info.exact)}" + (
        f", {_size(info.unpacked)} unpacked)" if info.unpacked else ")")
    if not sys.stdin.isatty():
        raise DataError(f"{what}: stdin is not a terminal to confirm on; pass --yes to download it into {dir}")
    if input(f"Download {what} into {dir}? [y/N] ").strip().lower() not in ("y", "yes"):
        raise DataError(f"download of {info.archive} cancelled")


def _reason(exc: BaseException) -> str:
    """The useful end of a network error (requests nests the OS error in long wrapper messages)."""
    text = " ".join(str(exc).split())
    errno = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return f"{type(exc).__name__}: {errno.group(0).strip() if errno else text}"


def _fetch(url: str, known_hash: str, archive: Path, progress: bool) -> Path:
    """pooch.retrieve with its failures as one-line DataErrors; the archive's path."""
    digest = known_hash.partition(":")[2]
    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=archive.name, path=archive.parent,
                                   progressbar=progress))
    except ValueError as exc:  # pooch: the hash differs; it has deleted the download
        got = re.search(r"but got (\w+)", str(exc))
        raise DataError(f"{archive}: downloaded from {url} with md5 {got.group(1) if got else '?'}, expected "
                        f"{digest}; the download was deleted (corrupt, or the archive changed)") from None
    except OSError as exc:  # requests' errors are OSErrors: unreachable, refused, cut short
        raise DataError(f"cannot download {url} ({_reason(exc)}); nothing was kept. To fetch it by hand, save it as "
                        f"{archive} (md5 {digest}) and run the command again") from None


def _check_member(member: tarfile.TarInfo, dest: str) -> None:
    """Refuse a member that would land outside `dest`: absolute, `..`, a link leading out, a device file."""
    if member.name.startswith(("/", os.sep)) or os.path.isabs(member.name):
        raise tarfile.AbsolutePathError(member)
    tarfile.data_filter(member, dest)


def extract(archive: Path, dir: Path, folder: str) -> Path:
    """Unpack `archive`'s `folder/` into `dir/folder`, all or nothing; a DataError naming a refused member."""
    target = dir / folder
    partial = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".partial", dir=dir))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                try:
                    _check_member(member, str(partial))
                except tarfile.FilterError as exc:
                    raise DataError(f"{archive}: refused to extract {member.name!r} ({exc}); "
                                    "nothing was extracted") from None
            tar.extractall(partial, members=members, filter="data")
        if not (partial / folder).is_dir():
            raise DataError(f"{archive}: holds no {folder}/ folder (not an official KuaiRand archive?)")
        if not target.exists():  # another process may have finished first: its copy is the same archive's
            (partial / folder).rename(target)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # OSError: a bad gzip stream, a full disk
        raise DataError(f"{archive}: cannot be unpacked into {dir} ({_reason(exc)})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
