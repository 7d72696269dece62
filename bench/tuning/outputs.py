"""What a finished search leaves: the tuned values file and a report with its trials and one plot.

`write_search_outputs(study, sweep_dir, ...)` reads the study's trials (Optuna's storage) and each
trial's record (`trial_<n>/trial.json` in the sweep directory) and writes

- `<tune.dir>/<dataset>/<model>.yaml`: the best trial's values, with its provenance;
- `<tune.report_dir>/<dataset>/tuning/<model>.md`: the trials table (value, parameters, best epoch,
  epochs run, seconds), the best trial, the search space and the command;
- `<model>_trials.png` beside it: the validation metric of every trial and the best so far.

Every number comes from the study or the records.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from bench.pipeline.record import write_atomic  # noqa: E402
from bench.tuning.confirm import Candidate  # noqa: E402
from bench.tuning.trial import TRIAL_RECORD  # noqa: E402

PNG_METADATA = {"Software": None}  # no version string in the file


@dataclass
class TrialRow:
    number: int
    state: str  # COMPLETE | FAIL | RUNNING (a trial a killed search left)
    value: float | None
    params: dict
    record: dict | None  # its trial.json, when the job wrote one


def trial_dir(sweep_dir: Path, number: int) -> Path:
    return Path(sweep_dir) / f"trial_{number}"


def collect_trials(study, sweep_dir: Path) -> list[TrialRow]:
    rows = []
    for t in study.trials:
        path = trial_dir(sweep_dir, t.number) / TRIAL_RECORD
        record = json.loads(path.read_text()) if path.exists() else None
        rows.append(TrialRow(t.number, t.state.name, t.value, dict(t.params), record))
    return rows


def _value(v) -> object:
    """A YAML-friendly parameter value (optuna hands floats, ints and strings)."""
    return float(v) if isinstance(v, float) else v


def _shown(path: Path) -> str:
    """A path relative to the repository when it lies inside it."""
    from bench.config import PROJECT_ROOT

    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_search_outputs(study, sweep_dir: Path, tuned_file: Path, report_file: Path, *, dataset: str, model: str,
                         command: str, space: dict, sampler: str,
                         confirm_with: Callable[[list[Candidate]], tuple[Candidate, dict]] | None = None) -> dict:
    """Write the tuned file, the report and its plot; returns the tuned file's mapping. `confirm_with`
    (bench.tuning.confirm.confirm_in, from experiment=tune) reruns the best trials at other seeds first and
    picks the value set written (the best trial, when it is None)."""
    rows = collect_trials(study, sweep_dir)
    finished = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    done = [r for r in finished if not (r.record or {}).get("rejected")]  # a collapsed tower is never picked
    if not done:
        raise RuntimeError(f"no trial of the search in {sweep_dir} completed" + (
            f" with a personalised tower ({len(finished)} rejected as collapsed; see their trial.json)" if finished else "")
            + ": nothing to write")
    ranked = sorted(done, key=lambda r: (-r.value, r.number))  # the earliest of equal values first
    confirmation = None
    if confirm_with is not None:
        chosen, confirmation = confirm_with([Candidate(r.number, dict(r.params), float(r.value)) for r in ranked])
        best = next(r for r in ranked if r.number == chosen.trial)
    else:
        best = ranked[0]
    metric = (best.record or {}).get("objective", {}).get("metric", "selection metric")
    seconds = [r.record["seconds"] for r in finished if r.record]  # a rejected trial spent its time too
    starts = [t.datetime_start for t in study.trials if t.datetime_start]
    ends = [t.datetime_complete for t in study.trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    versions = [r.record["code_version"] for r in finished if r.record]
    commit = (best.record or {}).get("code_version", {})  # the code the best trial ran
    provenance = {
        "command": command,
        "commit": commit.get("git_commit"),
        "dirty": commit.get("dirty"),
        "code_digests": len({v.get("code_digest") for v in versions}),  # > 1: the trials ran different code
        "n_trials": len(finished),  # the budget spent: every trial that ran to its end, a rejected one too
        "rejected_trials": len(finished) - len(done),
        "best_trial": best.number,
        "best_value": float(best.value),
        "metric": f"{metric} (validation)",
        "date": dt.date.today().isoformat(),
        "search_wall_seconds": None if wall is None else round(wall, 1),
        "trial_seconds_summed": round(sum(seconds), 1),
        "data_fingerprint": (best.record or {}).get("data_fingerprint"),
    }
    tuned = {"provenance": provenance, "values": {k: _value(v) for k, v in best.params.items()}}
    if confirmation is not None:
        tuned["confirmation"] = confirmation
    picked = ("the best" if confirmation is None else
              f"the first of the best {len(confirmation['checked'])} confirmed at seeds {confirmation['seeds']}"
              if confirmation["outcome"] == "passed" else
              f"none of the best {len(confirmation['checked'])} confirmed at seeds {confirmation['seeds']}; the best mean")
    header = (f"# Tuned values of {model} on {dataset}: {picked} of {len(done)} trials by validation {metric}"
              + (f" ({len(finished) - len(done)} more rejected as collapsed)" if len(finished) > len(done) else "") + ".\n"
              f"# Written by `{command}`; read by tuned=true (and by experiment=table1..3 under tuned=auto).\n")
    write_atomic(tuned_file, lambda f: f.write(header + yaml.safe_dump(tuned, sort_keys=False)))

    plot = report_file.with_name(f"{model}_trials.png")
    _plot(done, metric, plot, f"{model} on {dataset}")
    write_atomic(report_file, lambda f: f.write(_report(rows, best, metric, provenance, space, sampler, dataset, model,
                                                        tuned_file, plot, confirmation)))
    return tuned


def _plot(done: list[TrialRow], metric: str, path: Path, title: str) -> None:
    xs = [r.number for r in done]
    ys = [r.value for r in done]
    best_so_far = [max(ys[: i + 1]) for i in range(len(ys))]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(xs, ys, "o", label="trial")
    ax.step(xs, best_so_far, where="post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata=PNG_METADATA)
    plt.close(fig)


def _report(rows: list[TrialRow], best: TrialRow, metric: str, prov: dict, space: dict, sampler: str, dataset: str,
            model: str, tuned_file: Path, plot: Path, confirmation: dict | None = None) -> str:
    names = sorted({k for r in rows for k in r.params})
    lines = [f"# Tuning {model} on {dataset}", "",
             f"- Command: `{prov['command']}`",
             f"- Commit of the best trial: `{prov['commit']}`{' (dirty tree)' if prov['dirty'] else ''}"
             + (f" (**the trials ran {prov['code_digests']} different code versions**)" if prov["code_digests"] > 1 else "")
             + "; data fingerprint "
             f"`{str(prov['data_fingerprint'])[:16]}`; date {prov['date']}",
             f"- Sampler: {sampler}; {prov['n_trials']} completed trials"
             + (f", {prov['rejected_trials']} of them rejected: their tower collapsed to one ranking for most validation "
                "requests (bench/evaluation/collapse.py), so the search cannot pick them" if prov.get("rejected_trials") else "")
             + (f" ({len(rows) - prov['n_trials']} failed or killed)" if len(rows) > prov["n_trials"] else ""),
             f"- Objective: validation {metric} of the standalone base at its best epoch (early stopping); "
             "no trial ranks a test request",
             f"- Trial seconds summed: {_fmt(prov['trial_seconds_summed'])} s; first trial start to last trial end: "
             f"{_fmt(prov['search_wall_seconds'])} s (includes any time between a kill and the relaunch)",
             f"- Tuned values: `{_shown(tuned_file)}`", "",
             "## Search space", "", "| key | space |", "| --- | --- |"]
    lines += [f"| `{k}` | `{v}` |" for k, v in space.items()]
    lines += ["", "## Best trial", "",
              f"Trial {best.number}: validation {metric} = {best.value:.4f}"
              + (f" at epoch {best.record['objective']['best_epoch']} of {best.record['objective']['epochs_run']}"
                 if best.record else ""), ""]
    lines += [f"- `{k}` = {_fmt(v)}" for k, v in best.params.items()]
    if confirmation is not None:
        lines += confirmation_lines(confirmation, metric)
    lines += ["", "## Trials", "", f"![validation {metric} per trial]({plot.name})", "",
              "| trial | state | " + " | ".join(f"`{n}`" for n in names) + f" | valid {metric} | best epoch | epochs | seconds |",
              "| " + " | ".join(["---"] * (len(names) + 6)) + " |"]
    for r in rows:
        obj = (r.record or {}).get("objective", {})
        rejected = (r.record or {}).get("rejected")  # why the search cannot pick it; its value is the record's
        shown = obj.get("value") if rejected else r.value
        cells = [str(r.number), f"REJECTED: {rejected}" if rejected else r.state, *(_fmt(r.params.get(n, "")) for n in names),
                 "" if shown is None else f"{shown:.4f}", _fmt(obj.get("best_epoch", "")),
                 _fmt(obj.get("epochs_run", "")), _fmt((r.record or {}).get("seconds", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "How to read it: each trial trained the base once, with the values in its row, and stopped early "
              "on the validation requests; the best validation value picks the tuned values. A best trial near "
              "an edge of the space says the space may be too narrow there. Values closer together than the "
              "seed-to-seed spread of one configuration are not evidence that one configuration is better.", ""]
    return "\n".join(lines)


def confirmation_lines(confirmation: dict, metric: str) -> list[str]:
    """The report's section on the value sets rerun at other seeds (bench.tuning.confirm)."""
    lines = ["", "## Confirmed at other seeds", "",
             f"Each value set is {confirmation['rule']}. Outcome: **{confirmation['outcome']}** (trial "
             f"{confirmation['chosen_trial']} written).", "",
             f"| trial | valid {metric} at seeds {confirmation['seeds']} | mean | sd | drop | collapsed | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in confirmation["checked"]:
        values = [c["search_value"], *c["values"]]
        lines.append(f"| {c['trial']} | {', '.join(f'{v:.4f}' for v in values)} | {c['mean_of_three']:.4f} | "
                     f"{c['sd']:.4f} | {c['drop']:.4f} | {'yes' if any(c['collapsed']) else 'no'} | "
                     f"{'passed' if c['passed'] else c['why_not']} |")
    return lines
