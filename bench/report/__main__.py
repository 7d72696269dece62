"""`python -m bench.report DIR... [--out DIR]`: run records -> results/<dataset>/tableN.md with its numbers as
tableN.json (bench.report.summary), plots and tableN_protocol.md; `--findings RESULTS`: RESULTS/FINDINGS.md from those
summaries (bench.report.findings)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.config import PROJECT_ROOT
from bench.errors import one_line_errors
from bench.report.collect import ReportError, TableRuns, check_one_cpu_kind, check_one_setting_per_backbone, collect
from bench.report.findings import write_findings
from bench.report.plots import hit_vs_k, itg_hits_by_tab
from bench.report.diagnostics import protocol_file, render_protocol
from bench.pipeline.record import write_atomic
from bench.report.summary import table_summary, write_summary
from bench.report.calibration_page import write_calibration
from bench.report.page import render
from bench.report.table1 import table1_numbers
from bench.report.ablations import ablation_numbers
from bench.report.cells import MODEL_ORDER, TABLE2_ORDER, TABLE3_ORDER, ordered

RECBOLE_PREFIX = "recbole_"  # model.name of model=recbole: recbole_<NAME> (conf/model/recbole.yaml)
SWEPT = ("seed", "seeds")  # the seed list is re-added below as seeds=N; keys that vary by job are dropped anyway
NO_EFFECT = ("cache", "resume", "train.progress", "hydra")  # overrides that never change a result


def _relative(path: Path) -> Path:
    """`path` relative to the project root when it lies inside it (a command that works from any clone)."""
    try:
        return path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        return path


def out_option(out: Path | None) -> str:
    """' --out DIR' for a report command writing elsewhere than the default results/ ('' otherwise)."""
    if out is None or out.resolve() == (PROJECT_ROOT / "results").resolve():
        return ""
    return f" --out {_relative(out)}"


def regenerate_command(runs: TableRuns, out: Path | None = None) -> str:
    """The sweep and report commands that reproduce this table: the overrides every job shares (minus
    the swept keys), the seed count, the folder the records are in, and the report's --out when it is not
    the default results/."""
    lists = [j.record.get("overrides", []) for j in runs.jobs.values()]
    def kept(o: str) -> bool:
        key = o.split("=")[0].lstrip("+~")
        return key not in SWEPT and not any(key == n or key.startswith(n + ".") or key.startswith(n + "/") for n in NO_EFFECT)

    swept_models = ("model", "model.recbole_model") if runs.table == "table1" else ()  # Table 1: model_sweeps
    common = [o for o in lists[0] if all(o in other for other in lists[1:]) and kept(o)
              and o.split("=")[0] not in (*swept_models, "experiment")]
    common.insert(0, f"experiment={runs.table}")
    per_model = {m: sorted({s for mm, _, s in runs.jobs if mm == m}) for m in runs.models()}
    counts = sorted({len(s) for s in per_model.values()})
    seeds = runs.seeds()
    tail = []
    if all(s == list(range(len(s))) for s in per_model.values()):
        tail.append(f"seeds={counts[0]}")  # backbones with more (headline_seeds) keep that override from the records
        if len(counts) > 1 and not any(o.startswith("headline_seeds=") for o in common):
            more = [m for m, s in per_model.items() if len(s) == counts[-1]]
            tail += [f"headline_seeds={counts[-1]}", f"headline_models=[{','.join(more)}]"]
    else:
        tail.append(f"seed={','.join(map(str, seeds))}")
    folder = _relative(Path(os.path.commonpath([str(j.path.parent.parent) for j in runs.jobs.values()])))
    if folder != Path("outputs") / "experiments" / runs.dataset / runs.table:  # not the experiment's own folder
        tail.append(f"hydra.sweep.dir={folder}")
    sweeps = [" ".join([*common, *models, *tail]) for models in (model_sweeps(runs) if swept_models else [[]])]
    report = f"python -m bench.report {folder}{out_option(out)}{mixed_option(runs)}"
    return " && ".join(f"python -m bench -m {sweep}" for sweep in sweeps) + f" && {report}"


def mixed_option(runs: TableRuns) -> str:
    """' --mixed-cpu' for a table whose records come from several CPU kinds ('' otherwise)."""
    return " --mixed-cpu" if len(runs.cpu_kinds()) > 1 else ""


def model_sweeps(runs: TableRuns) -> list[list[str]]:
    """The model overrides of the sweep(s) that made these records: one sweep over the built-in backbones
    (nothing to add when Table 1 holds exactly the paper's six), one over RecBole's models (model=recbole
    model.recbole_model=A,B), since one Hydra sweep cannot give some jobs a RecBole model name and not others."""
    models = runs.models()
    recbole = sorted(m.removeprefix(RECBOLE_PREFIX) for m in models if m.startswith(RECBOLE_PREFIX))
    plain = ordered([m for m in models if not m.startswith(RECBOLE_PREFIX)], MODEL_ORDER)
    out = []
    if plain:
        out.append([] if runs.table == "table1" and set(plain) == set(MODEL_ORDER) else ["model=" + ",".join(plain)])
    if recbole:
        out.append(["model=recbole", "model.recbole_model=" + ",".join(recbole)])
    return out


def panel_order(runs: TableRuns) -> list[tuple[str, str]]:
    if runs.table == "table1":
        return [(m, "na") for m in ordered(runs.models(), MODEL_ORDER)]
    order = TABLE2_ORDER if runs.table == "table2" else TABLE3_ORDER
    return [(m, v) for m in runs.models() for v in ordered(runs.variants(), order) if not (v == "off" and runs.table == "table2")]


def write_report(dirs: list[Path], out: Path, mixed_cpu: bool = False) -> list[Path]:
    """Write one markdown file (and its plots, JSON summary and <table>_protocol.md, the premise
    diagnostics of bench.report.diagnostics) per (dataset, table) found under `dirs`; a table whose records
    come from several CPU kinds only with `mixed_cpu`."""
    written = []
    tables = collect(dirs)
    for runs in tables:
        check_one_setting_per_backbone(runs)
        if not mixed_cpu:
            check_one_cpu_kind(runs)
        folder = out / runs.dataset
        folder.mkdir(parents=True, exist_ok=True)
        order = panel_order(runs)
        plots = [hit_vs_k(runs, order, folder / f"{runs.stem}_hit_vs_k.png"),
                 itg_hits_by_tab(runs, order, folder / f"{runs.stem}_itg_hits_by_tab.png")]
        plots = [p.name if p else "" for p in plots]
        path = folder / f"{runs.stem}.md"
        command = regenerate_command(runs, out)
        numbers = table1_numbers(runs) if runs.table == "table1" else ablation_numbers(runs)
        text = render(runs, command, [p for p in plots if p], numbers)
        write_atomic(path, lambda f: f.write(text))
        diagnostics, diagnostics_path = render_protocol(runs.dataset, [runs]), folder / protocol_file(runs.stem)
        write_atomic(diagnostics_path, lambda f: f.write(diagnostics))
        write_summary(path.with_suffix(".json"), table_summary(runs, command, numbers))
        written += [path, diagnostics_path, path.with_suffix(".json")]
    return written


def write_calibrations(dirs: list[Path], out: Path, draws: int, plants: int, mixed_cpu: bool = False) -> list[Path]:
    """<stem>_calibration.md and .json beside every table found under `dirs` (bench.report.calibration_page)."""
    written = []
    for runs in collect(dirs):  # a ReportError when `dirs` hold no table's records
        check_one_setting_per_backbone(runs)
        if not mixed_cpu:
            check_one_cpu_kind(runs)
        folder = out / runs.dataset
        folder.mkdir(parents=True, exist_ok=True)
        folders = " ".join(str(_relative(Path(d))) for d in dirs)
        command = (f"python -m bench.report --calibrate {folders}{out_option(out)}"
                   + ("" if draws == 1000 else f" --draws {draws}") + ("" if plants == 200 else f" --plants {plants}")
                   + mixed_option(runs))
        written += write_calibration(runs, folder, command, draws=draws, plants=plants)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("dirs", nargs="*", type=Path, help="folders holding run.json records (searched recursively)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results", help="results folder (default: results/)")
    parser.add_argument("--findings", type=Path, metavar="RESULTS",
                        help="instead: write RESULTS/FINDINGS.md from RESULTS/<dataset>/table*.json (bench.report.findings)")
    parser.add_argument("--calibrate", action="store_true",
                        help="instead: write <table>_calibration.md (and .json) beside each table found in the record "
                             "folders: the verdict rule's coverage, false positives and power (PROTOCOL 5, Calibration)")
    parser.add_argument("--draws", type=int, default=1000, help="with --calibrate: simulated draws per S (default 1000)")
    parser.add_argument("--plants", type=int, default=200,
                        help="with --calibrate: planted effects per tested row and K (default 200)")
    parser.add_argument("--protocols", type=Path, nargs=2, metavar=("V1_DIR", "V2_DIR"), action="append",
                        help="with --findings: compare the Table 1 summaries (table1.json) of these two folders; "
                             "repeat it for one comparison per dataset")
    parser.add_argument("--mixed-cpu", action="store_true",
                        help="report a table whose records come from several CPU kinds (refused otherwise: such a "
                             "table regenerates on no one machine); its header says so")
    args = parser.parse_args(argv)
    if args.findings is None and (not args.dirs or args.protocols):
        parser.error("give record folders, or --findings RESULTS [--protocols V1_DIR V2_DIR]...")
    if args.findings is not None and args.dirs:
        parser.error("--findings reads table summaries, not record folders: leave the folders out")
    if args.calibrate and (args.findings is not None or not args.dirs):
        parser.error("--calibrate reads record folders: give them, without --findings")
    if args.calibrate and (args.draws < 1 or args.plants < 1):
        parser.error("--draws and --plants must be at least 1")

    def work() -> None:
        if args.calibrate:
            for path in write_calibrations(args.dirs, args.out, args.draws, args.plants, args.mixed_cpu):
                print(path)
            return
        if args.findings is not None:
            pairs = [tuple(pair) for pair in args.protocols or []]
            command = " ".join(["python -m bench.report --findings", str(args.findings)]
                               + [f"--protocols {v1} {v2}" for v1, v2 in pairs])
            print(write_findings(args.findings, command, pairs))
            return
        for path in write_report(args.dirs, args.out, args.mixed_cpu):
            print(path)

    return one_line_errors(work)


if __name__ == "__main__":
    sys.exit(main())
