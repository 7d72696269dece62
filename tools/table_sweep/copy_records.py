"""Copy a worktree's new sweep records into main after checking them (tools/table_sweep/README.md).

A record is copied only when it ran at the table's commit with a clean tree, on the table's CPU kind (on the CPU),
with every value of main's confirmed tuned file.
`python tools/table_sweep/copy_records.py DATASET [--sweep S] [--commit C] [--vendor V] [--no-native-bf16] [--worktree W]`
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

MAIN = Path(__file__).resolve().parents[2]


def _at(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config[key]
    return config


def problems(record: dict, tuned: dict, commit: str, vendor: str, native_bf16: bool = False) -> list[str]:
    """Why a record does not belong to the table (empty when it does)."""
    code, machine = record["code_version"], record["machine"]
    found = []
    if not code["git_commit"].startswith(commit) or code["dirty"]:
        found.append(f"code {code['git_commit'][:7]} dirty={code['dirty']}")
    if machine["cpu_vendor"] != vendor or bool(machine["native_bf16"]) != native_bf16:
        found.append(f"cpu {machine['cpu_vendor']} native_bf16={machine['native_bf16']}")
    if "confirmation" not in tuned:
        found.append("tuned file unconfirmed")
    if str(record.get("device", "cpu")) != "cpu":
        found.append(f"trained on {record['device']}")
    for key, value in tuned["values"].items():
        try:
            got = _at(record["config"], key)
        except (KeyError, TypeError):
            found.append(f"{key}: not in the record's config")
            continue
        if got != value:
            found.append(f"{key}: {got} != {value}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--sweep", default="table1_v3_sweep", help="the sweep folder under results/DATASET/runs/")
    ap.add_argument("--commit", default="622e317")
    ap.add_argument("--vendor", default="AuthenticAMD")
    ap.add_argument("--native-bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="whether the table's CPU kind has native bf16")
    ap.add_argument("--worktree", type=Path, default=MAIN.parent / "wt_head")
    a = ap.parse_args()
    src = a.worktree / "results" / a.dataset / "runs" / a.sweep
    dst = MAIN / "results" / a.dataset / "runs" / a.sweep
    for path in sorted(src.glob("*/run.json")):
        job = path.parent
        if (dst / job.name / "run.json").exists():
            continue
        record = json.loads(path.read_text())
        model = record["config"]["model"]
        name = f"recbole_{model['recbole_model']}" if model["name"] == "recbole" else model["name"]
        tuned = yaml.safe_load((MAIN / "tuned" / a.dataset / f"{name}.yaml").read_text())
        bad = problems(record, tuned, a.commit, a.vendor, a.native_bf16)
        if not (job / "per_request.npz").exists():
            bad.append("no per_request.npz")
        if bad:
            print("skipped", job.name, "; ".join(bad))
            continue
        (dst / job.name).mkdir(parents=True, exist_ok=True)
        for f in ("run.json", "per_request.npz"):
            shutil.copy2(job / f, dst / job.name / f)
        print("copied", job.name)


if __name__ == "__main__":
    main()
