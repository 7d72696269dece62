"""`python -m bench.perf [--quick | --full] [--only SECTIONS] [--device D] [--out FILE]`: print and save the
performance figures.

`--device` (auto, cpu, cuda, cuda:N) is the device every section that can choose one runs on; without it
each keeps its own (bench.perf.device: cpu for train_step, auto for the other training sections), and
retrieval, itemcf and existing are CPU code that runs on the CPU. `--baseline-device` (train_step only)
also steps SASRec's default path there, over the same batches: `--only train_step --device cuda
--baseline-device cpu` gives the GPU step against the CPU step in one call. Each section's figures
name its device (`<section>_device`, `<section>_device_name`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.config import PROJECT_ROOT
from bench.engine.machine import machine
from bench.errors import one_line_errors
from bench.perf.device import CPU_ONLY, device_figures, device_name_arg, resolve, section_device
from bench.perf.retrieval import retrieval_figures
from bench.pipeline.record import code_version, write_json_atomic

SIZES = {  # (retrieval items, retrieval queries, item-CF preset, SASRec-vs-RecBole epochs, seeds)
    "quick": (200_000, 2048, "pure", 1, [0]),
    "full": (4_400_000, 4096, "pure", 5, [0, 1]),
}
TRAIN_STEP = {"quick": ("pure", 15, 2), "full": ("pure", 33, 5)}  # (preset, batches incl. 3 warm-up, rounds)


def _training_period(preset: str):
    """The synthetic preset's requests and its positives before the test period (what a train_period fit sees)."""
    from bench.data.kuairand import load_kuairand
    from bench.data.synthetic import ensure_generated
    from bench.protocol.requests import build_requests

    root = ensure_generated(preset, 0, PROJECT_ROOT / ".cache" / "synthetic", progress=False)
    ds = load_kuairand(root, progress=False)
    req = build_requests(ds.log)
    return ds, req, req.positives.time_ms < req.first_test_ms


def itemcf_on_preset(preset: str) -> dict:
    from bench.perf.itemcf import itemcf_figures

    ds, req, fit = _training_period(preset)
    return itemcf_figures(req.positives.user[fit], req.positives.item[fit], ds.n_items)


def existing_on_preset(preset: str) -> dict:
    from bench.perf.existing import existing_figures

    ds, req, fit = _training_period(preset)
    pos = req.positives
    return existing_figures(pos.user[fit], pos.item[fit], pos.time_ms[fit], req.first_test_ms, ds.n_items,
                            req.history())


SECTIONS = ("retrieval", "itemcf", "existing", "train_step", "sasrec", "scale_pure", "scale_kuairand1k",
            "existing_kuairand1k", "table1_sample")
FULL_ONLY = ("scale_pure", "scale_kuairand1k", "existing_kuairand1k", "table1_sample")  # the long sections: --full


def run_section(name: str, which: str, seeds: list[int] | None = None, systems: list[str] | None = None,
                time_limit_s: float | None = None, device: torch.device = torch.device("cpu"),
                baseline: torch.device | None = None) -> dict:
    """One section's figures, its training on `device` (CPU_ONLY sections ignore it; `baseline`: train_step's
    --baseline-device)."""
    n_items, n_queries, preset, epochs, default_seeds = SIZES[which]
    if name == "retrieval":
        return retrieval_figures(n_items, n_queries, repeats=3 if which == "quick" else 2)
    if name == "itemcf":
        return itemcf_on_preset(preset)
    if name == "existing":
        return existing_on_preset(preset)
    if name == "existing_kuairand1k":
        from bench.perf.existing import SYSTEMS, systems_on_preset

        return systems_on_preset("kuairand1k", None if systems is None else {n: SYSTEMS[n] for n in systems},
                                 str(device))
    if name == "train_step":
        from bench.perf.train_step import train_step_figures

        return train_step_figures(*TRAIN_STEP[which], device=device, baseline_device=baseline)
    if name == "sasrec":
        from bench.perf.sasrec_recbole import sasrec_figures

        return {"sasrec_epochs": epochs, **sasrec_figures(epochs, seeds or default_seeds, device)}
    if name == "table1_sample":
        from bench.perf.table1 import table1_sample

        return table1_sample(device=str(device))
    from bench.perf.scale import end_to_end

    return end_to_end(name.removeprefix("scale_"), time_limit_s=time_limit_s, device=str(device))


def previous_figures(out: Path, which: str) -> dict:
    """Figures already in `out` from the same mode and machine (so --only can add sections to one file;
    each section keeps the code version it ran at, in `sections`)."""
    if not out.exists():
        return {}
    old = json.loads(out.read_text())
    here, theirs = machine(), old.get("machine")  # keys added to machine() since the file was written are not compared
    if old.get("mode") != which or not isinstance(theirs, dict) or any(here.get(k) != v for k, v in theirs.items()):
        raise SystemExit(f"error: {out} holds figures of another mode or machine; choose another --out")
    return old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="the complete run, at KuaiRand-1K scale")
    parser.add_argument("--skip-sasrec", action="store_true", help="leave out the SASRec-vs-RecBole figures (the long part)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sections to run, of {','.join(SECTIONS)}; with --out, they are added to "
                             "the figures the file holds from the same mode and machine")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds of the SASRec-vs-RecBole section "
                        "(default: 0 with --quick, 0,1 with --full)")
    parser.add_argument("--systems", default=None,
                        help="comma-separated existing systems of the existing_kuairand1k section (default: all of "
                             "bench.perf.existing.SYSTEMS)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="scale_* sections: stop a run still going after SECONDS and record a lower bound "
                             "(<preset>_end_to_end_s_at_least) with the stages it finished")
    parser.add_argument("--device", type=device_name_arg, default=None, metavar="{auto,cpu,cuda,cuda:N}",
                        help="the device of every section that trains or multiplies on one (default: each section's "
                             "own, cpu for train_step and auto for sasrec, scale_*, existing_kuairand1k and "
                             f"table1_sample); {', '.join(CPU_ONLY)} always run on the CPU")
    parser.add_argument("--baseline-device", type=device_name_arg, default=None, metavar="{auto,cpu,cuda,cuda:N}",
                        help="train_step only: also step SASRec's default path on this device over the same batches "
                             "and record the ratio (e.g. --device cuda --baseline-device cpu)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default outputs/perf/<time>_<mode>.json)")
    args = parser.parse_args(argv)
    which = "full" if args.full else "quick"
    sections = [s for s in SECTIONS if which == "full" or s not in FULL_ONLY]
    if args.skip_sasrec:
        sections.remove("sasrec")
    if args.only:
        asked = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in asked if s not in sections]
        if unknown:
            parser.error(f"--only: unknown section(s) {unknown} for --{which}; choose from {sections}")
        sections = asked
    if args.baseline_device and "train_step" not in sections:
        parser.error("--baseline-device: only the train_step section uses it; add train_step to --only")
    try:
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers")
    systems = [x.strip() for x in args.systems.split(",") if x.strip()] if args.systems else None
    if systems is not None:
        from bench.perf.existing import SYSTEMS

        if unknown := [x for x in systems if x not in SYSTEMS]:
            parser.error(f"--systems: unknown system(s) {unknown}; choose from {list(SYSTEMS)}")
    out = args.out or PROJECT_ROOT / "outputs" / "perf" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{which}.json"

    def work() -> None:
        asked = resolve(args.device) if args.device else None  # an unavailable device stops here, in one line
        baseline = resolve(args.baseline_device, "--baseline-device") if args.baseline_device else None
        devices = {name: section_device(name, asked) for name in sections}
        run_sections(sections, which, out, devices, baseline, seeds, systems, args.time_limit, args.only is not None)

    return one_line_errors(work)


def run_sections(sections: list[str], which: str, out: Path, devices: dict[str, torch.device],
                 baseline: torch.device | None, seeds: list[int] | None, systems: list[str] | None,
                 time_limit_s: float | None, adding: bool) -> None:
    """Run each section on its device, print its figures and save the file after each (`adding`: to the
    figures `out` holds)."""
    record = previous_figures(out, which) if adding else {}
    figures: dict[str, object] = dict(record.get("figures", {}))
    done: dict[str, dict] = dict(record.get("sections", {}))  # section -> its seconds, finish time, code version, device

    def show(new: dict) -> None:
        for name, value in new.items():
            print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}", flush=True)
        figures.update(new)

    show({f"machine_{k}": v for k, v in machine().items()})
    for name in sections:
        device = devices[name]
        start, version = time.perf_counter(), code_version()  # the code this section runs
        show(device_figures(name, device) | run_section(name, which, seeds, systems, time_limit_s, device, baseline))
        if name == "sasrec":  # means over every seed the file now holds, this call's and earlier ones'
            from bench.perf.sasrec_recbole import summarise_seeds

            show(summarise_seeds(figures))
        key = name if name != "sasrec" else f"sasrec seeds {seeds or 'default'}"  # seeds may run in separate calls
        if name == "existing_kuairand1k" and systems is not None:
            key = f"{name} systems {','.join(systems)}"
        done[key] = {"seconds": round(time.perf_counter() - start, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "code_version": version, "device": str(device)}
        write_json_atomic({"mode": which, "machine": machine(), "sections": done, "figures": figures}, out)  # after each
    print(f"figures: {out}")


if __name__ == "__main__":
    sys.exit(main())
