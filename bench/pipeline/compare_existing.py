"""`python -m bench.pipeline.compare_existing COMMON... [--out FILE] -- SYSTEM_A... -- SYSTEM_B...`: how existing systems label.

Before any model is trained, what an existing system does to the benchmark is in its labels: the ITG
share of each split, how many test requests keep a non-empty ITG (the rows every metric averages
over), and per channel the share of RTG targets it retrieves. This runs the prepared stage (data,
requests, existing system; bench.pipeline.prepare) once per system and prints one markdown table. COMMON are
Hydra overrides every system shares (e.g. dataset=kuairand_sample); each group after `--` is one
system's overrides (e.g. existing=multi existing.channels.0.budget=200). `--load-only` reads the data
and builds the requests and stops there (bench.perf's baseline of what every system's figures include).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from bench.pipeline.cache import StageCache
from bench.config import CONF_DIR, register_resolvers
from bench.pipeline.validate import validate
from bench.protocol.samples import sample_statistics, split_groups


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=overrides)
    validate(cfg)
    return cfg


def system_row(overrides: list[str]) -> dict:
    """The labelling statistics of one system (module docstring)."""
    from bench.pipeline.prepare import prepare

    cfg = compose(overrides)
    start = time.perf_counter()
    prep = prepare(cfg, StageCache(cfg.cache.dir if cfg.cache.enabled else None), lambda _: contextlib.nullcontext(),
                   False)
    seconds = time.perf_counter() - start
    stats = sample_statistics(split_groups(prep.req, prep.retrieved, prep.ds.n_items), primary_tabs=[1])
    by = prep.existing_fits["rtg_by_channel"]
    return {"overrides": overrides, "budget": prep.budget, "mean_retrieved": stats["mean_retrieved"],
            "prepare_seconds": round(seconds, 1), "n_fits": prep.existing_fits["n_fits"],
            "channel_seconds": {c["name"]: {"fit": c["fit_seconds"], "retrieve": c["retrieve_seconds"]}
                                for c in prep.existing_fits["channels"]},
            "channel_search": {c["name"]: c["search"] for c in prep.existing_fits["channels"] if "search" in c},
            "itg_share": {s: v["itg_share"] for s, v in stats["splits"].items()},
            "nonempty_itg_requests": {s: v["requests_nonempty_itg"] for s, v in stats["splits"].items()},
            "mean_retrieved_by_channel": by["mean_retrieved_by_channel"],
            "test_rtg_share_by_channel": by["splits"]["test"]["channel_rtg_share"],
            "test_only_rtg_share_by_channel": by["splits"]["test"]["channel_only_rtg_share"]}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)


def table(rows: list[dict]) -> str:
    splits = [s for s in ("train", "valid", "test") if any(s in r["itg_share"] for r in rows)]
    head = (["system", "budget", "mean R_u"] + [f"ITG share {s}" for s in splits]
            + [f"non-empty ITG {s}" for s in splits] + ["test RTG by channel (only it)"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        channels = "; ".join(f"{n} {_fmt(v)} ({_fmt(r['test_only_rtg_share_by_channel'][n])}), mean {_fmt(m)}"
                             for (n, v), m in zip(r["test_rtg_share_by_channel"].items(),
                                                  r["mean_retrieved_by_channel"].values()))
        cells = ([" ".join(r["overrides"]) or "(defaults)", _fmt(r["budget"]), _fmt(r["mean_retrieved"])]
                 + [_fmt(r["itg_share"].get(s)) for s in splits] + [_fmt(r["nonempty_itg_requests"].get(s)) for s in splits]
                 + [channels])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    groups, current = [], []
    for a in argv:
        if a == "--":
            groups.append(current)
            current = []
        else:
            current.append(a)
    groups.append(current)
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline.compare_existing", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--load-only", action="store_true", help="load the data and build the requests, nothing more")
    args, common = parser.parse_known_args(groups[0])
    if args.load_only:
        from bench.pipeline.prepare import load_requests

        _, req = load_requests(compose(common), lambda _: contextlib.nullcontext(), False)
        print(f"{req.n:,} requests")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"common": common, "requests": int(req.n)}) + "\n")
        return 0
    systems = groups[1:] or [[]]
    rows = []
    for system in systems:
        row = system_row([*common, *system])
        row["overrides"] = system
        rows.append(row)
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"common": common, "systems": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
