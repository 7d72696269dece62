"""`python -m bench [overrides]`: the Hydra entry point. Composes the config and calls bench.pipeline.run.run."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bench.config import CONF_DIR, beyond_seeds, register_resolvers
from bench.errors import BenchError

register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """One run (its table printed), or one tuning trial under experiment=tune (its objective returned to the sweeper)."""
    from bench.pipeline.run import run  # imported here so --help stays fast
    from bench.evaluation.evaluate import format_table
    from bench.tuning.trial import run_trial
    from bench.config.tuned import apply_tuned
    from hydra.types import RunMode

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    if cfg.get("experiment_name") == "tune":  # an error fails this trial (Optuna records it), it does not exit
        if hc.mode != RunMode.MULTIRUN:
            print("error: experiment=tune is a search: run it as python -m bench -m experiment=tune ...", file=sys.stderr)
            sys.exit(2)
        return run_trial(cfg, Path(hc.runtime.output_dir), overrides=overrides)
    if hc.mode == RunMode.MULTIRUN and (why := beyond_seeds(cfg)) is not None:
        print(why)
        return None
    try:
        result = run(apply_tuned(cfg, overrides), Path(hc.runtime.output_dir), overrides=overrides)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(format_table(result.record))
    print(f"run record: {result.path}" + (" (finished already: same config and code, kept)" if result.resumed else ""))


def entry() -> None:
    """Check the command line (every job of a sweep) before Hydra starts, then hand over to Hydra."""
    from bench.pipeline.precheck import precheck

    hydra_flags = ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c", "--shell-completion", "--config-name",
                   "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--package", "-p", "--resolve")
    if not any(a.split("=")[0] in hydra_flags for a in sys.argv[1:]):  # Hydra's own modes: left to Hydra
        try:
            precheck(sys.argv[1:])
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
    main()


if __name__ == "__main__":
    entry()
