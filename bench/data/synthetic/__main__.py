"""`python -m bench.data.synthetic PRESET [--seed S] [--out DIR]`: generate one synthetic dataset and time it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.data import synthetic
from bench.data.synthetic.presets import PRESETS
from bench.data.synthetic.writer import cache_path, generate


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.data.synthetic PRESET [--seed S] [--out DIR]`: generate and time one dataset."""
    ap = argparse.ArgumentParser(prog="python -m bench.data.synthetic",
                                 description=synthetic.__doc__.splitlines()[0])
    ap.add_argument("preset", choices=list(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: .cache/synthetic/<name>)")
    args = ap.parse_args(argv)
    out = args.out or cache_path(args.preset, args.seed, Path(".cache") / "synthetic")
    t0 = time.perf_counter()
    generate(args.preset, args.seed, out, progress=True)
    print(f"{args.preset} seed {args.seed}: {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
