"""`python -m bench.tuning.default_vs_tuned RUN_JSON... [--out FILE]`: default against tuned configuration, per backbone.

Reads run records of `python -m bench model=M increc=off tuned=false|true ...` (the test requests scored once,
after the search) and prints one markdown row per backbone: the selected epoch's validation value (the
search's objective) and test Base@K of the untuned and the tuned configuration, with the tuned file's
best trial and the search's wall time from its provenance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(records: list[dict]) -> list[dict]:
    by_model: dict[str, dict] = {}
    for rec in records:
        applied = rec["config"].get("tuning_applied")
        base = rec["training"]["base"]
        entry = by_model.setdefault(rec["config"]["model"]["name"], {})
        entry["tuned" if applied else "default"] = {
            "valid": base["best_value"], "metric": base["selection_metric"], "best_epoch": base["best_epoch"],
            "epochs": base["epochs_run"], "test": {k: v for k, v in rec["metrics"].items()
                                                   if k.startswith("Base@") and k[5:].isdigit()},
            "provenance": (applied or {}).get("provenance", {}), "commit": rec["code_version"].get("git_commit")}
    return [{"model": m, **v} for m, v in sorted(by_model.items())]


def table(summary: list[dict]) -> str:
    ks = sorted({int(k[5:]) for r in summary for side in ("default", "tuned") if side in r for k in r[side]["test"]})
    head = ["backbone", "default: valid", "tuned: valid", *[f"default: test Base@{k}" for k in ks],
            *[f"tuned: test Base@{k}" for k in ks], "best trial", "search wall s"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in summary:
        d, t = r.get("default"), r.get("tuned")
        cell = lambda side, key: "–" if side is None else f"{side[key]:.4f} (epoch {side['best_epoch']} of {side['epochs']})"
        prov = (t or {}).get("provenance", {})
        out.append("| " + " | ".join([
            r["model"], cell(d, "valid"), cell(t, "valid"),
            *[("–" if d is None else f"{d['test'][f'Base@{k}']:.4f}") for k in ks],
            *[("–" if t is None else f"{t['test'][f'Base@{k}']:.4f}") for k in ks],
            str(prov.get("best_trial", "–")), str(prov.get("search_wall_seconds", "–"))]) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tuning.default_vs_tuned", description=__doc__)
    parser.add_argument("records", nargs="+", type=Path, help="run.json files (tuned=false and tuned=true runs)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    text = table(rows([json.loads(p.read_text()) for p in args.records]))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
