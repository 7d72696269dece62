"""Tuned values confirmed beyond their search's seed, on validation only, before a tuned file is written.

A search picks the trial with the best validation value at one seed, so that value is the largest of
many noisy draws and overstates the configuration (and a value set can collapse at another seed, as
`unified`'s did in issue 18). The check (`check_candidate`) reruns the candidate's values at two more
seeds (the search's seed + CONFIRM_OFFSETS) and fails it when

- its selected tower collapses at any of them (bench.evaluation.collapse), or
- the mean of its confirmation values falls below its search value v₀ by more than the seed-to-seed
  standard deviation of its values at the search seed and the confirmation seeds (v₀, v₁, v₂).

A failed candidate falls back to the next-best trial, checked the same way, for at most
MAX_CANDIDATES trials. When none passes, the one with the best mean over its three seeds among those
that never collapsed is kept, and the tuned file says that none passed. Every confirmation run is a
tuning trial (bench.tuning.trial): it ranks validation requests only.

`python -m bench.tuning.confirm dataset=D model=M [overrides]` confirms a tuned file written before
this check existed: its values at the search seed and both confirmation seeds on this machine, and,
when they fail, the next-best trials of the search's report (its trials table holds their values to
4 significant digits: those rounded values are what is then rerun and, if kept, written).
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("bench")

CONFIRM_OFFSETS = (1, 2)  # a tuned value set is rerun at the search's seed + these
MAX_CANDIDATES = 3  # trials checked, best first, before the best three-seed mean is kept (tune.max_candidates)
RULE = ("rerun at seeds {seeds} on validation only; fails when its tower collapses at any, or when the mean of "
        "those values is below the search value by more than the standard deviation of the three values")


@dataclass
class Candidate:
    """A trial's values and its validation value at the search seed."""

    trial: int
    params: dict
    value: float  # v₀: the validation selection metric at the search seed


def check_candidate(v0: float, values: list[float], collapsed: list[bool]) -> dict:
    """The confirmation of one value set (module docstring): its values, the seed-to-seed sd, the drop and
    the verdict."""
    sd = statistics.stdev([v0, *values])
    mean = statistics.fmean(values)
    drop = v0 - mean
    reasons = []
    if any(collapsed):
        reasons.append(f"its tower collapsed at {sum(collapsed)} of the confirmation seeds")
    if drop > sd:
        reasons.append(f"the confirmation mean {mean:.4f} is {drop:.4f} below the search value {v0:.4f}, "
                       f"more than the seed-to-seed sd {sd:.4f}")
    return {"values": [float(v) for v in values], "collapsed": list(collapsed), "search_value": float(v0),
            "mean_of_three": statistics.fmean([v0, *values]), "sd": sd, "drop": drop,
            "passed": not reasons, "why_not": "; ".join(reasons) or None}


def confirm(candidates: list[Candidate], run: Callable[[dict, int], tuple[float, bool]], search_seed: int = 0,
            remeasure: bool = False, max_candidates: int = MAX_CANDIDATES) -> tuple[Candidate, dict]:
    """The first candidate (best first) that passes `check_candidate`, else the best three-seed mean among
    those that never collapsed (else among all); `run(params, seed)` gives (validation value, collapsed).
    `remeasure`: measure v₀ again at `search_seed` (a tuned file from another machine) instead of taking the
    candidate's own value. Returns the chosen candidate (its value: v₀) and the record the tuned file keeps."""
    if not candidates:
        raise ValueError("no candidate trial to confirm")
    seeds = [search_seed + k for k in CONFIRM_OFFSETS]
    checked = []
    for cand in candidates[:max_candidates]:
        v0, collapsed0 = run(cand.params, search_seed) if remeasure else (cand.value, False)
        results = [run(cand.params, s) for s in seeds]
        check = check_candidate(v0, [v for v, _ in results], [c for _, c in results])
        if collapsed0:
            check["passed"] = False
            check["why_not"] = "; ".join(filter(None, [f"its tower collapsed at seed {search_seed}", check["why_not"]]))
        checked.append((Candidate(cand.trial, cand.params, v0), check))
        log.info("confirming trial %d: %s", cand.trial, "passed" if check["passed"] else check["why_not"])
        if check["passed"]:
            break
    passed = [(c, ch) for c, ch in checked if ch["passed"]]
    if passed:
        chosen, outcome = passed[0][0], "passed"
    else:
        pool = [(c, ch) for c, ch in checked if not any(ch["collapsed"])] or checked
        chosen = max(pool, key=lambda x: x[1]["mean_of_three"])[0]
        outcome = "none passed: kept the best mean over three seeds"
    record = {"rule": RULE.format(seeds=seeds), "seeds": [search_seed, *seeds], "outcome": outcome,
              "chosen_trial": chosen.trial,
              "checked": [{"trial": c.trial, **{k: _rounded(v) for k, v in ch.items()}} for c, ch in checked]}
    return chosen, record


def _rounded(v):
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def trial_config(cfg: DictConfig, params: dict, seed: int) -> DictConfig:
    """`cfg` (a search's composed config, Hydra's section left out) with a trial's values and another seed."""
    out = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    for key, value in params.items():
        OmegaConf.update(out, key, value, merge=False)
    out.seed = int(seed)
    return out


def run_confirmation(cfg: DictConfig, params: dict, seed: int, out_dir: Path) -> tuple[float, bool]:
    """One confirmation trial (bench.tuning.trial.run_trial) in `out_dir`; kept when its trial.json there was
    written for the same values and seed (a relaunched check reruns only what is missing)."""
    from bench.tuning.trial import TRIAL_RECORD, run_trial

    path = out_dir / TRIAL_RECORD
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("confirmation_of") == {"params": params, "seed": int(seed)}:
            return float(record["objective"]["value"]), bool(record.get("rejected"))
    run_trial(trial_config(cfg, params, seed), out_dir)
    record = json.loads(path.read_text())
    record["confirmation_of"] = {"params": params, "seed": int(seed)}
    path.write_text(json.dumps(record, indent=1))
    return float(record["objective"]["value"]), bool(record.get("rejected"))


def confirm_in(cfg: DictConfig, candidates: list[Candidate], work_dir: Path, remeasure: bool = False,
               max_candidates: int = MAX_CANDIDATES) -> tuple[Candidate, dict]:
    """`confirm` at `cfg`'s seed, each run a trial of `cfg` under `work_dir/confirm_trial<N>_seed<S>`."""
    by_params = {json.dumps(c.params, sort_keys=True): c.trial for c in candidates}

    def run(params: dict, seed: int) -> tuple[float, bool]:
        trial = by_params[json.dumps(params, sort_keys=True)]
        return run_confirmation(cfg, params, seed, Path(work_dir) / f"confirm_trial{trial}_seed{seed}")

    return confirm(candidates, run, search_seed=int(cfg.seed), remeasure=remeasure, max_candidates=max_candidates)


# --------------------------------------------------------------------------- tuned files written before the check


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def report_candidates(report: Path) -> list[Candidate]:
    """The completed, not rejected trials of a search's report (bench.tuning.outputs), best first."""
    lines = [line for line in report.read_text().splitlines() if line.startswith("| ")]
    header = next(i for i, line in enumerate(lines) if line.startswith("| trial | state |"))
    names = [c.strip().strip("`") for c in lines[header].strip("|").split("|")]
    keys = names[2:names.index(next(n for n in names if n.startswith("valid ")))]
    out = []
    for line in lines[header + 2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(names) or cells[1] != "COMPLETE" or not cells[2 + len(keys)]:
            continue
        out.append(Candidate(int(cells[0]), {k: _number(v) for k, v in zip(keys, cells[2:2 + len(keys)])},
                             float(cells[2 + len(keys)])))
    return sorted(out, key=lambda c: (-c.value, c.trial))


def confirm_tuned_file(overrides: list[str], work_root: Path) -> dict:
    """Confirm the tuned file of `overrides`' dataset and backbone on this machine (module docstring) and
    write the outcome into it; returns the file's new mapping."""
    import yaml

    from bench.config import compose, dataset_label
    from bench.config.tuned import read_tuned, tuned_path
    from bench.pipeline.record import write_atomic

    cfg = compose("experiment=tune", *overrides)
    path = tuned_path(cfg)
    work_dir = work_root / dataset_label(cfg) / str(cfg.model.name)
    data = read_tuned(path)
    report = Path(str(cfg.tune.report_dir)) / dataset_label(cfg) / "tuning" / f"{cfg.model.name}.md"
    best = int(data["provenance"]["best_trial"])
    others = [c for c in report_candidates(report) if c.trial != best] if report.exists() else []
    first = Candidate(best, dict(data["values"]), float(data["provenance"]["best_value"]))
    chosen, record = confirm_in(cfg, [first, *others], work_dir, remeasure=True)  # v₀ measured again, here
    record["search_value_measured_at"] = (f"seed {cfg.seed} on this machine (the search's own value: "
                                          f"{data['provenance']['best_value']:.4f})")
    record["command"] = "python -m bench.tuning.confirm " + " ".join(overrides)
    from bench.engine.machine import cpu_vendor, native_bf16_cpu

    record["machine"] = {"cpu_vendor": cpu_vendor(), "native_bf16": native_bf16_cpu()}
    data["confirmation"] = record
    data["values"] = dict(chosen.params)  # the search's own provenance stays: the confirmation says what changed
    header = [line for line in path.read_text().splitlines() if line.startswith("#") and not line.startswith(CONFIRMED)]
    text = "\n".join([*header, confirmed_line(record)]) + "\n" + yaml.safe_dump(data, sort_keys=False)
    write_atomic(path, lambda f: f.write(text))
    return data


CONFIRMED = "# Confirmed by"
USAGE = ("python -m bench.tuning.confirm dataset=D model=M [overrides]\n"
         "Reruns the tuned file tuned/D/M.yaml's values at its search seed and two more on validation only, falls\n"
         "back to the next-best trials when they fail, and writes the check into the file (see the module docstring).")


def confirmed_line(record: dict) -> str:
    """The tuned file's header line saying what the confirmation did (which trial's values the file holds)."""
    return (f"{CONFIRMED} `{record['command']}` at seeds {record['seeds']}: {record['outcome']}; the values below "
            f"are trial {record['chosen_trial']}'s.")


def main(argv: list[str]) -> int:
    from bench.config import PROJECT_ROOT
    from bench.errors import ConfigError, one_line_errors

    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    overrides = [a for a in argv if "=" in a]

    def work() -> None:
        stray = [a for a in argv if "=" not in a]
        if stray:  # never run a default configuration because an argument was not understood
            raise ConfigError(f"{' '.join(stray)}: not an override (KEY=VALUE); usage: {USAGE.splitlines()[0]}")
        data = confirm_tuned_file(overrides, PROJECT_ROOT / "outputs" / "confirm")
        print(json.dumps(data["confirmation"], indent=1))

    return one_line_errors(work)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
