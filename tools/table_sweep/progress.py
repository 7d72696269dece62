"""What a v3 table sweep still lacks, and the queue lines that make it (tools/table_sweep/README.md, issue 42).

The design is issue 42's: the six paper backbones at seeds 0-9 with every arm (off, na, na_permuted), the five others
at seeds 0-4 with off and na (`table1_multi`: the six only). A backbone-seed is done when each of its arms has a
`run.json` and a `per_request.npz`. Minutes per seed are the median over the done seeds of the summed stage seconds
(a timing: one process per core, on whatever machine made them).
`python tools/table_sweep/progress.py results/kuairand_sample/runs/table1_v3_sweep [--multi] [--queue] [--extra ...]`
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

PAPER = ("youtube_dnn", "dssm", "sasrec", "comirec_dr", "comirec_sa", "kuaiformer")
OTHERS = ("unified", "recbole_GRU4Rec", "recbole_NARM", "recbole_SINE", "recbole_STAMP")
PAPER_ARMS, OTHER_ARMS = ("off", "na", "na_permuted"), ("off", "na")


@dataclass(frozen=True)
class Backbone:
    """One backbone's share of the design, and how far the sweep has come."""

    label: str
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    done: tuple[int, ...]
    minutes_per_seed: float | None  # None when no seed is done

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(s for s in self.seeds if s not in self.done)

    def overrides(self) -> str:
        """The job's overrides, as a queue line gives them."""
        model = f"model=recbole model.recbole_model={self.label.removeprefix('recbole_')}" if self.label.startswith("recbole_") \
            else f"model={self.label}"
        seeds = " seeds=10" if self.arms == PAPER_ARMS else ""
        return f"{model} increc={','.join(self.arms)}{seeds}"


def _job_minutes(folder: Path) -> float:
    return sum(json.loads((folder / "run.json").read_text())["stage_seconds"].values()) / 60


def progress(sweep: Path, multi: bool = False) -> list[Backbone]:
    """Each backbone of the design with its done seeds and its median minutes per done seed."""
    design = [(b, PAPER_ARMS, tuple(range(10))) for b in PAPER]
    if not multi:
        design += [(b, OTHER_ARMS, tuple(range(5))) for b in OTHERS]
    rows = []
    for label, arms, seeds in design:
        done, minutes = [], []
        for seed in seeds:
            folders = [sweep / f"{label}_{arm}_seed{seed}" for arm in arms]
            if all((f / "run.json").exists() and (f / "per_request.npz").exists() for f in folders):
                done.append(seed)
                minutes.append(sum(_job_minutes(f) for f in folders))
        rows.append(Backbone(label, arms, seeds, tuple(done), statistics.median(minutes) if minutes else None))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--multi", action="store_true", help="table1_multi's design: the six paper backbones only")
    ap.add_argument("--queue", action="store_true", help="print a queue line per missing backbone-seed instead")
    ap.add_argument("--extra", default="", help="overrides every queue line carries (e.g. existing=multi)")
    a = ap.parse_args()
    dataset = a.sweep.resolve().parents[1].name
    rows = progress(a.sweep, a.multi)
    if a.queue:
        for seed in range(10):  # seed-major, so every backbone advances together
            for row in rows:
                if seed in row.missing:
                    est = round(row.minutes_per_seed) if row.minutes_per_seed else 60
                    print(f"{dataset} {row.label} {seed} {est} {row.overrides()} {a.extra}".rstrip())
        return
    total = 0.0
    print(f"{'backbone':18s} {'done':>4s} {'of':>3s}  min/seed  missing seeds")
    for row in rows:
        per = f"{row.minutes_per_seed:8.1f}" if row.minutes_per_seed is not None else "       ?"
        print(f"{row.label:18s} {len(row.done):4d} {len(row.seeds):3d}  {per}  {' '.join(map(str, row.missing)) or '-'}")
        total += len(row.missing) * (row.minutes_per_seed or 0)
    unknown = [r.label for r in rows if r.missing and r.minutes_per_seed is None]
    print(f"remaining: {total:.0f} core-minutes" + (f", plus {', '.join(unknown)} (no done seed to time)" if unknown else ""))


if __name__ == "__main__":
    main()
