"""`python -m bench.perf [--quick | --full] [--out FILE]`: print and save the performance figures."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.config import PROJECT_ROOT
from bench.perf.machine import machine
from bench.perf.retrieval import retrieval_figures
from bench.record import code_version, write_json_atomic

SIZES = {  # (retrieval items, retrieval queries, item-CF preset, SASRec-vs-RecBole epochs, seeds)
    "quick": (200_000, 2048, "pure", 1, [0]),
    "full": (4_400_000, 4096, "pure", 5, [0, 1]),
}


def itemcf_on_preset(preset: str) -> dict:
    from bench.data.kuairand import load_kuairand
    from bench.data.synthetic import ensure_generated
    from bench.requests import build_requests
    from bench.perf.itemcf import itemcf_figures

    root = ensure_generated(preset, 0, PROJECT_ROOT / ".cache" / "synthetic", progress=False)
    ds = load_kuairand(root, progress=False)
    req = build_requests(ds.log)
    pos = req.positives
    fit = pos.time_ms < req.first_test_ms
    return itemcf_figures(pos.user[fit], pos.item[fit], ds.n_items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="the complete run, at KuaiRand-1K scale")
    parser.add_argument("--skip-sasrec", action="store_true", help="leave out the SASRec-vs-RecBole figures (the long part)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default outputs/perf/<time>_<mode>.json)")
    args = parser.parse_args(argv)
    which = "full" if args.full else "quick"
    n_items, n_queries, preset, epochs, seeds = SIZES[which]
    figures: dict[str, object] = {}

    def show(new: dict) -> None:
        for name, value in new.items():
            print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}", flush=True)
        figures.update(new)

    show({f"machine_{k}": v for k, v in machine().items()})
    show(retrieval_figures(n_items, n_queries))
    show(itemcf_on_preset(preset))
    if not args.skip_sasrec:
        from bench.perf.sasrec_recbole import sasrec_figures

        show(sasrec_figures(epochs, seeds))
    if which == "full":  # the scale figures: the Pure-sized preset, then the KuaiRand-1K-sized one
        from bench.perf.scale import end_to_end

        show(end_to_end("pure"))
        show(end_to_end("kuairand1k"))
    out = args.out or PROJECT_ROOT / "outputs" / "perf" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{which}.json"
    write_json_atomic({"mode": which, "machine": machine(), "code_version": code_version(), "figures": figures}, out)
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
