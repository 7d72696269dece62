"""`python -m bench.data download {pure,1k,27k} [--dir DIR] [--yes]`: fetch an official KuaiRand release,
md5-checked, and unpack it (bench.data.download; issue 43). Prints the release folder; errors are one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.data.download import DIR_ENV, RELEASES, cache_dir, download
from bench.errors import one_line_errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data",
                                     description="Fetch an official KuaiRand release, md5-checked, and unpack it.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download", help="download and unpack an official KuaiRand release")
    fetch.add_argument("release", choices=list(RELEASES))
    fetch.add_argument("--dir", type=Path, default=None,
                       help=f"where the archive and its folder go (default: ${DIR_ENV}, else {cache_dir()})")
    fetch.add_argument("--yes", action="store_true", help="download a large release (27k) without asking")
    args = parser.parse_args(argv)
    return one_line_errors(lambda: print(download(args.release, args.dir, yes=args.yes)))


if __name__ == "__main__":
    sys.exit(main())
