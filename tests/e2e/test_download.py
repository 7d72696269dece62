"""`python -m bench.data download` (bench.data.download, issue 43 item 1) against a real HTTP server on 127.0.0.1
serving a tarball of the real sample in the official layout (`KuaiRand-Pure/data/<files>`), whose md5 stands in for
the official one: the CLI fetch, a bad md5, a cut-short response, unsafe archive members, the offline error, an
archive fetched by hand, the 27K space check and question, `dataset.root: null` and one pipeline run on the copy."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
from functools import partial
from pathlib import Path

import pytest

import bench.data.download as dl
from bench.config import PROJECT_ROOT
from bench.data import dataset_root
from bench.errors import ConfigError, DataError
from bench.pipeline.validate import validate
from tests.conftest import compose_config

PURE = dl.RELEASES["pure"]
SHORT = "/short/"  # the server cuts a response under this prefix short of its Content-Length
# `python -m bench.data` (runpy, as -m runs it) with the registry's Pure md5 replaced by argv[1], the test tarball's
CLI = ("import dataclasses, runpy, sys, bench.data.download as d; "
       "d.RELEASES['pure'] = dataclasses.replace(d.RELEASES['pure'], md5=sys.argv.pop(1)); "
       "runpy.run_module('bench.data', run_name='__main__', alter_sys=True)")


class Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if not self.path.startswith(SHORT):
            return super().do_GET()
        body = Path(self.translate_path(self.path[len(SHORT) - 1:])).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


@pytest.fixture(scope="module")
def served(real_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding KuaiRand-Pure.tar.gz built from the real sample."""
    folder = tmp_path_factory.mktemp("served")
    with tarfile.open(folder / PURE.archive, "w:gz", compresslevel=1) as tar:
        for path in sorted(real_sample.glob("*.csv")):
            tar.add(path, f"{PURE.folder}/data/{path.name}")
    return folder


@pytest.fixture(scope="module")
def server(served: Path):
    """(base URL, the request paths seen so far) of a server on 127.0.0.1 for `served`."""
    seen: list[str] = []
    handler = type("Serve", (Handler,), {"requests": seen})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def md5(served: Path) -> str:
    return hashlib.md5((served / PURE.archive).read_bytes()).hexdigest()


@pytest.fixture
def test_md5(md5: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The registry's Pure md5 replaced by the test tarball's."""
    monkeypatch.setitem(dl.RELEASES, "pure", dataclasses.replace(PURE, md5=md5))
    return md5


@pytest.fixture(scope="module")
def closed_url() -> str:
    """A URL on a port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def downloaded(served: Path, md5: str, closed_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with Pure unpacked in it (from an archive placed by hand: no network)."""
    folder = tmp_path_factory.mktemp("data")
    (folder / PURE.archive).write_bytes((served / PURE.archive).read_bytes())
    dl.download("pure", folder, url=f"{closed_url}/x", known_hash=f"md5:{md5}", progress=False)
    return folder


def _cli(*args: str, md5: str, base_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, dl.BASE_URL_ENV: base_url}
    return subprocess.run([sys.executable, "-c", CLI, md5, *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_cli_downloads_and_unpacks_then_a_second_call_uses_no_network(server, md5: str, test_md5: str,
                                                                            tmp_path: Path) -> None:
    base, seen = server
    out = _cli("download", "pure", "--dir", str(tmp_path), md5=md5, base_url=base)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / PURE.folder
    assert out.stdout.strip().splitlines()[-1] == str(folder)
    assert sorted(p.name for p in (folder / "data").iterdir()) == sorted(
        p.name for p in (PROJECT_ROOT.parent / "shared" / "data" / "kuairand-pure-sample").glob("*.csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([PURE.archive, PURE.folder])  # no temporary left
    before = len(seen)
    assert dl.download("pure", tmp_path, url=base + "/nowhere") == folder
    assert len(seen) == before


def test_a_bad_md5_deletes_the_download_and_says_so(server, md5: str, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(dl.RELEASES, "pure", dataclasses.replace(PURE, md5="0" * 32))
    monkeypatch.setenv(dl.BASE_URL_ENV, server[0])
    with pytest.raises(DataError) as err:
        dl.download("pure", tmp_path, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and PURE.archive in msg and f"md5 {md5}" in msg and "expected " + "0" * 32 in msg
    assert "deleted" in msg
    assert list(tmp_path.iterdir()) == []


def test_a_cut_short_download_leaves_no_archive(server, test_md5: str, tmp_path: Path) -> None:
    url = f"{server[0]}{SHORT}{PURE.archive}"
    with pytest.raises(DataError) as err:
        dl.download("pure", tmp_path, url=url, progress=False)
    assert "\n" not in str(err.value) and url in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["dotdot", "absolute", "symlink", "hardlink"])
def test_an_archive_member_leaving_the_folder_is_refused_and_nothing_is_extracted(bad: str, tmp_path: Path,
                                                                                 closed_url: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    link = f"{PURE.folder}/data/link"
    name, kind = {"dotdot": ("../evil.txt", tarfile.REGTYPE), "absolute": (str(tmp_path / "evil.txt"), tarfile.REGTYPE),
                  "symlink": (link, tarfile.SYMTYPE), "hardlink": (link, tarfile.LNKTYPE)}[bad]
    with tarfile.open(data / PURE.archive, "w:gz") as tar:
        for member in (tarfile.TarInfo(f"{PURE.folder}/data/ok.csv"), tarfile.TarInfo(name)):  # a good one first
            if member.name == name and kind != tarfile.REGTYPE:
                member.type, member.linkname = kind, "../../../evil.txt"
                tar.addfile(member)
            else:
                member.size = 3
                tar.addfile(member, io.BytesIO(b"x,y"))
    md5 = hashlib.md5((data / PURE.archive).read_bytes()).hexdigest()
    with pytest.raises(DataError) as err:
        dl.download("pure", data, url=f"{closed_url}/x", known_hash=f"md5:{md5}", progress=False)
    msg = str(err.value)
    assert "\n" not in msg and f"refused to extract {name!r}" in msg and "nothing was extracted" in msg
    assert [p.name for p in data.iterdir()] == [PURE.archive]
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_offline_the_cli_says_where_to_put_the_archive_by_hand(md5: str, closed_url: str, tmp_path: Path) -> None:
    out = _cli("download", "pure", "--dir", str(tmp_path), md5=md5, base_url=closed_url)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot download ")
    assert f"{closed_url}/{PURE.archive}?download=1" in line and f"save it as {tmp_path / PURE.archive}" in line
    assert list(tmp_path.iterdir()) == []


def test_an_archive_fetched_by_hand_is_used_without_network(served: Path, test_md5: str, closed_url: str,
                                                           tmp_path: Path) -> None:
    (tmp_path / PURE.archive).write_bytes((served / PURE.archive).read_bytes())
    folder = dl.download("pure", tmp_path, url=f"{closed_url}/{PURE.archive}", progress=False)
    assert folder == tmp_path / PURE.folder and (folder / "data" / "user_features_pure.csv").is_file()


class _Usage:
    def __init__(self, free: int) -> None:
        self.free = free


def test_27k_checks_the_free_space_then_asks(monkeypatch, closed_url: str, tmp_path: Path) -> None:
    big = dl.RELEASES["27k"]
    need = big.size + big.unpacked
    url = f"{closed_url}/{big.archive}"
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: _Usage(need - 1))
    with pytest.raises(DataError, match=r"not enough free space for KuaiRand-27K: needs .* free$"):
        dl.download("27k", tmp_path, url=url, yes=True)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: _Usage(need))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    with pytest.raises(DataError, match=r"stdin is not a terminal .*pass --yes"):
        dl.download("27k", tmp_path, url=url)
    prompts: list[str] = []
    answers = iter(["", "y"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or next(answers))
    with pytest.raises(DataError, match="cancelled"):
        dl.download("27k", tmp_path, url=url)
    with pytest.raises(DataError, match="cannot download"):  # a yes goes on to the (here unreachable) server
        dl.download("27k", tmp_path, url=url)
    assert prompts[0].startswith(f"Download {big.archive} (") and f"unpacked) into {tmp_path}? [y/N]" in prompts[0]
    with pytest.raises(DataError, match="cannot download"):  # --yes asks nothing
        dl.download("27k", tmp_path, url=url, yes=True)
    assert len(prompts) == 2 and list(tmp_path.iterdir()) == []


def test_a_null_root_reads_the_downloaded_copy_or_offers_the_command(downloaded: Path, server, test_md5: str,
                                                                     monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(dl.DIR_ENV, str(downloaded))
    cfg = compose_config("dataset=kuairand", "dataset.release=pure")
    validate(cfg)
    assert dataset_root(cfg.dataset) == downloaded / PURE.folder
    monkeypatch.setenv(dl.DIR_ENV, str(tmp_path))
    with pytest.raises(DataError, match=r"not downloaded; run `python -m bench.data download pure`"):
        dataset_root(cfg.dataset)
    monkeypatch.setenv(dl.BASE_URL_ENV, server[0])
    fetched = compose_config("dataset=kuairand", "dataset.release=pure", "dataset.download=true")
    assert dataset_root(fetched.dataset, progress=False) == tmp_path / PURE.folder
    with pytest.raises(ConfigError, match=r"set dataset.root=DIR or dataset.release=pure\|1k\|27k"):
        validate(compose_config("dataset=kuairand"))


def test_the_pipeline_runs_on_the_downloaded_copy(downloaded: Path, monkeypatch, tmp_path: Path) -> None:
    from bench.pipeline.run import run

    monkeypatch.setenv(dl.DIR_ENV, str(downloaded))
    cfg = compose_config("dataset=kuairand", "dataset.release=pure", "increc=off", "train.epochs=1",
                         "train.early_stopping=false", "eval.seed_control=false", "train.max_batches=3",
                         "train.progress=false", "train.batch_size=1024")
    record = run(cfg, tmp_path).record
    assert record["pool_size"] == 7583
    assert record["sample_stats"]["test_requests_nonempty_itg"] == 2226
