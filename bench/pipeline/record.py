"""The run record (run.json): config, seed, data fingerprint, code version, timings, statistics, metrics."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import IO, Callable

import numpy as np

from bench.config import PROJECT_ROOT


def data_fingerprint(files: list[Path]) -> str:
    """sha256 over the names and bytes of the data files (content-derived, independent of file times)."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# Code that reads results but never makes one: edits here must not invalidate the stage cache or finished records
# (a report-only edit used to make a running sweep retrain its cached bases). Their own effect on a run, if any,
# is through the config, which the cache keys and the resume check compare whole (tuning's applied values).
DIGEST_EXCLUDED = ("bench/report", "bench/perf", "bench/tuning", "bench/tracking")


def digested_files(root: Path) -> list[Path]:
    """The .py files whose bytes make the code digest: bench/ and models/, less DIGEST_EXCLUDED."""
    files = []
    for package in ("bench", "models"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if not any(rel == d or rel.startswith(d + "/") for d in DIGEST_EXCLUDED):
                files.append(path)
    return files


def code_text(path: Path) -> bytes:
    """What of a module can change a result: its syntax tree without docstrings (comments and layout are not in
    it), so editing a docstring, a comment or the formatting leaves the digest as it was."""
    tree = ast.parse(path.read_bytes())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False).encode()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the paths and syntax trees (code_text) of the code that makes a result (digested_files):
    what cache keys and resumed runs compare, so any edit of that code's statements (committed or not)
    changes it, and an edit of a docstring or comment there, of the report, the perf sections or the tuning
    front end does not."""
    h = hashlib.sha256()
    for path in digested_files(PROJECT_ROOT):
        h.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + code_text(path) + b"\0")
    return h.hexdigest()


CODE_PACKAGES = ("bench", "models")  # the code a result depends on; docs, README and results/ edits do not count


def code_version() -> dict[str, str | bool | list[str] | None]:
    """The git commit of the project, whether the code packages (bench/, models/) differ from it, and which
    of their files do (modified or new: a record made with uncommitted code says so, PROTOCOL 5), and the code
    digest. Edits elsewhere (README, docs, a sweep rewriting records under results/) leave it clean."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.rstrip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=all", "--", *CODE_PACKAGES)
    paths = None if status is None else sorted({line[3:] for line in status.splitlines()
                                                if line[3:].endswith(".py")})
    return {"git_commit": commit, "dirty": bool(paths) if paths is not None else None,
            "dirty_paths": paths, "code_digest": code_digest()}


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str | None], ...]:
    versions: list[tuple[str, str | None]] = [("python", platform.python_version())]
    for name in ("torch", "recbole", "faiss-cpu", "numpy", "pandas", "scipy", "hydra-core"):
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    return tuple(versions)


def package_versions() -> dict[str, str | None]:
    """Versions of python and the packages whose changes can change a result (cache keys, resume)."""
    return dict(_package_versions())


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call `write(file)` on a temporary file in the same folder, fsync it, then rename it to `path`:
    a reader sees the old file or the whole new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(obj: dict, path: Path) -> Path:
    """A run record as JSON (NaN refused), written atomically."""
    def dump(f: IO) -> None:
        json.dump(obj, f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")

    return write_atomic(path, dump)


def write_npz_atomic(path: Path, arrays: dict, compressed: bool = False) -> Path:
    """Arrays as .npz, written atomically; `compressed` (zip deflate) for files meant to be committed, such as a
    table's per-request values (np.load reads either)."""
    save = np.savez_compressed if compressed else np.savez
    return write_atomic(path, lambda f: save(f, **arrays), binary=True)
